"""The ``sequences`` dataset: the grammar's membership test against hand-written strings and an
independent parser (Python's own), n-gram counting against a brute-force count, the
Jensen-Shannon divergence against scipy and a hand computation, the sampler against the
grammar's known probabilities, and the rendering of token sequences."""

from __future__ import annotations

import ast
import io
import math
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.distance import jensenshannon

from genlab.core.config import DataConfig
from genlab.core.errors import DataError
from genlab.data import load_data
from genlab.data import sequences as S
from genlab.models.sampling import tokens_png
from helpers import assert_one_line_error

VALID = [
    "3",
    "3 + ( 4 * 2 )",
    "( 5 )",
    "( ( 1 ) )",
    "1 - ( 2 / ( 3 + 4 ) ) * 5",
    "1 + 2 + 3 + 4 + 5 + 1 + 2 + 3",  # 15 tokens
]
INVALID = [
    "",  # empty
    "+ 3",  # no unary operators
    "3 +",  # ends after an operator
    "3 4",  # two operands in a row
    "3 + * 4",  # two operators in a row
    "( 3",  # unclosed
    "3 )",  # closes nothing
    "( )",  # empty parentheses
    "( ( ( 1 ) ) )",  # deeper than MAX_DEPTH = 2
    "3 ( 4 )",  # an operand before "("
    "( 3 ) 4",  # an operand after ")"
]


@pytest.mark.parametrize("text", VALID)
def test_hand_written_valid_strings(text):
    assert S.is_valid(S.encode(text))


@pytest.mark.parametrize("text", INVALID)
def test_hand_written_invalid_strings(text):
    assert not S.is_valid(S.encode(text))


def test_padding_only_at_the_end_and_ids_in_range():
    ok = S.encode("3 + 4")
    assert S.is_valid(ok)
    gap = ok.clone()
    gap[5] = S.VOCAB.index("1")  # "3 + 4 _ _ 1 ..."
    assert not S.is_valid(gap)
    for bad_id in (-1, len(S.VOCAB)):
        bad = ok.clone()
        bad[0] = bad_id
        assert not S.is_valid(bad)
    # Sixteen tokens with no padding: even length, so never an expression; 15 + padding is.
    assert not S.is_valid(torch.tensor([1, 6] * 8))
    assert S.is_valid(torch.tensor([1, 6] * 7 + [1, 0]))


def python_reference(tokens: list[int]) -> bool:
    """An independent membership test: Python's parser on the text before the first ``_``,
    accepting only binary + - * / of the digits 1..5, with parentheses counted for the depth."""
    words = [S.VOCAB[t] if 0 <= t < len(S.VOCAB) else "?" for t in tokens]
    n = words.index("_") if "_" in words else len(words)
    if any(w != "_" for w in words[n:]) or n == 0 or "?" in words:
        return False
    depth, deepest = 0, 0
    for w in words[:n]:
        depth += (w == "(") - (w == ")")
        deepest = max(deepest, depth)
    try:
        tree = ast.parse(" ".join(words[:n]), mode="eval")
    except SyntaxError:
        return False
    allowed = (ast.Expression, ast.BinOp, ast.Constant, ast.Add, ast.Sub, ast.Mult, ast.Div)
    return deepest <= S.MAX_DEPTH and all(isinstance(node, allowed) for node in ast.walk(tree))


def test_membership_agrees_with_python_parser():
    gen = torch.Generator().manual_seed(0)
    real = S.sample_expressions(1500, seed=3)
    # Real data with 1 or 2 tokens replaced (some stay valid), uniform noise, short noise.
    mutated = real.clone()
    for k in range(2):
        rows = torch.rand(len(real), generator=gen) < 0.5 + 0.4 * k
        pos = torch.randint(S.LENGTH, (len(real),), generator=gen)
        tok = torch.randint(len(S.VOCAB), (len(real),), generator=gen)
        mutated[rows, pos[rows]] = tok[rows]
    noise = torch.randint(len(S.VOCAB), (500, S.LENGTH), generator=gen)
    short = torch.cat([torch.randint(len(S.VOCAB), (500, 5), generator=gen),
                       torch.zeros(500, S.LENGTH - 5, dtype=torch.int64)], 1)  # fmt: skip
    batch = torch.cat([real, mutated, noise, short])
    expected = torch.tensor([python_reference(row) for row in batch.tolist()])
    assert torch.equal(S.valid_mask(batch), expected)
    assert expected[:1500].all() and 0.05 < expected[1500:3000].float().mean() < 0.5


def test_dataset_is_valid_deterministic_and_follows_the_grammar():
    cfg = DataConfig(name="sequences", num_samples=6000, test_fraction=0.5)
    a, b = load_data(cfg), load_data(cfg)
    other = load_data(cfg.model_copy(update={"split_seed": 1}))
    assert a.train.x.shape == (6000, S.LENGTH) and a.test.x.shape == (3000, S.LENGTH)
    assert a.train.x.dtype == torch.int64 and a.train.y is None
    assert torch.equal(a.train.x, b.train.x) and not torch.equal(a.train.x, other.train.x)
    assert not torch.equal(a.train.x[:3000], a.test.x)  # independent draws
    assert S.valid_mask(torch.cat([a.train.x, a.test.x])).all()
    assert a.spec.kind == "sequences" and a.spec.extra["vocab"] == list(S.VOCAB)
    assert a.spec.extra["eval_metrics"] == "valid,ngram"


def test_sampler_matches_the_grammar_probabilities():
    # Which operator or digit is drawn does not change the length, so conditioning on the
    # length (the redraws) leaves their frequencies at the grammar's probabilities.
    x = S.sample_expressions(20000, seed=0)
    counts = torch.bincount(x.reshape(-1), minlength=len(S.VOCAB)).double()
    ops = counts[list(S.OPS)] / counts[list(S.OPS)].sum()
    digits = counts[list(S.DIGITS)] / counts[list(S.DIGITS)].sum()
    assert torch.allclose(ops, torch.tensor(S.OP_WEIGHTS, dtype=torch.float64), atol=0.01)
    assert torch.allclose(digits, torch.full((5,), 0.2, dtype=torch.float64), atol=0.01)
    # With no "(" at depth 0 and one term, the expression is a lone digit:
    # P = (1 - P_PAREN[0]) (1 - P_MORE_FIRST) before the redraws (which only drop long ones).
    lone = ((x != S.PAD).sum(1) == 1).double().mean()
    floor = (1 - S.P_PAREN[0]) * (1 - S.P_MORE_FIRST)
    assert floor < lone < floor * 1.4


def brute_ngrams(rows: list[list[int]], n: int) -> Counter:
    """n-grams of each row up to and including its first padding token, by plain iteration."""
    out: Counter = Counter()
    for row in rows:
        end = row.index(S.PAD) + 1 if S.PAD in row else len(row)
        for i in range(end - n + 1):
            out[tuple(row[i : i + n])] += 1
    return out


@pytest.mark.parametrize("n", [1, 2, 3])
def test_ngram_counts_match_brute_force(n):
    gen = torch.Generator().manual_seed(n)
    rows = torch.cat([S.sample_expressions(200, seed=n),
                      torch.randint(len(S.VOCAB), (200, S.LENGTH), generator=gen)])  # fmt: skip
    counts = S.ngram_counts(rows, n)
    v = len(S.VOCAB)
    expected = torch.zeros(v**n, dtype=torch.float64)
    for gram, c in brute_ngrams(rows.tolist(), n).items():
        expected[sum(t * v ** (n - 1 - k) for k, t in enumerate(gram))] = c
    assert torch.equal(counts, expected)


def test_ngram_counts_toy_case():
    # "3 + 4 _ _ ..." -> bigrams (3,+), (+,4), (4,_); "5 _ ..." -> (5,_).
    rows = torch.stack([S.encode("3 + 4"), S.encode("5")])
    counts = S.ngram_counts(rows, 2)
    v, ix = len(S.VOCAB), S.VOCAB.index
    nonzero = {(int(i) // v, int(i) % v): float(counts[i]) for i in counts.nonzero()[:, 0]}
    assert nonzero == {
        (ix("3"), ix("+")): 1.0,
        (ix("+"), ix("4")): 1.0,
        (ix("4"), ix("_")): 1.0,
        (ix("5"), ix("_")): 1.0,
    }


def test_js_divergence_against_scipy_and_by_hand():
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        p, q = torch.rand(30, generator=gen), torch.rand(30, generator=gen)
        p[:5] = 0  # zero entries on one side only
        expected = jensenshannon(p.double().numpy(), q.double().numpy(), base=2) ** 2
        assert math.isclose(S.js_divergence(p, q), expected, rel_tol=1e-9)
    assert S.js_divergence(torch.tensor([2.0, 0]), torch.tensor([0, 5.0])) == 1.0
    assert S.js_divergence(torch.tensor([1.0, 3]), torch.tensor([2.0, 6])) == 0.0
    # p = (1/2, 1/2), q = (1, 0): m = (3/4, 1/4);
    # KL(p||m) = 1/2 log2(2/3) + 1/2 log2(2), KL(q||m) = log2(4/3).
    by_hand = 0.5 * (0.5 * math.log2(2 / 3) + 0.5) + 0.5 * math.log2(4 / 3)
    assert math.isclose(S.js_divergence(torch.tensor([1.0, 1]), torch.tensor([1.0, 0])), by_hand)


def test_encode_rejects_unknown_tokens_and_long_text():
    with pytest.raises(DataError, match="unknown token 'x'"):
        S.encode("3 + x")
    with pytest.raises(DataError, match="more than 16 tokens"):
        S.encode(" ".join(["1"] * 17))
    assert S.decode(S.encode("3 + 4")).startswith("3 + 4 _")


def _red_pixels(png: bytes) -> int:
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int(((rgb[..., 0] > 150) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)).sum())


def test_tokens_png_marks_invalid_sequences_in_red():
    spec = load_data(DataConfig(name="sequences", num_samples=10)).spec
    valid = torch.stack([S.encode("3 + ( 4 * 2 )"), S.encode("5")])
    invalid = torch.stack([S.encode("3 + ( 4 * 2 )"), S.encode("5 +")])
    ok, bad = tokens_png(valid, spec, "t"), tokens_png(invalid, spec, "t")
    assert Image.open(io.BytesIO(ok)).size == Image.open(io.BytesIO(bad)).size
    assert _red_pixels(ok) == 0 and _red_pixels(bad) > 20
    tall = Image.open(io.BytesIO(tokens_png(S.sample_expressions(64, 0), spec)))
    assert tall.width > Image.open(io.BytesIO(ok)).width  # 64 rows: two columns of 32


def test_unused_data_field_is_one_line(cli, tmp_path):
    code, _, err = cli(
        "train", "gsgan", "--data", "sequences", "data.image_size=16", "--out", tmp_path / "r"
    )
    assert code == 2
    assert_one_line_error(err, "data.image_size is not used by dataset 'sequences'")
