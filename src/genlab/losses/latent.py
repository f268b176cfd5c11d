"""Latent-variable math as pure functions: log densities of the VAE posteriors and priors, their
KL divergences, and the Gumbel-Softmax (Concrete) relaxation of a categorical sample.

Conventions: a diagonal Gaussian is given by ``(mu, logvar)``; a categorical latent by logits of
shape (B, G, K), G independent groups (latent variables) of K classes, and a sample of it by
one-hot or relaxed vectors of the same shape. Every log density / KL sums over all but the batch
dimension and returns shape (B,), in nats. Noise comes from an explicit ``torch.Generator``
(drawn on the generator's device, then moved to the tensor's), so results are reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from genlab.losses.likelihood import LOG_2PI, gaussian_kl_std_normal


def _sum_per_example(t: Tensor) -> Tensor:
    return t.flatten(1).sum(1)


def draw(
    fn: Callable[..., Tensor],
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    like: Tensor,
) -> Tensor:
    """``fn(shape)`` (torch.randn / torch.rand) on the generator's device, in ``like``'s dtype,
    moved to ``like``'s device: the same seed gives the same numbers on every device."""
    device = generator.device if generator is not None else like.device
    return fn(shape, generator=generator, device=device, dtype=like.dtype).to(like.device)


# ----------------------------------------------------------------------------- Gaussian


def gaussian_log_prob(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, diag exp(logvar)), (B,)."""
    return _sum_per_example(-0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI))


def std_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I), (B,)."""
    return _sum_per_example(-0.5 * (z.pow(2) + LOG_2PI))


# ----------------------------------------------------------------------------- log-normal
# z = exp(u), u ~ N(mu, sigma^2): the density picks up the Jacobian |du/dz| = 1/z per dimension.


def lognormal_log_prob(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log LogNormal(z; mu, exp(logvar)) = log N(log z; mu, sigma^2) - sum log z, for z > 0."""
    u = torch.log(z)
    return gaussian_log_prob(u, mu, logvar) - _sum_per_example(u)


def std_lognormal_log_prob(z: Tensor) -> Tensor:
    """log LogNormal(z; 0, 1) per dimension, summed: log N(log z; 0, I) - sum log z."""
    u = torch.log(z)
    return std_normal_log_prob(u) - _sum_per_example(u)


def lognormal_kl_std(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(LogNormal(mu, sigma^2) || LogNormal(0, 1)), (B,).

    KL is invariant under a bijection applied to both distributions (the Jacobians cancel in
    the density ratio), and exp maps N(mu, sigma^2) to LogNormal(mu, sigma^2), so this is the
    Gaussian KL of the underlying normals: 1/2 sum(mu^2 + sigma^2 - 1 - log sigma^2).
    """
    return gaussian_kl_std_normal(mu, logvar)


# ----------------------------------------------------------------------------- categorical


def gumbel_noise(shape: tuple[int, ...], generator: torch.Generator | None, like: Tensor) -> Tensor:
    """Standard Gumbel noise g = -log(-log u), u ~ U(0, 1)."""
    u = draw(torch.rand, shape, generator, like)
    # torch.rand is in [0, 1): keep u away from 0 so that g stays finite.
    u = u.clamp_min(torch.finfo(u.dtype).tiny)
    return -torch.log(-torch.log(u))


def gumbel_softmax(
    logits: Tensor,
    tau: float,
    *,
    hard: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A relaxed one-hot sample y = softmax((logits + g) / tau), g standard Gumbel, over the
    last dimension (Jang, Gu & Poole 2017, arXiv:1611.01144; Maddison, Mnih & Teh 2017,
    arXiv:1611.00712). ``logits`` (..., K) -> y (..., K) on the simplex; as tau -> 0 it tends
    to the one-hot of argmax(logits + g), an exact sample of Categorical(softmax(logits)).

    ``hard``: straight-through estimator, the forward value is that one-hot vector and the
    gradient is the relaxed sample's.
    """
    g = gumbel_noise(tuple(logits.shape), generator, logits)
    y = torch.softmax((logits + g) / tau, dim=-1)
    if not hard:
        return y
    one_hot = torch.zeros_like(y).scatter_(-1, y.argmax(-1, keepdim=True), 1.0)
    return one_hot - y.detach() + y


def gumbel_temperature(
    step: int, tau0: float = 1.0, tau_min: float = 0.5, anneal_rate: float = 3e-5
) -> float:
    """The annealed temperature tau(step) = max(tau_min, tau0 * exp(-anneal_rate * step))
    (Jang et al. 2017: tau0 = 1, tau_min = 0.5, rate of the order of 1e-5 to 1e-4 per step)."""
    return max(tau_min, tau0 * math.exp(-anneal_rate * step))


def categorical_sample(logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """An exact one-hot sample of Categorical(softmax(logits)) over the last dimension, by the
    Gumbel-max trick: one_hot(argmax(logits + g)). (..., K) -> (..., K) of 0/1."""
    g = gumbel_noise(tuple(logits.shape), generator, logits)
    index = (logits + g).argmax(-1, keepdim=True)
    return torch.zeros_like(logits).scatter_(-1, index, 1.0)


def uniform_categorical_sample(
    n: int, groups: int, categories: int, generator: torch.Generator | None, like: Tensor
) -> Tensor:
    """n samples of ``groups`` independent uniform categoricals, one-hot: (n, groups, K)."""
    device = generator.device if generator is not None else like.device
    index = torch.randint(categories, (n, groups), generator=generator, device=device)
    return torch.nn.functional.one_hot(index.to(like.device), categories).to(like.dtype)


def categorical_log_prob(one_hot: Tensor, logits: Tensor) -> Tensor:
    """log q(z) of one-hot z (B, G, K) under independent Categorical(softmax(logits)) groups."""
    return _sum_per_example(one_hot * torch.log_softmax(logits, dim=-1))


def uniform_categorical_log_prob(one_hot: Tensor) -> Tensor:
    """log p(z) under the uniform prior: -G log K for every z (B, G, K)."""
    _, groups, categories = one_hot.shape
    return one_hot.new_full((one_hot.shape[0],), -groups * math.log(categories))


def categorical_kl_uniform(logits: Tensor) -> Tensor:
    """KL(q || uniform) = sum over groups of sum_k q_k log(q_k K), q = softmax(logits); (B,).
    Zero when q is uniform, at most G log K."""
    log_q = torch.log_softmax(logits, dim=-1)
    return _sum_per_example(log_q.exp() * (log_q + math.log(logits.shape[-1])))
