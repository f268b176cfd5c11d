"""``genlab denoise RUN [-n 8] [--seed 0] [--corruption KIND] [--noise-level L] [--split test]
[--out PATH]``: corrupt n held-out images, reconstruct them, and write one PNG with three rows
(noisy / denoised / clean); print the per-pixel squared errors on the [0, 1] scale."""

from __future__ import annotations

from pathlib import Path

import torch

from genlab import api
from genlab.core.errors import ConfigError
from genlab.core.io import atomic_write_bytes
from genlab.data import load_data
from genlab.data.pixels import to_model, to_unit
from genlab.models.autoencoder import CORRUPTIONS, corruption_problem
from genlab.models.base import has_encoder
from genlab.models.sampling import grid_png

# What a run trained without corruption is shown with, unless --corruption says otherwise.
FALLBACK = ("gaussian", 0.3)
MAX_IMAGES = 64


def add_parser(subs) -> None:
    p = subs.add_parser(
        "denoise",
        help="corrupt held-out images and reconstruct them with an autoencoder run",
        description="Corrupt n images of a split, reconstruct them with the run's encoder and "
        "decoder, and write one PNG whose rows are noisy / denoised / clean.",
    )
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("-n", type=int, default=8, help=f"images, 1 to {MAX_IMAGES} (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the corruption noise (default 0)")
    p.add_argument(
        "--corruption",
        choices=list(CORRUPTIONS),
        help="noise kind (default: the run's own; gaussian for a run trained without noise)",
    )
    p.add_argument(
        "--noise-level",
        type=float,
        help="gaussian: std in [-1, 1] units; mask, salt_pepper: fraction (default: the run's)",
    )
    p.add_argument("--split", choices=["test", "train"], default="test", help="default test")
    p.add_argument("--out", help="output PNG (default RUN/samples/denoise_seedS.png)")
    p.add_argument("--step", type=int, help="checkpoint step (default: the newest)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.set_defaults(run=run)


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


def run(args) -> int:
    if not 1 <= args.n <= MAX_IMAGES:
        raise ConfigError(f"-n {args.n}: give between 1 and {MAX_IMAGES} images")
    cfg = api.load_config(args.run_dir)
    kind, level, note = resolve_corruption(cfg.model, args.corruption, args.noise_level)
    model = api.load(args.run_dir, step=args.step, device=args.device)
    if not has_encoder(model):
        raise ConfigError(
            f"model {cfg.model.name!r} of {args.run_dir} has no encoder; "
            "denoise needs an autoencoder run (e.g. `genlab train dae`)"
        )
    if model.spec.kind != "image":
        raise ConfigError(f"{args.run_dir} was trained on points; denoise needs an image run")
    split = getattr(load_data(cfg.data), args.split)
    if len(split) < args.n:
        raise ConfigError(f"-n {args.n}: the {args.split} split has only {len(split)} images")
    clean = to_model(split.x[: args.n]).to(model.device)  # (n, C, H, W) in [-1, 1]
    labels = None if split.y is None else split.y[: args.n].to(model.device)
    generator = torch.Generator().manual_seed(args.seed)
    noisy = CORRUPTIONS[kind](clean, level, generator)
    denoised = model.reconstruct(noisy, labels=labels)
    out = Path(args.out or Path(args.run_dir) / "samples" / f"denoise_seed{args.seed}.png")
    rows = torch.cat([noisy, denoised, clean]).cpu()
    atomic_write_bytes(out, grid_png(rows, nrow=args.n))
    if note:
        print(note)
    mse_noisy, mse_denoised = (pixel_mse(a, clean) for a in (noisy, denoised))
    print(f"corruption: {kind} {level:g}; rows: noisy / denoised / clean")
    print(f"per-pixel MSE on [0, 1]: noisy {mse_noisy:.5f}, denoised {mse_denoised:.5f}")
    print(out)
    return 0


def pixel_mse(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over all pixels of the squared difference of two [-1, 1] batches on the [0, 1]
    scale (a quarter of the [-1, 1] value)."""
    return float((to_unit(a) - to_unit(b)).pow(2).mean())
