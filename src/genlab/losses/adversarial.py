"""Adversarial objectives as a flat table of (discriminator, generator) loss pairs.

Every function takes the discriminator's raw outputs (logits / critic scores), shape (B,) or
(B, 1), and returns a scalar to *minimise*. With D(x) = sigmoid(logit):

- ``minimax``        Goodfellow et al. 2014: d = -log D(x) - log(1 - D(G(z))),
                     g = log(1 - D(G(z)))            (saturating)
- ``nonsaturating``  same d, g = -log D(G(z))
- ``wasserstein``    Arjovsky et al. 2017: d = E[f(G(z))] - E[f(x)], g = -E[f(G(z))]
- ``hinge``          Lim & Ye 2017, Miyato et al. 2018:
                     d = E[relu(1 - f(x))] + E[relu(1 + f(G(z)))], g = -E[f(G(z))]
- ``least_squares``  Mao et al. 2017 (a=0, b=c=1): d = 1/2 E[(f(x) - 1)^2] + 1/2 E[f(G(z))^2],
                     g = 1/2 E[(f(G(z)) - 1)^2]

log D = -softplus(-logit) and log(1 - D) = -softplus(logit) keep the BCE forms stable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor


def d_bce(real: Tensor, fake: Tensor) -> Tensor:
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_minimax(fake: Tensor) -> Tensor:
    return -F.softplus(fake).mean()


def g_nonsaturating(fake: Tensor) -> Tensor:
    return F.softplus(-fake).mean()


def d_wasserstein(real: Tensor, fake: Tensor) -> Tensor:
    return fake.mean() - real.mean()


def g_critic(fake: Tensor) -> Tensor:
    return -fake.mean()


def d_hinge(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def d_least_squares(real: Tensor, fake: Tensor) -> Tensor:
    return 0.5 * (real - 1.0).pow(2).mean() + 0.5 * fake.pow(2).mean()


def g_least_squares(fake: Tensor) -> Tensor:
    return 0.5 * (fake - 1.0).pow(2).mean()


class LossPair(NamedTuple):
    d: Callable[[Tensor, Tensor], Tensor]
    g: Callable[[Tensor], Tensor]


ADVERSARIAL_LOSSES: dict[str, LossPair] = {
    "minimax": LossPair(d_bce, g_minimax),
    "nonsaturating": LossPair(d_bce, g_nonsaturating),
    "wasserstein": LossPair(d_wasserstein, g_critic),
    "hinge": LossPair(d_hinge, g_critic),
    "least_squares": LossPair(d_least_squares, g_least_squares),
}
