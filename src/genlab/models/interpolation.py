"""Paths between latent codes: linear and spherical interpolation, used by ``genlab sample
--interpolate``, ``genlab latent interp`` and the report's interpolation strips."""

from __future__ import annotations

import torch
from torch import Tensor


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Linear interpolation: a, b (B, D), t (K,) in [0, 1] -> (B, K, D), (1 - t) a + t b."""
    t = t.to(a.dtype)[None, :, None]
    return (1 - t) * a[:, None] + t * b[:, None]


def slerp(a: Tensor, b: Tensor, t: Tensor, min_angle: float = 1e-4) -> Tensor:
    """Spherical interpolation (Shoemake 1985; for latent codes White 2016, arXiv:1609.04468):
    a, b (B, D), t (K,) in [0, 1] -> (B, K, D),

        slerp(a, b; t) = sin((1 - t) W) / sin W * a + sin(t W) / sin W * b,

    W the angle between a and b. For endpoints of equal norm the path keeps that norm and the
    angle to ``a`` grows as t W. W is computed as 2 atan2(|a' - b'|, |a' + b'|) for the unit
    vectors a', b', which stays accurate for nearly parallel vectors; below ``min_angle``
    radians (where slerp and lerp agree to O(W^2)), for zero vectors and for opposite ones
    (sin W <= 1e-6: no unique great circle) the result is ``lerp``."""
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    ua, ub = a / na.clamp_min(1e-30), b / nb.clamp_min(1e-30)
    w = 2 * torch.atan2((ua - ub).norm(dim=1), (ua + ub).norm(dim=1))  # (B,) in [0, pi]
    sin_w = torch.sin(w)
    ok = (w > min_angle) & (sin_w > 1e-6) & (na[:, 0] > 0) & (nb[:, 0] > 0)
    tt = t.to(a.dtype)[None, :]  # (1, K)
    safe = torch.where(ok, sin_w, torch.ones_like(sin_w))[:, None]
    wa = torch.where(ok[:, None], torch.sin((1 - tt) * w[:, None]) / safe, 1 - tt)  # (B, K)
    wb = torch.where(ok[:, None], torch.sin(tt * w[:, None]) / safe, tt)
    return wa[..., None] * a[:, None] + wb[..., None] * b[:, None]


INTERPOLATIONS = {"linear": lerp, "slerp": slerp}
