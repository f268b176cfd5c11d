"""Mode coverage of 2-D mixtures, the protocol of VEEGAN (Srivastava et al. 2017,
arXiv:1705.07761) and PacGAN (Lin et al. 2018, arXiv:1712.04086).

Draw 2,500 samples. A sample is high quality when it lies within 3 standard deviations of its
nearest mode centre; a mode is captured when it is the nearest mode of at least one
high-quality sample. The mode histogram is the share of high-quality samples at each mode; its
KL divergence to the uniform histogram, sum_m p_m log(p_m M), is 0 when every mode gets its
fair share (and log M when one mode gets all).
"""

from __future__ import annotations

import math

import torch

from genlab.errors import ConfigError
from genlab.metrics import EvalContext, MetricResult, register_metric
from genlab.models.base import evaluating

DEFAULT_SAMPLES = 2500


def mode_coverage(
    samples: torch.Tensor, centres: torch.Tensor, sigma: float, within: float = 3.0
) -> dict[str, float]:
    """samples (n, D), centres (M, D) -> {"modes": captured count, "hq": high-quality share in
    [0, 1], "kl": KL(mode histogram || uniform) in nats (nan without high-quality samples)}."""
    dist = torch.cdist(samples.double(), centres.double())  # (n, M)
    nearest_dist, nearest = dist.min(dim=1)
    hq = nearest_dist <= within * sigma
    counts = torch.bincount(nearest[hq], minlength=len(centres)).double()
    kl = float("nan")
    if counts.sum() > 0:
        p = counts / counts.sum()
        kl = float((p[p > 0] * (p[p > 0] * len(centres)).log()).sum())
    return {"modes": float((counts > 0).sum()), "hq": float(hq.double().mean()), "kl": kl}


@register_metric("modes", help="2-D mixtures: modes captured, high-quality share, mode KL")
def modes(ctx: EvalContext, param: int | None) -> list[MetricResult]:
    extra = ctx.model.spec.extra
    if "centres" not in extra or "sigma" not in extra:
        raise ConfigError(
            "metric 'modes' needs data with known mode centres (ring8, grid25); "
            f"this run's data is {ctx.cfg.data.name!r}"
        )
    centres, sigma = torch.tensor(extra["centres"]), float(extra["sigma"])
    n = ctx.n or DEFAULT_SAMPLES
    with evaluating(ctx.model):
        samples = ctx.model.sample(n, generator=ctx.generator(offset=2)).cpu()
    got = mode_coverage(samples, centres, sigma)
    note = f"{n} samples, high quality = within 3 sigma ({sigma:g}) of a centre, seed {ctx.seed}"
    m = len(centres)
    return [
        MetricResult("modes", got["modes"], None, f"of {m}", n, note),
        MetricResult("hq", 100 * got["hq"], None, "%", n, note),
        MetricResult(
            "mode_kl", got["kl"], None, "nats", n, f"0 = uniform, {math.log(m):.2f} = one mode"
        ),
    ]
