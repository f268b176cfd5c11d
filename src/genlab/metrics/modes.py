"""Mode coverage, the protocol of VEEGAN (Srivastava et al. 2017, arXiv:1705.07761) and PacGAN
(Lin et al. 2018, arXiv:1712.04086), on 2-D mixtures and on stacked digits.

2-D mixtures: draw 2,500 samples. A sample is high quality when it lies within 3 standard
deviations of its nearest mode centre; a mode is captured when it is the nearest mode of at
least one high-quality sample. The mode histogram is the share of high-quality samples at each
mode; its KL divergence to the uniform histogram, sum_m p_m log(p_m M), is 0 when every mode
gets its fair share (and log M when one mode gets all).

Stacked digits (1,000 modes): draw 26,000 samples (PacGAN's count) and read the digit in each
channel with the digits domain classifier (``genlab.metrics.classifier``, trained on single
digits of the same size); a sample's mode is its three-digit number. Every sample counts (a
classifier always answers), so ``modes`` is the number of triples seen and ``mode_kl`` the KL
divergence of their histogram to the uniform one.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from genlab.core.errors import ConfigError
from genlab.metrics.base import EvalContext, MetricResult, register_metric, seeded_generator
from genlab.metrics.classifier import Recipe, StackedClassifier
from genlab.models.base import GenerativeModel, evaluating

DEFAULT_SAMPLES = 2500
STACKED_SAMPLES = 26_000
MIXTURE_STREAM = 2  # the evaluation seed's stream the 2-D samples are drawn from


def scored_samples(model: GenerativeModel, n: int, seed: int) -> torch.Tensor:
    """The n points (n, 2) on the CPU that the ``modes`` metric scores at evaluation ``seed``."""
    with evaluating(model):
        return model.sample(n, generator=seeded_generator(seed, MIXTURE_STREAM)).cpu()


def kl_to_uniform(counts: torch.Tensor) -> float:
    """KL(p || uniform) in nats of the histogram p = counts / sum(counts) over len(counts)
    modes: sum_m p_m log(p_m M). nan for an empty histogram."""
    counts = counts.double()
    if counts.sum() <= 0:
        return float("nan")
    p = counts[counts > 0] / counts.sum()
    return float((p * (p * len(counts)).log()).sum())


def mode_coverage(
    samples: torch.Tensor, centres: torch.Tensor, sigma: float, within: float = 3.0
) -> dict[str, float]:
    """samples (n, D), centres (M, D) -> {"modes": captured count, "hq": high-quality share in
    [0, 1], "kl": KL(mode histogram || uniform) in nats (nan without high-quality samples)}."""
    dist = torch.cdist(samples.double(), centres.double())  # (n, M)
    nearest_dist, nearest = dist.min(dim=1)
    hq = nearest_dist <= within * sigma
    counts = torch.bincount(nearest[hq], minlength=len(centres))
    return {
        "modes": float((counts > 0).sum()),
        "hq": float(hq.double().mean()),
        "kl": kl_to_uniform(counts),
    }


@register_metric(
    "modes", help="mode coverage and mode KL: 2-D mixtures (ring8, grid25), stacked_digits"
)
def modes(ctx: EvalContext, param: int | None) -> list[MetricResult]:
    extra = ctx.model.spec.extra
    if "stacked" in extra:
        return stacked_modes(ctx, extra["stacked"])
    if "centres" not in extra or "sigma" not in extra:
        raise ConfigError(
            "metric 'modes' needs data with known mode centres (ring8, grid25) or stacked "
            "digits (stacked_digits); "
            f"this run's data is {ctx.cfg.data.name!r}"
        )
    centres, sigma = torch.tensor(extra["centres"]), float(extra["sigma"])
    n = ctx.n or DEFAULT_SAMPLES
    got = mode_coverage(scored_samples(ctx.model, n, ctx.seed), centres, sigma)
    note = f"{n} samples, high quality = within 3 sigma ({sigma:g}) of a centre, seed {ctx.seed}"
    m = len(centres)
    return [
        MetricResult("modes", got["modes"], None, f"of {m}", n, note),
        MetricResult("hq", 100 * got["hq"], None, "%", n, note),
        MetricResult(
            "mode_kl", got["kl"], None, "nats", n, f"0 = uniform, {math.log(m):.2f} = one mode"
        ),
    ]


def stacked_modes(ctx: EvalContext, stacked: dict) -> list[MetricResult]:
    """Modes captured (of K**C) and mode KL of stacked data, each channel of each sample read by
    the base dataset's classifier; samples are classified batch by batch, never all held."""
    clf = StackedClassifier.build(stacked, Recipe(), progress=ctx.progress).to(ctx.device)
    n, m = ctx.n or STACKED_SAMPLES, len(clf.names)
    gen, counts = ctx.generator(offset=2), torch.zeros(m, dtype=torch.long)
    sizes = [min(ctx.batch_size, n - i) for i in range(0, n, ctx.batch_size)]
    with evaluating(ctx.model):
        for b in tqdm(sizes, desc="sampling and reading modes", disable=not ctx.progress):
            counts += torch.bincount(clf.predict(ctx.model.sample(b, generator=gen)), minlength=m)
    note = (
        f"{n} samples, each channel read by the {stacked['data']['name']} classifier "
        f"({clf.base.describe()}), seed {ctx.seed}"
    )
    return [
        MetricResult("modes", float((counts > 0).sum()), None, f"of {m}", n, note),
        MetricResult(
            "mode_kl", kl_to_uniform(counts), None, "nats", n,
            f"0 = uniform, {math.log(m):.2f} = one mode",
        ),
    ]  # fmt: skip
