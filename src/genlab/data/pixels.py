"""The pixel-range rule, in one place.

Datasets hold images as ``uint8`` in [0, 255]; models see ``float32`` in [-1, 1]. Every
conversion between the two goes through this module.
"""

from __future__ import annotations

import torch


def to_model(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 (B, C, H, W) in [0, 255] -> float in [-1, 1]."""
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {images.dtype}")
    return images.to(dtype).div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float in [-1, 1] (values outside are clipped) -> uint8 in [0, 255], rounded."""
    return images.detach().float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """float in [-1, 1] -> float in [0, 1] (the target of a Bernoulli likelihood)."""
    return images.add(1.0).mul(0.5)


def from_unit(images: torch.Tensor) -> torch.Tensor:
    """float in [0, 1] -> float in [-1, 1]."""
    return images.mul(2.0).sub(1.0)
