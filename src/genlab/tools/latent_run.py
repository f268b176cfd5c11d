"""The five pictures of ``genlab latent`` as functions of a run directory: ``recon`` (inputs over
reconstructions), ``interp`` (linear or spherical paths between pairs of images), ``attribute``
(add an attribute vector to new images), ``traverse`` (one code dimension at a time) and
``scatter`` (codes coloured by class).

Each loads the run's checkpoint and its data, picks images of a split with ``seed`` (the same
seed, the same picture), does the work with ``genlab.tools.latent``, writes a PNG (default
``RUN/latent/TOOL_SPLIT_seedS.png``) and returns a dict with its path under ``"png"`` and what
else it measured."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from genlab.api import check_split, load, load_config
from genlab.core.errors import ConfigError, DataError
from genlab.core.io import atomic_write_bytes
from genlab.core.registry import MODELS
from genlab.data import load_data
from genlab.data.base import DataSpec, Split
from genlab.models.base import has_encoder
from genlab.models.sampling import code_scatter_png, grid_png
from genlab.tools import latent

VECTOR_IMAGES = 5000  # training images an attribute vector is averaged over (at most)
CELL = 64  # smaller images are enlarged (nearest) to at least this many pixels in a grid
PAD = 80  # dark grey borders: cells stay apart on black backgrounds (shapes, digits)


def encoder_models() -> list[str]:
    """Registered models whose class implements the encoder contract."""
    keys = ("encode", "decode", "reconstruct")  # code_dim may be set per instance
    return [n for n in MODELS.names() if all(hasattr(MODELS.get(n), k) for k in keys)]


def open_run(
    run_dir: str | Path, split: str, step: int | None, ema: bool, device: str
) -> tuple[torch.nn.Module, DataSpec, Split, Split]:
    """(model, data spec, the chosen split, the train split) of a run, after the checks."""
    check_split(split)
    cfg = load_config(run_dir)
    model = load(run_dir, step=step, ema=ema, device=device)
    if not has_encoder(model):
        raise ConfigError(
            f"genlab latent needs a model with an encoder ({', '.join(encoder_models())}); "
            f"{run_dir} is a {cfg.model.name}"
        )
    data = load_data(cfg.data)
    if data.spec.kind != "image":
        raise ConfigError(f"genlab latent works on images; {run_dir} was trained on points")
    if tuple(data.spec.shape) != tuple(model.spec.shape):
        raise DataError(
            f"dataset {cfg.data.name!r} now gives {data.spec.shape} images but {run_dir} "
            f"was trained on {model.spec.shape}; restore the data it was trained on"
        )
    return model, data.spec, getattr(data, split), data.train


def _count(value: int, what: str, low: int = 1, high: int = 10_000) -> int:
    if not low <= value <= high:
        raise ConfigError(f"{what} {value}: give a number from {low} to {high}")
    return value


def _labels(split: Split, index: torch.Tensor) -> torch.Tensor | None:
    return None if split.y is None else split.y[index]


def _write(run_dir, out, stem: str, split: str, seed: int, images, nrow: int) -> Path:
    path = Path(out or Path(run_dir) / "latent" / f"{stem}_{split}_seed{seed}.png")
    atomic_write_bytes(path, grid_png(images, nrow=nrow, min_cell=CELL, pad_value=PAD))
    return path


def recon(
    run_dir: str | Path,
    *,
    n: int = 8,
    seed: int = 0,
    split: str = "test",
    out: str | Path | None = None,
    step: int | None = None,
    ema: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    """``n`` (1..256) random images of ``split`` in the top row, their reconstructions below.
    Returns ``{"png", "n"}``."""
    n = _count(n, "--n", high=256)
    model, _, images, _ = open_run(run_dir, split, step, ema, device)
    idx = latent.pick(len(images), n, torch.Generator().manual_seed(seed))
    grid = latent.reconstruction_grid(model, images.x[idx], _labels(images, idx))
    return {"png": _write(run_dir, out, "recon", split, seed, grid, len(idx)), "n": len(idx)}


def interp(
    run_dir: str | Path,
    *,
    mode: str = "linear",
    steps: int = 8,
    n: int = 4,
    seed: int = 0,
    split: str = "test",
    out: str | Path | None = None,
    step: int | None = None,
    ema: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    """``n`` (1..64) random pairs of images of ``split``, one per row: the first image,
    ``steps`` (2..64) decodings of codes on the ``mode`` path ("linear" or "slerp") between
    their codes, the second image. Returns ``{"png", "n", "mode"}``."""
    n, steps = _count(n, "--n", high=64), _count(steps, "--steps", 2, 64)
    model, _, images, _ = open_run(run_dir, split, step, ema, device)
    if len(images) < 2:
        raise DataError(f"the {split} split has fewer than 2 images to interpolate")
    gen = torch.Generator().manual_seed(seed)
    idx = torch.stack([latent.pick(len(images), 2, gen) for _ in range(n)])  # (n, 2) distinct
    a, b = idx[:, 0], idx[:, 1]
    labels = None if images.y is None else (images.y[a], images.y[b])
    strip = latent.interpolation_strip(model, images.x[a], images.x[b], steps, mode, labels)
    png = _write(run_dir, out, f"interp_{mode}", split, seed, strip, steps + 2)
    return {"png": png, "n": n, "mode": mode}


def attribute(
    run_dir: str | Path,
    attr: str,
    *,
    strength: float = 1.5,
    n: int = 8,
    threshold: float = latent.AREA_THRESHOLD,
    seed: int = 0,
    split: str = "test",
    out: str | Path | None = None,
    step: int | None = None,
    ema: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    """Add ``strength`` times the vector of attribute ``attr`` (mean code of training images
    with it minus the mean without, over at most VECTOR_IMAGES) to ``n`` (1..256) images of
    ``split`` without it. Rows: inputs, reconstructions, edited. Returns ``{"png", "attr",
    "strength", "vector_norm", "n", "threshold", "area_before", "area_after"}``; the mean
    foreground areas (pixels brighter than ``threshold`` in [-1, 1)) are None unless the data
    has factors (light shapes on black, where the area is meaningful)."""
    n = _count(n, "--n", high=256)
    if not -1 <= threshold < 1:
        raise ConfigError(f"--threshold {threshold:g}: give a value in [-1, 1)")
    model, spec, images, train = open_run(run_dir, split, step, ema, device)
    gen = torch.Generator().manual_seed(seed)
    src = latent.pick(len(train), VECTOR_IMAGES, gen)
    src_mask = latent.attribute_mask(train, spec, attr)[src]
    without = (~latent.attribute_mask(images, spec, attr)).nonzero().squeeze(1)
    if len(without) == 0:
        raise DataError(f"every {split} image has attribute {attr!r}; nothing to edit")
    tgt = without[latent.pick(len(without), n, gen)]
    edit = latent.attribute_edit(
        model,
        train.x[src],
        src_mask,
        images.x[tgt],
        strength,
        source_labels=_labels(train, src),
        target_labels=_labels(images, tgt),
        threshold=threshold,
    )
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", attr)
    png = _write(run_dir, out, f"attribute_{safe}", split, seed, edit.grid(), len(tgt))
    shapes = bool(spec.factor_names)
    return {
        "png": png,
        "attr": attr,
        "strength": strength,
        "vector_norm": edit.vector.norm().item(),
        "n": len(tgt),
        "threshold": threshold,
        "area_before": edit.area_before.mean().item() if shapes else None,
        "area_after": edit.area_after.mean().item() if shapes else None,
    }


def traverse(
    run_dir: str | Path,
    *,
    steps: int = 9,
    dims: int = 10,
    seed: int = 0,
    split: str = "test",
    out: str | Path | None = None,
    step: int | None = None,
    ema: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    """One row per code dimension (at most ``dims``, the widest spread), ``steps`` values each
    about the code of one image of ``split`` (``genlab.tools.latent.traversal``). Returns
    ``{"png", "dims", "code_dim"}``: the dimensions shown, top to bottom, of ``code_dim``."""
    steps, dims = _count(steps, "--steps", 2, 64), _count(dims, "--dims", 1, 256)
    model, _, images, _ = open_run(run_dir, split, step, ema, device)
    gen = torch.Generator().manual_seed(seed)
    idx = latent.pick(len(images), 2000, gen)
    codes = latent.encode(model, images.x[idx], _labels(images, idx))
    label = None if images.y is None else images.y[idx[0]]
    grid, shown = latent.traversal(model, codes, codes[0], steps, dims, label)
    png = _write(run_dir, out, "traverse", split, seed, grid, steps)
    return {"png": png, "dims": shown, "code_dim": codes.shape[1]}


def scatter(
    run_dir: str | Path,
    *,
    n: int = 2000,
    seed: int = 0,
    split: str = "test",
    out: str | Path | None = None,
    step: int | None = None,
    ema: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    """A 2-D map of the codes of at most ``n`` (2..100000) images of ``split``, coloured by
    class: the codes themselves when 2-D, else their first two principal components. Returns
    ``{"png", "n", "title"}``, the title naming the projection."""
    n = _count(n, "--n", 2, 100_000)
    model, spec, images, _ = open_run(run_dir, split, step, ema, device)
    idx = latent.pick(len(images), n, torch.Generator().manual_seed(seed))
    labels = _labels(images, idx)
    codes = latent.encode(model, images.x[idx], labels)
    points, note = latent.map_2d(codes)
    title = f"{len(idx)} {split} codes ({note})"
    png = Path(out or Path(run_dir) / "latent" / f"scatter_{split}_seed{seed}.png")
    atomic_write_bytes(png, code_scatter_png(points, labels, spec.class_names, title))
    return {"png": png, "n": len(idx), "title": title}
