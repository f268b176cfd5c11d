"""The layer factory: normalisation and spectral norm are switched here, never by ``if`` inside
an architecture (the StudioGAN pattern). A network asks the factory for its layers. Also the
conditioning blocks of conditional GANs (label codes, input joins, the projection head)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

Norm = Literal["batch", "instance", "layer", "none"]


@dataclass(frozen=True)
class LayerFactory:
    norm: Norm = "batch"
    spectral: bool = False  # spectral normalisation (Miyato et al. 2018) on conv/linear weights

    def _wrap(self, layer: nn.Module) -> nn.Module:
        return spectral_norm(layer) if self.spectral else layer

    @property
    def bias_before_norm(self) -> bool:
        # A bias right before batch/instance norm is removed by the norm's mean; skip it.
        return self.norm in ("none", "layer")

    def conv(self, c_in: int, c_out: int, k: int, s: int, p: int, bias: bool = True) -> nn.Module:
        return self._wrap(nn.Conv2d(c_in, c_out, k, s, p, bias=bias))

    def conv_t(self, c_in: int, c_out: int, k: int, s: int, p: int, bias: bool = True) -> nn.Module:
        return self._wrap(nn.ConvTranspose2d(c_in, c_out, k, s, p, bias=bias))

    def linear(self, d_in: int, d_out: int, bias: bool = True) -> nn.Module:
        return self._wrap(nn.Linear(d_in, d_out, bias=bias))

    def norm2d(self, channels: int) -> nn.Module:
        if self.norm == "batch":
            return nn.BatchNorm2d(channels)
        if self.norm == "instance":
            return nn.InstanceNorm2d(channels, affine=True)
        if self.norm == "layer":
            return nn.GroupNorm(1, channels)  # layer norm over (C, H, W)
        return nn.Identity()

    def norm1d(self, features: int) -> nn.Module:
        if self.norm == "batch":
            return nn.BatchNorm1d(features)
        if self.norm in ("layer", "instance"):
            return nn.LayerNorm(features)
        return nn.Identity()


# ----------------------------------------------------------------------------- conditioning
# Blocks of conditional GANs. A condition reaches G as a code joined to z and D as a float vector
# c (B, C): one-hot classes or 0/1 attributes. D joins c to its input by one of the JOINS, or
# projects it (Miyato & Koyama 2018, arXiv:1802.05637).


def join_none(x: Tensor, c: Tensor | None) -> Tensor:
    return x


def join_concat(x: Tensor, c: Tensor) -> Tensor:
    """(B, ...) inputs, (B, C) -> (B, D + C): c appended to the flattened input (MLP)."""
    return torch.cat([x.flatten(1), c.to(x.dtype)], 1)


def join_channels(x: Tensor, c: Tensor) -> Tensor:
    """(B, ch, H, W), (B, C) -> (B, ch + C, H, W): each entry of c as a constant map (conv)."""
    maps = c.to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])
    return torch.cat([x, maps], 1)


JOINS = {"concat": join_concat, "channels": join_channels, "projection": join_none}


class OneHot(nn.Module):
    """Class ids (B,) int64 -> (B, K) float one-hot."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, y: Tensor) -> Tensor:
        return F.one_hot(y.long(), self.k).float()


class Scale(nn.Module):
    """x -> factor * x (no parameters)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


class Attributes(nn.Module):
    """Attribute vectors (B, A) of 0/1 -> the same, as floats."""

    def forward(self, a: Tensor) -> Tensor:
        return a.float()


class ConditionalGenerator(nn.Module):
    """(z (B, Z), labels) -> net(cat(z, code(labels))): the label code is part of G, so G's
    optimizer trains an embedding and ``train.ema`` averages it."""

    def __init__(self, net: nn.Module, code: nn.Module) -> None:
        super().__init__()
        self.net, self.code = net, code

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        return self.net(torch.cat([z, self.code(labels).to(z.dtype)], 1))


class Discriminator(nn.Module):
    """x (B, ...) [, c (B, C)] -> (B, 1): ``trunk`` gives the penultimate features phi (B, F),
    a linear ``head`` the output. With a condition, c is joined to the input (``join``) or, with
    ``project`` (a bias-free linear C -> F, i.e. a class embedding V), c^T V phi is added."""

    def __init__(self, trunk: nn.Module, head: nn.Module, join=join_none, project=None) -> None:
        super().__init__()
        self.trunk, self.head, self.join, self.project = trunk, head, join, project

    def features(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        return self.trunk(self.join(x, c))

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        phi = self.features(x, c)
        out = self.head(phi)
        if self.project is not None:
            out = out + (self.project(c.to(phi.dtype)) * phi).sum(1, keepdim=True)
        return out
