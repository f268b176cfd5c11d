"""Regularisers of the discriminator, as pure functions of a critic and its inputs.

Gradient penalty (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs",
arXiv:1704.00028). The optimal WGAN critic has gradient norm 1 almost everywhere on the lines
between coupled real and generated points, so instead of clipping the weights the critic pays

    GP = E_{x_hat} [ (||grad_x f(x_hat)||_2 - 1)^2 ],   x_hat = eps x + (1 - eps) G(z),

with eps ~ U[0, 1] drawn once per sample (two-sided: norms below 1 are penalised too). The norm
is taken over all of a sample's dimensions. The penalty is per sample, so the critic must not
mix samples (no batch norm): each x_hat's gradient must be that of f at x_hat alone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def interpolates(real: Tensor, fake: Tensor, eps: Tensor) -> Tensor:
    """eps x + (1 - eps) G(z) per sample: real, fake (B, ...) and eps (B,) in [0, 1] ->
    (B, ...); eps = 1 gives the real sample, 0 the fake one."""
    e = eps.to(real.dtype).view(-1, *([1] * (real.dim() - 1)))
    return e * real + (1.0 - e) * fake


def critic_grad_norm(critic: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """||grad_x f(x)||_2 per sample, (B,), for a critic (B, ...) -> (B,) that treats samples
    independently. The graph is kept (create_graph) so a loss of the norms trains the critic."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return grad.flatten(1).norm(dim=1)


def gradient_penalty(
    critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, eps: Tensor
) -> Tensor:
    """The WGAN-GP penalty E[(||grad f(x_hat)||_2 - 1)^2] on x_hat = ``interpolates(real, fake,
    eps)``, a scalar whose gradient reaches the critic's parameters. ``fake`` is detached."""
    x_hat = interpolates(real.detach(), fake.detach(), eps)
    return (critic_grad_norm(critic, x_hat) - 1.0).pow(2).mean()
