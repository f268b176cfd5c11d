"""Latent priors p(z) as pure functions: samplers take an explicit ``torch.Generator``, densities
return log p(z) per row, in nats.

- ``gaussian``: the standard normal N(0, I).
- ``mixture``: K equally weighted isotropic Gaussians N(m_k, s^2 I) whose means m_k lie on a
  circle of radius r in the first two dimensions, m_k = r (cos 2 pi k / K, sin 2 pi k / K, 0, ...),
  the 2-D prior of the adversarial autoencoder's figures (Makhzani et al. 2015, arXiv:1511.05644):
  log p(z) = logsumexp_k [log N(z; m_k, s^2 I)] - log K.

A sampler draws on the generator's device (so one seed gives the same numbers on any device)
and returns the result on ``device``; without a generator it draws on ``device`` from torch's
global generator (the training path).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


def _draw_device(generator: torch.Generator | None, device: torch.device | str) -> torch.device:
    return generator.device if generator is not None else torch.device(device)


def sample_standard_normal(
    n: int,
    dim: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """(n, dim) draws from N(0, I)."""
    where = _draw_device(generator, device)
    return torch.randn(n, dim, generator=generator, device=where).to(device)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I) for z (n, dim) -> (n,)."""
    return -0.5 * (z.pow(2).sum(1) + z.shape[1] * LOG_2PI)


def circle_means(components: int, dim: int, radius: float) -> Tensor:
    """(components, dim) float32: means at angles 2 pi k / K on a circle of ``radius`` in the
    first two dimensions, 0 in the others. Needs dim >= 2."""
    if dim < 2:
        raise ValueError(f"a circle of means needs at least 2 dimensions, got {dim}")
    angle = 2 * math.pi * torch.arange(components, dtype=torch.float64) / components
    means = torch.zeros(components, dim, dtype=torch.float64)
    means[:, 0], means[:, 1] = radius * torch.cos(angle), radius * torch.sin(angle)
    return means.float()


def sample_mixture(
    n: int,
    means: Tensor,
    std: float,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor]:
    """(z (n, dim), component (n,) int64): a uniformly chosen component k, then
    z = means[k] + std * eps with eps ~ N(0, I)."""
    where = _draw_device(generator, device)
    k, dim = means.shape
    component = torch.randint(0, k, (n,), generator=generator, device=where)
    eps = torch.randn(n, dim, generator=generator, device=where)
    z = means.to(where)[component] + std * eps
    return z.to(device), component.to(device)


def mixture_log_prob(z: Tensor, means: Tensor, std: float) -> Tensor:
    """log p(z) of the equal-weight mixture of N(means[k], std^2 I), z (n, dim) -> (n,)."""
    dim = z.shape[1]
    sq = (z.unsqueeze(1) - means.to(z)).pow(2).sum(-1)  # (n, K) squared distances
    log_comp = -0.5 * sq / std**2 - dim * (math.log(std) + 0.5 * LOG_2PI)
    return torch.logsumexp(log_comp, dim=1) - math.log(means.shape[0])


class Prior(NamedTuple):
    """A prior bound to its parameters: ``sample(n, generator=None, device="cpu") -> (n, dim)``
    and ``log_prob(z (n, dim)) -> (n,)``."""

    dim: int
    sample: Callable[..., Tensor]
    log_prob: Callable[[Tensor], Tensor]


def gaussian_prior(dim: int) -> Prior:
    def sample(n: int, generator=None, device="cpu") -> Tensor:
        return sample_standard_normal(n, dim, generator=generator, device=device)

    return Prior(dim, sample, standard_normal_log_prob)


def mixture_prior(dim: int, components: int, radius: float, std: float) -> Prior:
    means = circle_means(components, dim, radius)

    def sample(n: int, generator=None, device="cpu") -> Tensor:
        return sample_mixture(n, means, std, generator=generator, device=device)[0]

    return Prior(dim, sample, lambda z: mixture_log_prob(z, means, std))
