"""The layer factory: normalisation and spectral norm are switched here, never by ``if`` inside
an architecture (the StudioGAN pattern). A network asks the factory for its layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn
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
