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

The BCE pairs also carry ``d_soft``: the discriminator loss with per-sample targets t in [0, 1]
(binary cross-entropy -t log D - (1 - t) log(1 - D) = t softplus(-l) + (1 - t) softplus(l)),
for one-sided label smoothing (Salimans et al. 2016, arXiv:1606.03498: real targets 0.9) and
label flipping; ``discriminator_targets`` draws those targets. Other pairs have no such form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


def d_bce(real: Tensor, fake: Tensor) -> Tensor:
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def bce_with_targets(logits: Tensor, target: Tensor) -> Tensor:
    """Per-sample binary cross-entropy of logits (B,) against soft targets (B,) in [0, 1]:
    t softplus(-l) + (1 - t) softplus(l), i.e. -t log D - (1 - t) log(1 - D). (B,) -> (B,)."""
    return target * F.softplus(-logits) + (1.0 - target) * F.softplus(logits)


def d_bce_soft(real: Tensor, fake: Tensor, t_real: Tensor, t_fake: Tensor) -> Tensor:
    """The BCE discriminator loss with per-sample targets: E[bce(real, t_real)] +
    E[bce(fake, t_fake)]. With t_real = 1 and t_fake = 0 it equals ``d_bce``."""
    real, fake = real.reshape(-1), fake.reshape(-1)
    return bce_with_targets(real, t_real).mean() + bce_with_targets(fake, t_fake).mean()


def discriminator_targets(
    n_real: int,
    n_fake: int,
    real_label: float = 1.0,
    flip: float = 0.0,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor]:
    """Targets (n_real,), (n_fake,) for ``d_bce_soft``: ``real_label`` for real samples and 0
    for fakes (one-sided smoothing: fakes keep 0), each sample's target swapped to the other
    class with probability ``flip`` (a flipped real gets 0, a flipped fake ``real_label``)."""
    where = generator.device if generator is not None else torch.device(device)
    u = torch.rand(n_real + n_fake, generator=generator, device=where).to(device)
    is_real = torch.arange(n_real + n_fake, device=device) < n_real
    says_real = is_real ^ (u < flip)  # flipped samples carry the other class's target
    t = torch.where(says_real, real_label, 0.0)
    return t[:n_real], t[n_real:]


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
    # (real, fake, t_real, t_fake) -> scalar: the d loss with per-sample targets (BCE pairs only).
    d_soft: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor] | None = None


ADVERSARIAL_LOSSES: dict[str, LossPair] = {
    "minimax": LossPair(d_bce, g_minimax, d_bce_soft),
    "nonsaturating": LossPair(d_bce, g_nonsaturating, d_bce_soft),
    "wasserstein": LossPair(d_wasserstein, g_critic),
    "hinge": LossPair(d_hinge, g_critic),
    "least_squares": LossPair(d_least_squares, g_least_squares),
}
