"""Quality of generated token sequences against the known grammar of the ``sequences`` dataset.

- ``valid``: the share of samples the grammar accepts (``genlab.data.sequences.valid_mask``, an
  exact membership test), in %, and ``unique``, the share of distinct sequences among them (a
  collapsed generator repeats itself).
- ``ngram``: for n = 1, 2, 3 (rows ``ngram1``..``ngram3``), the Jensen-Shannon divergence in
  bits (0 = the same distribution, 1 = disjoint) between the n-gram histogram of the samples
  and that of the evaluated split (the test split by default), n-grams counted up to and
  including each sequence's first padding token (``genlab.data.sequences.ngram_counts``).

Every metric is reported for the model and three reference systems, each a sample of the same
size n as the evaluated split, so that a number has a scale:

- ``real``: n sequences of the other split (train when evaluating test): real data, so its
  ``valid`` is 100 and its JS divergences are the noise floor of estimating them from n samples;
- ``positional``: each position drawn independently from that position's token frequencies
  in the other split (knows the lengths roughly, nothing of the grammar);
- ``unigram``: every token drawn i.i.d. from the other split's token frequencies (padding
  included).
"""

from __future__ import annotations

import torch

from genlab.core.errors import ConfigError
from genlab.data.sequences import js_divergence, ngram_counts, valid_mask
from genlab.metrics.base import EvalContext, MetricResult, register_metric

ORDERS = (1, 2, 3)
REFERENCES = ("real", "positional", "unigram")


def positional_sample(data: torch.Tensor, n: int, vocab: int, generator: torch.Generator):
    """n sequences (n, L) int64, position t drawn from the token frequencies of data[:, t]."""
    length = data.shape[1]
    freq = torch.stack([torch.bincount(data[:, t], minlength=vocab) for t in range(length)])
    return torch.multinomial(freq.double(), n, replacement=True, generator=generator).T


def unigram_sample(data: torch.Tensor, n: int, vocab: int, generator: torch.Generator):
    """n sequences (n, L) int64 of i.i.d. tokens with the token frequencies of all of data."""
    freq = torch.bincount(data.reshape(-1), minlength=vocab).double()
    draws = torch.multinomial(freq, n * data.shape[1], replacement=True, generator=generator)
    return draws.view(n, data.shape[1])


def _systems(ctx: EvalContext, metric: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(the evaluated real sequences (n, L), {system: (n, L) sequences}), computed once per
    evaluation and shared by ``valid`` and ``ngram``."""
    if ctx.model.spec.kind != "sequences":
        raise ConfigError(
            f"metric {metric!r} needs a model of token sequences (gsgan on --data sequences); "
            f"this run's data is {ctx.cfg.data.name!r}"
        )
    if "sequences" not in ctx.cache:
        other = ctx.data.train if ctx.split == "test" else ctx.data.test
        target = ctx.eval_split().x
        n = min(len(target), len(other))
        target, other_x = target[:n], other.x
        vocab = len(ctx.model.spec.extra["vocab"])
        systems = {
            "model": ctx.model.sample(n, generator=ctx.generator(offset=3)).cpu(),
            "real": other_x[:n],
            "positional": positional_sample(other_x, n, vocab, ctx.generator(offset=4)),
            "unigram": unigram_sample(other_x, n, vocab, ctx.generator(offset=5)),
        }
        ctx.cache["sequences"] = (target, systems)
    return ctx.cache["sequences"]


@register_metric("valid", help="token sequences: % the grammar accepts, % distinct")
def valid(ctx: EvalContext, param: int | None) -> list[MetricResult]:
    _, systems = _systems(ctx, "valid")
    other = "train" if ctx.split == "test" else "test"
    rows = []
    for name, seqs in systems.items():
        n = len(seqs)
        note = f"{n} sequences, seed {ctx.seed}" if name == "model" else f"reference ({other})"
        share = 100 * float(valid_mask(seqs).double().mean())
        unique = 100 * len(torch.unique(seqs, dim=0)) / n
        rows.append(MetricResult("valid", share, None, "%", n, note, system=name))
        rows.append(MetricResult("unique", unique, None, "%", n, note, system=name))
    return rows


@register_metric("ngram", help="token sequences: JS divergence of 1-, 2-, 3-gram histograms")
def ngram(ctx: EvalContext, param: int | None) -> list[MetricResult]:
    target, systems = _systems(ctx, "ngram")
    vocab = len(ctx.model.spec.extra["vocab"])
    rows = []
    for n_order in ORDERS:
        ref = ngram_counts(target, n_order, vocab)
        for name, seqs in systems.items():
            got = ngram_counts(seqs, n_order, vocab)
            if got.sum() > 0 and ref.sum() > 0:
                js = js_divergence(got, ref)
            else:  # n longer than every sequence of one side: equal only if both are empty
                js = float(got.sum() > 0 or ref.sum() > 0)
            note = f"JS divergence to the {ctx.split} split, in [0, 1]"
            rows.append(
                MetricResult(f"ngram{n_order}", js, None, "bits", len(seqs), note, system=name)
            )
    return rows
