"""Image quality metrics in a feature space: ``fid``, ``kid``, ``is``, ``prdc``, ``memorisation``,
``confident`` (what the data's classifier reads in the samples).

Real images are the evaluation split (``--split``, cut to ``--n``); generated images are as many
(``--n``, at most 10,000), drawn with the evaluation seed; conditional models sample with
``labels=None`` and so cycle through their classes. Features of both sets are computed once per
evaluation and shared between the metrics (``ctx.cache``). The feature space
(``genlab.metrics.features``, ``--features``) is named in every row's note: a FID in the digits
classifier's space is not an Inception FID.

Rows of ``system="data"`` give the scale: the same metric between the other split and the
evaluation split at the same sample count (what a model that reproduces the data distribution
reaches at this n; FID and KID are not 0 there), and the Inception-style score of the real
images. The math is in ``genlab.metrics.stats``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from genlab.core.errors import ConfigError
from genlab.metrics import stats
from genlab.metrics.base import EvalContext, MetricResult, register_metric
from genlab.metrics.features import FeatureSpace, feature_space
from genlab.metrics.modes import kl_to_uniform
from genlab.models.base import evaluating
from genlab.models.sampling import require_generator, sample_truncated

MAX_GENERATED = 10_000
MAX_TRAIN = 50_000  # reference set of the memorisation check
PR_K, DC_K = 3, 5  # Kynkaanniemi et al.'s and Naeem et al.'s recommended k
CLOSE_QUANTILE = 0.05

# draw(b, generator) -> (b, C, H, W) images in [-1, 1] on any device.
Draw = Callable[[int, torch.Generator], Tensor]


def image_space(ctx: EvalContext, what: str, need: int = 2) -> FeatureSpace:
    """The evaluation's feature space, after the checks that need no features (so a bad request
    fails at once): image data, and at least ``need`` real, generated and reference images.
    ``what`` names the caller in the error ("metric 'fid'")."""
    spec = ctx.model.spec
    if spec.kind != "image":
        raise ConfigError(
            f"{what} needs image data; this run's data {ctx.cfg.data.name!r} is {spec.kind} "
            "(use modes, elbo or recall@k there)"
        )
    n_real, n_gen = len(ctx.eval_split()), n_generated(ctx)
    n_ref = min(n_gen, len(ctx.data.train if ctx.split == "test" else ctx.data.test))
    if min(n_real, n_gen, n_ref) < need:
        raise ConfigError(
            f"{what} needs at least {need} real and {need} generated images; got "
            f"{min(n_real, n_gen, n_ref)} (raise --n)"
        )
    return feature_space(ctx)


def _map(space: FeatureSpace, images: Iterable[Tensor], what: str) -> Tensor:
    """(n, dim) features or (n, K) logits (``what``) of a stream of image batches."""
    out = [space.features(x) if what == "features" else space.logits(x) for x in images]
    return torch.cat(out)


def sample_features(
    ctx: EvalContext,
    space: FeatureSpace,
    n: int,
    draw: Draw,
    generator: torch.Generator,
    what: str = "features",
) -> Tensor:
    """Features (n, dim), or logits (n, K) with ``what="logits"``, of n images drawn by
    ``draw`` in batches of ``ctx.batch_size`` from one generator, in eval mode without
    gradients. A new generator with the same seed gives the same images: logits are a second
    pass, taken only for the metrics that need them (the classifier head may cost a network)."""
    sizes = [min(ctx.batch_size, n - s) for s in range(0, n, ctx.batch_size)]
    bar = tqdm(sizes, desc=f"generated {what}", disable=not ctx.progress)
    with evaluating(ctx.model):
        return _map(space, (draw(b, generator) for b in bar), what)


def split_features(ctx: EvalContext, which: str, m: int, what: str = "features") -> Tensor:
    """Features (or logits) of the first ``m`` images of split ``which`` ("train"/"test")."""
    split = getattr(ctx.data, which)
    m = min(m, len(split))
    key = f"image:{which}:{m}:{what}"
    if key not in ctx.cache:
        batches = ctx.batches(split.take(torch.arange(m)))
        total = -(-m // ctx.batch_size)
        bar = tqdm(batches, total=total, desc=f"{which} {what}", disable=not ctx.progress)
        ctx.cache[key] = _map(feature_space(ctx), (b["x"] for b in bar), what)
    return ctx.cache[key]


def real_features(ctx: EvalContext, what: str = "features") -> Tensor:
    """The evaluation split's features or logits (``ctx.split``, first ``ctx.n``)."""
    return split_features(ctx, ctx.split, len(ctx.eval_split()), what)


def n_generated(ctx: EvalContext) -> int:
    """``--n`` samples, or as many as real images, at most 10,000."""
    return min(ctx.n or len(ctx.eval_split()), MAX_GENERATED)


def generated_features(ctx: EvalContext, what: str = "features") -> Tensor:
    """Features or logits of the model's samples (``n_generated``, the evaluation seed)."""
    key = f"image:generated:{what}"
    if key not in ctx.cache:
        ctx.cache[key] = sample_features(
            ctx,
            feature_space(ctx),
            n_generated(ctx),
            lambda b, g: ctx.model.sample(b, generator=g),
            ctx.generator(offset=3),
            what,
        )
    return ctx.cache[key]


def reference_features(ctx: EvalContext) -> tuple[str, Tensor]:
    """The other split's name and features, as many as generated: a perfect model's stand-in."""
    other = "train" if ctx.split == "test" else "test"
    return other, split_features(ctx, other, n_generated(ctx))


def _note(ctx: EvalContext, space: FeatureSpace, n_real: int, n_other: int, what: str) -> str:
    return f"{n_real} {ctx.split} images vs {n_other} {what}, seed {ctx.seed}; {space.note}"


def _option(ctx: EvalContext, name: str, default: int, flag: str, least: int) -> int:
    given = ctx.options.get(name)
    value = default if given is None else int(given)
    if value < least:
        raise ConfigError(f"{flag} {value}: give at least {least}")
    return value


@register_metric("fid", help="Frechet distance of feature Gaussians (data row: train vs test)")
def fid(ctx: EvalContext, param: int | None) -> list[MetricResult]:
    space = image_space(ctx, "metric 'fid'")
    real, fake = real_features(ctx), generated_features(ctx)
    other, ref = reference_features(ctx)
    return [
        MetricResult("fid", stats.fid(real, fake), None, "", len(fake),
                     _note(ctx, space, len(real), len(fake), "samples")),
        MetricResult("fid", stats.fid(real, ref), None, "", len(ref),
                     _note(ctx, space, len(real), len(ref), f"{other} images"), "data"),
    ]  # fmt: skip


@register_metric("kid", help="kernel inception distance, unbiased MMD^2 ± std over subsets")
def kid(ctx: EvalContext, param: int | None) -> list[MetricResult]:
    subsets = _option(ctx, "subsets", 100, "--subsets", 1)
    size = _option(ctx, "subset_size", 1000, "--subset-size", 2)
    space = image_space(ctx, "metric 'kid'")
    real, fake = real_features(ctx), generated_features(ctx)
    other, ref = reference_features(ctx)
    rows = []
    for system, against, what in (("model", fake, "samples"), ("data", ref, f"{other} images")):
        mean, std = stats.kid(real, against, subsets, size, ctx.generator(offset=4))
        m = min(size, len(real), len(against))
        whole = m == len(real) == len(against)  # one value: no spread to report
        how = "the whole sets" if whole else f"mean ± sd (spread) over {subsets} subsets of {m}"
        note = f"unbiased MMD^2, {how}; " + _note(ctx, space, len(real), len(against), what)
        spread = None if whole else std
        rows.append(MetricResult("kid", mean, None, "", m, note, system, spread=spread))
    return rows


@register_metric("is", help="Inception-style score of the feature space's classifier ± std")
def inception_score(ctx: EvalContext, param: int | None) -> list[MetricResult]:
    splits = _option(ctx, "splits", 10, "--splits", 1)
    space = image_space(ctx, "metric 'is'", need=splits)
    if space.classify is None:
        raise ConfigError(
            f"metric 'is' needs a classifier's logits; the feature space {space.name!r} has none "
            "(use --features classifier on labelled data, or --inception-weights PATH)"
        )
    real_logits = real_features(ctx, "logits")
    fake_logits = generated_features(ctx, "logits")
    rows = []
    for system, logits, what in (("model", fake_logits, "samples"), ("data", real_logits, "")):
        mean, std = stats.inception_score(logits, splits)
        source = f"{len(logits)} samples" if what else f"{len(logits)} {ctx.split} images"
        note = f"± sd (spread) over {splits} splits of {source}, seed {ctx.seed}; {space.note}"
        rows.append(MetricResult("is", mean, None, "", len(logits), note, system, spread=std))
    return rows


CONFIDENT = 0.9


def label_rows(logits: Tensor, names: tuple[str, ...] | None) -> dict[str, Any]:
    """What a classifier says of a set of images: the % it labels with probability >= 0.9, the
    classes it predicts at least once, and the predicted-class histogram's KL to uniform."""
    probs = logits.double().softmax(dim=1)
    top, label = probs.max(dim=1)
    counts = torch.bincount(label, minlength=probs.shape[1])
    names = names or tuple(str(i) for i in range(len(counts)))
    histogram = " ".join(f"{n}:{int(c)}" for n, c in zip(names, counts.tolist(), strict=True))
    return {
        "confident": 100 * float((top >= CONFIDENT).double().mean()),
        "classes": float((counts > 0).sum()),
        "class_kl": kl_to_uniform(counts),
        "histogram": histogram,
    }


@register_metric(
    "confident", help="% of samples the data's classifier labels with p >= 0.9; classes seen"
)
def confident(ctx: EvalContext, param: int | None) -> list[MetricResult]:
    space = image_space(ctx, "metric 'confident'")
    if space.classify is None:
        raise ConfigError(
            f"metric 'confident' needs a classifier; the feature space {space.name!r} has none "
            "(it needs labelled data and --features classifier or auto)"
        )
    rows = []
    names, k = ctx.model.spec.class_names, ctx.model.spec.num_classes
    for system, logits, what in (
        ("model", generated_features(ctx, "logits"), "samples"),
        ("data", real_features(ctx, "logits"), f"{ctx.split} images"),
    ):
        got, n = label_rows(logits, names), len(logits)
        note = f"{n} {what}, seed {ctx.seed}; {space.note}; predicted classes {got['histogram']}"
        rows += [
            MetricResult("confident", got["confident"], None, "%", n, f"p >= 0.9; {note}", system),
            MetricResult("classes", got["classes"], None, f"of {k}", n, note, system),
            MetricResult("class_kl", got["class_kl"], None, "nats", n, "0 = uniform", system),
        ]
    return rows


@register_metric("prdc", help="precision, recall (k=3), density, coverage (k=5) of k-NN balls")
def prdc(ctx: EvalContext, param: int | None) -> list[MetricResult]:
    space = image_space(ctx, "metric 'prdc'", need=DC_K + 1)  # the k-th neighbour of k + 1 points
    real, fake = real_features(ctx), generated_features(ctx)
    other, ref = reference_features(ctx)
    rows = []
    for system, against, what in (("model", fake, "samples"), ("data", ref, f"{other} images")):
        got = stats.prdc(real, against, PR_K, DC_K)
        note = _note(ctx, space, len(real), len(against), what)
        for name in ("precision", "recall", "density", "coverage"):
            k = PR_K if name in ("precision", "recall") else DC_K
            row = MetricResult(name, got[name], None, "", len(against), f"k={k}; {note}", system)
            rows.append(row)
    return rows


@register_metric("memorisation", help="nearest-training-neighbour distances: samples vs test")
def memorisation(ctx: EvalContext, param: int | None) -> list[MetricResult]:
    space = image_space(ctx, "metric 'memorisation'")
    fake = generated_features(ctx)
    train = split_features(ctx, "train", MAX_TRAIN)
    test = split_features(ctx, "test", ctx.n or len(ctx.data.test))
    got = stats.memorisation(fake, train, test, CLOSE_QUANTILE)
    note = (
        f"{len(fake)} samples and {len(test)} test images to {len(train)} train images, "
        f"seed {ctx.seed}; {space.note}"
    )
    medians = f"median gen->train {got['gen_median']:.4g}, test->train {got['test_median']:.4g}"
    q = round(100 * CLOSE_QUANTILE)
    return [
        MetricResult(
            "nn_ratio", got["ratio"], None, "gen/test", len(fake),
            f"{medians} (1 = as novel as test data, 0 = copies); {note}",
        ),
        MetricResult(
            "nn_close", 100 * got["close"], None, "%", len(fake),
            f"samples nearer a train image than {q} % of test images are "
            f"({got['threshold']:.4g}; {q} % = as novel as test data); {note}",
        ),
    ]  # fmt: skip


def truncation_sweep(
    ctx: EvalContext, values: list[float | None]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Precision, recall, density, coverage and FID of samples drawn with each truncation bound
    (``None``: no truncation) against the evaluation split, as many samples as real images, the
    same seeded noise for every bound. Returns the rows and the data reference (the other split
    against the evaluation split at the same n)."""
    require_generator(ctx.model, "genlab truncation")
    space = image_space(ctx, "genlab truncation", need=DC_K + 1)
    real = real_features(ctx)
    other, ref = reference_features(ctx)
    reference = {**stats.prdc(real, ref, PR_K, DC_K), "fid": stats.fid(real, ref)}
    rows = []
    for value in values:

        def draw(b: int, g: torch.Generator, value=value) -> Tensor:
            return sample_truncated(ctx.model, b, value, generator=g)

        fake = sample_features(ctx, space, n_generated(ctx), draw, ctx.generator(offset=3))
        rows.append({"truncation": value, **stats.prdc(real, fake, PR_K, DC_K)})
        rows[-1]["fid"] = stats.fid(real, fake)
    return rows, {"against": other, **reference}
