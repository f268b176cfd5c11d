"""Per-example negative log-likelihoods and KL terms, in nats, summed over all but the batch
dimension: every function returns shape (B,)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


def _sum_per_example(t: Tensor) -> Tensor:
    return t.flatten(1).sum(1)


def bernoulli_nll(logits: Tensor, target: Tensor) -> Tensor:
    """-log Bernoulli(target | sigmoid(logits)), target in [0, 1]."""
    return _sum_per_example(F.binary_cross_entropy_with_logits(logits, target, reduction="none"))


def gaussian_nll(mean: Tensor, target: Tensor, log_sigma: Tensor) -> Tensor:
    """-log N(target | mean, sigma^2) with ``log_sigma`` broadcastable to ``mean``."""
    z = (target - mean) * torch.exp(-log_sigma)
    return _sum_per_example(0.5 * z.pow(2) + log_sigma + 0.5 * LOG_2PI)


def gaussian_kl_std_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) = 1/2 sum(mu^2 + exp(logvar) - 1 - logvar)."""
    return _sum_per_example(0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar))


def log_mean_exp(t: Tensor, dim: int = 0) -> Tensor:
    """log(mean(exp(t))) along ``dim``, stable. On log importance weights (k, B) it is the IWAE
    bound of Burda et al. 2016 (arXiv:1509.00519), (B,); their plain mean is the ELBO."""
    return torch.logsumexp(t, dim) - math.log(t.shape[dim])
