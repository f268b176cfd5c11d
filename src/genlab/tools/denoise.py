"""Denoising with an autoencoder run (``genlab denoise``): corrupt n held-out images, reconstruct
them with the run's encoder and decoder, and write one PNG with three rows (noisy / denoised /
clean), with the per-pixel squared errors on the [0, 1] scale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genlab.api import check_split, load, load_config
from genlab.core.errors import ConfigError
from genlab.core.io import atomic_write_bytes
from genlab.data import load_data
from genlab.data.pixels import to_model, to_unit
from genlab.models.autoencoder import CORRUPTIONS, corruption_problem
from genlab.models.base import has_encoder
from genlab.models.sampling import grid_png

# What a run trained without corruption is shown with, unless the corruption is chosen.
FALLBACK = ("gaussian", 0.3)
MAX_IMAGES = 64


def resolve_corruption(model_cfg, kind: str | None, level: float | None) -> tuple[str, float, str]:
    """(kind, level, note): the explicit choice, else the run's training corruption, else
    ``FALLBACK`` with a note saying so. Raises ConfigError for an invalid level."""
    own_kind = getattr(model_cfg, "corruption", "none")
    own_level = getattr(model_cfg, "noise_level", 0.0)
    note = ""
    if kind is None:
        if own_kind != "none":
            kind = own_kind
            level = own_level if level is None else level
        else:
            kind = FALLBACK[0]
            level = FALLBACK[1] if level is None else level
            note = f"the run was trained without corruption; showing {kind} noise"
    elif level is None:
        level = own_level if kind == own_kind else FALLBACK[1]
    problem = corruption_problem(kind, level)
    if problem:
        raise ConfigError(f"--noise-level {level:g}: {problem}")
    return kind, level, note


def pixel_mse(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over all pixels of the squared difference of two [-1, 1] batches on the [0, 1]
    scale (a quarter of the [-1, 1] value)."""
    return float((to_unit(a) - to_unit(b)).pow(2).mean())


def denoise(
    run_dir: str | Path,
    n: int = 8,
    *,
    seed: int = 0,
    corruption: str | None = None,
    noise_level: float | None = None,
    split: str = "test",
    out: str | Path | None = None,
    step: int | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Corrupt the first ``n`` (1..64) images of ``split`` with ``corruption`` at
    ``noise_level`` (default: the run's own, else gaussian 0.3; noise from ``seed``),
    reconstruct them, and write the PNG ``out`` (default RUN/samples/denoise_seedS.png) whose
    rows are noisy / denoised / clean. Returns ``{"kind", "level", "note", "mse_noisy",
    "mse_denoised", "png"}``: the corruption used, a note when it is the fallback (else ""),
    the per-pixel MSEs against the clean images on the [0, 1] scale and the PNG's path."""
    if not 1 <= n <= MAX_IMAGES:
        raise ConfigError(f"-n {n}: give between 1 and {MAX_IMAGES} images")
    check_split(split)
    cfg = load_config(run_dir)
    kind, level, note = resolve_corruption(cfg.model, corruption, noise_level)
    model = load(run_dir, step=step, device=device)
    if not has_encoder(model):
        raise ConfigError(
            f"model {cfg.model.name!r} of {run_dir} has no encoder; "
            "denoise needs an autoencoder run (e.g. `genlab train dae`)"
        )
    if model.spec.kind != "image":
        raise ConfigError(f"{run_dir} was trained on points; denoise needs an image run")
    images = getattr(load_data(cfg.data), split)
    if len(images) < n:
        raise ConfigError(f"-n {n}: the {split} split has only {len(images)} images")
    clean = to_model(images.x[:n]).to(model.device)  # (n, C, H, W) in [-1, 1]
    labels = None if images.y is None else images.y[:n].to(model.device)
    generator = torch.Generator().manual_seed(seed)
    noisy = CORRUPTIONS[kind](clean, level, generator)
    denoised = model.reconstruct(noisy, labels=labels)
    png = Path(out or Path(run_dir) / "samples" / f"denoise_seed{seed}.png")
    atomic_write_bytes(png, grid_png(torch.cat([noisy, denoised, clean]).cpu(), nrow=n))
    return {
        "kind": kind,
        "level": level,
        "note": note,
        "mse_noisy": pixel_mse(noisy, clean),
        "mse_denoised": pixel_mse(denoised, clean),
        "png": png,
    }
