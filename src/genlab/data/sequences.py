"""``sequences``: arithmetic expressions drawn from a small known grammar, as fixed-length token
sequences, so that a generator's output can be checked exactly (is it in the language?) and
its n-gram statistics compared with the data's.

The language. Tokens: ``_`` (padding, also the end of an expression), the digits ``1``..``5``,
the operators ``+ - * /`` and the parentheses ``( )`` (``VOCAB``, 12 ids). An expression is

    expr_d := term_d (op term_d)*          term_d := digit | "(" expr_{d+1} ")"

with parentheses nested at most ``MAX_DEPTH`` = 2 deep, at most ``LENGTH`` = 16 tokens, padded
with ``_`` to exactly 16. Because the depth is bounded the language is regular: ``valid_mask``
decides membership with an 8-state automaton, run over a whole batch at once.

The distribution (a probabilistic grammar). At depth d, after each term another one follows
with probability ``P_MORE[d]`` (``P_MORE_FIRST`` after the first term at depth 0); a term is a
parenthesised sub-expression with probability ``P_PAREN[d]`` (0 at the deepest level), else a
digit, uniform over 1..5; an operator is ``+ - * /`` with probabilities ``OP_WEIGHTS``.
Expressions longer than 16 tokens are redrawn, so the data is this grammar conditioned on
length <= 16: every string of the language has positive probability, and nothing outside it
has any. Lengths are odd (operands and operators alternate), 1 to 15, mean 6.5; 9% are a lone
digit, 46% hold parentheses, 12% nest them twice.

n-grams. ``ngram_counts`` counts the n-grams of each sequence up to and including its first
``_`` (the end marker), the statistics a reader of the text sees; ``js_divergence`` compares
two such histograms (``genlab.metrics.sequences``).
"""

from __future__ import annotations

import itertools
import random

import torch

from genlab.core.config import DataConfig
from genlab.core.errors import DataError
from genlab.data.base import DataBundle, DataSpec, Split, register_dataset

VOCAB = ("_", "1", "2", "3", "4", "5", "+", "-", "*", "/", "(", ")")
PAD = 0
DIGITS = (1, 2, 3, 4, 5)
OPS = (6, 7, 8, 9)
OPEN, CLOSE = 10, 11
OP_WEIGHTS = (0.4, 0.2, 0.25, 0.15)
_OP_CUM = tuple(itertools.accumulate(OP_WEIGHTS))
LENGTH = 16
MAX_DEPTH = 2
P_MORE = (0.6, 0.5, 0.4)  # another term follows, at depth 0, 1, 2
P_MORE_FIRST = 0.9  # ... after the first term at depth 0 (fewer lone digits)
P_PAREN = (0.25, 0.2, 0.0)  # a term is "( expr )", at depth 0, 1, 2


# ----------------------------------------------------------------------------- sampling


def _expr(rng: random.Random, depth: int, out: list[int], limit: int) -> None:
    """Append one expression at ``depth`` to ``out``; stop early once ``out`` exceeds ``limit``
    (the caller redraws it, so the tail of a too-long draw does not matter)."""
    more = P_MORE_FIRST if depth == 0 else P_MORE[depth]
    while len(out) <= limit:
        if rng.random() < P_PAREN[depth]:
            out.append(OPEN)
            _expr(rng, depth + 1, out, limit)
            out.append(CLOSE)
        else:
            out.append(DIGITS[int(rng.random() * len(DIGITS))])
        if rng.random() >= more:
            return
        more = P_MORE[depth]
        out.append(rng.choices(OPS, cum_weights=_OP_CUM)[0])


def sample_expressions(n: int, seed: int, length: int = LENGTH) -> torch.Tensor:
    """n expressions of the grammar with at most ``length`` tokens, padded: int64 (n, length).
    Deterministic in ``seed`` (Python's Mersenne Twister, the same on every platform)."""
    rng = random.Random(seed)
    rows = []
    while len(rows) < n:
        out: list[int] = []
        _expr(rng, 0, out, length)
        if len(out) <= length:
            rows.append(out + [PAD] * (length - len(out)))
    return torch.tensor(rows, dtype=torch.int64).reshape(n, length)


# ----------------------------------------------------------------------------- the automaton
# States 2 d + e for depth d = 0..MAX_DEPTH and e = 0 (an operand is expected: a digit or "(")
# or 1 (an operator, ")" or the end is expected); then END (only padding may follow) and DEAD.


def _transition_table(max_depth: int = MAX_DEPTH) -> torch.Tensor:
    """(states, len(VOCAB)) int64: the next state of each (state, token)."""
    end, dead = 2 * (max_depth + 1), 2 * (max_depth + 1) + 1
    table = torch.full((dead + 1, len(VOCAB)), dead, dtype=torch.int64)
    table[end, PAD] = end
    for d in range(max_depth + 1):
        operand, operator = 2 * d, 2 * d + 1
        table[operand, list(DIGITS)] = operator
        if d < max_depth:
            table[operand, OPEN] = 2 * (d + 1)
        table[operator, list(OPS)] = operand
        if d > 0:
            table[operator, CLOSE] = 2 * (d - 1) + 1
        else:
            table[operator, PAD] = end
    return table


TRANSITIONS = _transition_table()
_ACCEPT = (1, 2 * (MAX_DEPTH + 1))  # a complete expression filling all positions, or ended


def valid_mask(tokens: torch.Tensor) -> torch.Tensor:
    """Membership in the language: tokens int (N, L) -> bool (N,). Ids outside the vocabulary
    are invalid; so is an empty expression, a token after the first ``_``, an unbalanced or
    too deep parenthesis, and two operands or two operators in a row."""
    tokens = tokens.long().cpu()
    inside = (tokens >= 0) & (tokens < len(VOCAB))
    ids = tokens.where(inside, PAD)
    state = torch.zeros(len(tokens), dtype=torch.int64)
    for t in range(tokens.shape[1]):
        state = TRANSITIONS[state, ids[:, t]]
    return inside.all(1) & ((state == _ACCEPT[0]) | (state == _ACCEPT[1]))


def is_valid(tokens: torch.Tensor | list[int]) -> bool:
    """One sequence (L,) of token ids: is it an expression of the language?"""
    return bool(valid_mask(torch.as_tensor(tokens).reshape(1, -1))[0])


def decode(tokens: torch.Tensor | list[int]) -> str:
    """Token ids (L,) -> text with spaces, padding included: ``"3 + ( 4 * 2 ) _ _ ..."``."""
    ids = torch.as_tensor(tokens).tolist()
    return " ".join(VOCAB[i] if 0 <= i < len(VOCAB) else "?" for i in ids)


def encode(text: str, length: int = LENGTH) -> torch.Tensor:
    """Space-separated tokens -> int64 (length,), padded with ``_``; unknown tokens and text
    longer than ``length`` are errors."""
    words = text.split()
    unknown = [w for w in words if w not in VOCAB]
    if unknown or len(words) > length:
        what = f"unknown token {unknown[0]!r}" if unknown else f"more than {length} tokens"
        raise DataError(f"cannot encode {text!r}: {what}")
    ids = [VOCAB.index(w) for w in words]
    return torch.tensor(ids + [PAD] * (length - len(ids)), dtype=torch.int64)


# ----------------------------------------------------------------------------- n-grams


def ngram_counts(tokens: torch.Tensor, n: int, vocab_size: int = len(VOCAB)) -> torch.Tensor:
    """Histogram of the n-grams of every sequence, up to and including its first ``_`` (or to
    the end when there is none): tokens int (N, L) in [0, vocab_size) -> float64
    (vocab_size ** n,), the n-gram (t_1, ..., t_n) at index sum_k t_k * vocab_size^(n - k)."""
    tokens = tokens.long().cpu()
    length = tokens.shape[1]
    is_pad = tokens == PAD
    # Positions kept: up to the first padding token inclusive.
    first_pad = torch.where(is_pad.any(1), is_pad.int().argmax(1), length)
    kept = torch.clamp(first_pad + 1, max=length)  # (N,)
    if n > length:
        return torch.zeros(vocab_size**n, dtype=torch.float64)
    starts = torch.arange(length - n + 1)
    codes = torch.zeros(len(tokens), len(starts), dtype=torch.int64)
    for k in range(n):
        codes = codes * vocab_size + tokens[:, starts + k]
    usable = starts[None, :] + n <= kept[:, None]  # (N, L - n + 1)
    return torch.bincount(codes[usable], minlength=vocab_size**n).double()


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    """Jensen-Shannon divergence between two histograms (normalised here), in bits: 0 for
    equal distributions, 1 for disjoint ones. JS = 1/2 KL(p || m) + 1/2 KL(q || m),
    m = (p + q) / 2; terms with p_i = 0 contribute 0."""
    p, q = p.double(), q.double()
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: torch.Tensor) -> torch.Tensor:
        nz = a > 0
        return (a[nz] * (a[nz] / m[nz]).log2()).sum()

    return float(0.5 * kl(p) + 0.5 * kl(q))


# ----------------------------------------------------------------------------- the dataset


def sequence_spec() -> DataSpec:
    return DataSpec(
        "sequences",
        (LENGTH,),
        extra={
            "vocab": list(VOCAB),
            "pad": PAD,
            "max_depth": MAX_DEPTH,
            "eval_metrics": "valid,ngram",
        },
    )


@register_dataset(
    "sequences",
    uses=("num_samples", "test_fraction", "split_seed"),
    help="arithmetic expressions of a known grammar, 16 tokens (for gsgan)",
)
def load_sequences(cfg: DataConfig) -> DataBundle:
    # Train and test are independent draws (different seeds), like the 2-D mixtures.
    n_test = max(1, round(cfg.num_samples * cfg.test_fraction))
    train = sample_expressions(cfg.num_samples, seed=2 * cfg.split_seed)
    test = sample_expressions(n_test, seed=2 * cfg.split_seed + 1)
    return DataBundle("sequences", sequence_spec(), Split(train), Split(test))
