"""What every dataset returns: two splits of one tensor each, and a spec a model is built from.

Images are ``uint8`` (N, C, H, W); 2-D toy data is ``float32`` (N, D). Labels are ``int64`` (N,)
or ``None``. A dataset with known generative factors (``shapes``) also gives binary attributes
``attrs`` (N, A) ``bool`` and continuous factors ``factors`` (N, F) ``float32``, their names in
the spec. A dataset loader is a function ``load(cfg: DataConfig) -> DataBundle`` registered in
``genlab.core.registry.DATASETS`` with the config fields it reads (others set by the user are
an error).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F

from genlab.core.config import DataConfig
from genlab.core.errors import ConfigError, DataError
from genlab.core.registry import DATASETS

# One training / evaluation batch: "x" (B, ...) in the model's range, and "y" (B,) int64
# labels, "attrs", "factors" where the data has them.
Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class DataSpec:
    """Everything a model needs to know about its data; saved in config.json so ``genlab.load``
    rebuilds a model without the dataset."""

    kind: Literal["image", "points", "interactions", "sequences"]
    shape: tuple[int, ...]  # (C, H, W) images, (D,) points, (num_items,) clicks, (L,) token ids
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. mixture centres and sigma
    attr_names: tuple[str, ...] | None = None  # columns of Split.attrs ("large", "left", ...)
    factor_names: tuple[str, ...] | None = None  # columns of Split.factors ("scale", "x", ...)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        for key in ("class_names", "attr_names", "factor_names"):
            d[key] = list(d[key]) if d[key] else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        names = {k: tuple(d[k]) if d.get(k) else None for k in ("class_names", "attr_names")}
        factors = d.get("factor_names")
        return cls(
            kind=d["kind"],
            shape=tuple(d["shape"]),
            num_classes=d.get("num_classes"),
            extra=dict(d.get("extra") or {}),
            factor_names=tuple(factors) if factors else None,
            **names,
        )


@dataclass
class Split:
    """One split held as one tensor: batches are sliced from ``x``, never assembled per sample."""

    # uint8 (N, C, H, W), float32 (N, D), or a scipy.sparse CSR (N, num_items) click matrix that
    # is never densified whole (the batcher densifies the rows of one batch).
    x: torch.Tensor
    y: torch.Tensor | None = None  # int64 (N,)
    attrs: torch.Tensor | None = None  # bool (N, A): binary attributes
    factors: torch.Tensor | None = None  # float32 (N, F): true generative factors

    def __post_init__(self) -> None:
        for what, t in (
            ("labels", self.y),
            ("attribute rows", self.attrs),
            ("factor rows", self.factors),
        ):
            if t is not None and len(t) != len(self):
                raise DataError(f"{len(t)} {what} for {len(self)} samples")

    def __len__(self) -> int:
        return self.x.shape[0]  # len() of a scipy.sparse matrix is an error

    def take(self, index: torch.Tensor) -> Split:
        pick = lambda t: None if t is None else t[index]  # noqa: E731
        x = self.x[index] if isinstance(self.x, torch.Tensor) else self.x[index.numpy()]
        return Split(x, pick(self.y), pick(self.attrs), pick(self.factors))


@dataclass
class DataBundle:
    name: str
    spec: DataSpec
    train: Split
    test: Split
    # Dataset-specific extras, e.g. the held-out users of a click matrix (genlab.data.recsys).
    extras: dict[str, Any] = field(default_factory=dict)


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


Loader = Callable[[DataConfig], DataBundle]


def register_dataset(name: str, *, uses: tuple[str, ...], help: str = "") -> Callable:
    """Register a loader with the ``data.*`` fields it reads; setting any other is an error."""

    def add(fn: Loader) -> Loader:
        fn.uses = frozenset(uses) | {"name"}  # type: ignore[attr-defined]
        DATASETS.add(name, fn, help=help)
        return fn

    return add


def load_data(cfg: DataConfig) -> DataBundle:
    """Load the dataset ``cfg.name`` names, after checking every field set is one it reads."""
    fn = DATASETS.get(cfg.name)
    # A field counts as set when it differs from its default (config.json repeats defaults).
    unused = sorted(
        f
        for f in type(cfg).model_fields
        if f not in fn.uses and getattr(cfg, f) != type(cfg).model_fields[f].default
    )
    if unused:
        raise ConfigError(
            f"data.{unused[0]} is not used by dataset {cfg.name!r} "
            f"(it reads: {', '.join(sorted(fn.uses - {'name'}))})"
        )
    return fn(cfg)
