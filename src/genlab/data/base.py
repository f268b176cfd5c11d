"""What every dataset returns: two splits of one tensor each, and a spec a model is built from.

Images are ``uint8`` (N, C, H, W); 2-D toy data is ``float32`` (N, D). Labels are ``int64`` (N,)
or ``None``. A dataset loader is a function ``load(cfg: DataConfig) -> DataBundle`` registered in
``genlab.registry.DATASETS`` with the config fields it reads (others set by the user are an error).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F

from genlab.errors import DataError


@dataclass(frozen=True)
class DataSpec:
    """Everything a model needs to know about its data; saved in config.json so ``genlab.load``
    rebuilds a model without the dataset."""

    kind: Literal["image", "points"]
    shape: tuple[int, ...]  # (C, H, W) for images, (D,) for points
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. mixture centres and sigma

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["class_names"] = list(self.class_names) if self.class_names else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        names = d.get("class_names")
        return cls(
            kind=d["kind"],
            shape=tuple(d["shape"]),
            num_classes=d.get("num_classes"),
            class_names=tuple(names) if names else None,
            extra=dict(d.get("extra") or {}),
        )


@dataclass
class Split:
    """One split held as one tensor: batches are sliced from ``x``, never assembled per sample."""

    x: torch.Tensor  # uint8 (N, C, H, W) or float32 (N, D)
    y: torch.Tensor | None = None  # int64 (N,)

    def __post_init__(self) -> None:
        if self.y is not None and len(self.y) != len(self.x):
            raise DataError(f"{len(self.y)} labels for {len(self.x)} samples")

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index: torch.Tensor) -> Split:
        return Split(self.x[index], None if self.y is None else self.y[index])


@dataclass
class DataBundle:
    name: str
    spec: DataSpec
    train: Split
    test: Split


def random_split(
    x: torch.Tensor, y: torch.Tensor | None, test_fraction: float, seed: int
) -> tuple[Split, Split]:
    """Deterministic train/test split: a permutation drawn from ``seed``."""
    n = len(x)
    if n == 0:
        raise DataError("the dataset has zero samples")
    n_test = round(n * test_fraction)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    full = Split(x, y)
    return full.take(perm[n_test:]), full.take(perm[:n_test])


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, size, size), antialiased bilinear (square inputs)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = F.interpolate(
        images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return out.round_().clamp_(0, 255).to(torch.uint8)


def image_spec(images: torch.Tensor, num_classes: int | None, class_names=None) -> DataSpec:
    _, c, h, w = images.shape
    return DataSpec(
        "image",
        (c, h, w),
        num_classes,
        tuple(class_names) if class_names else None,
    )
