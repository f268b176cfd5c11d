"""``genlab latent TOOL RUN``: explore the code space of a trained model with an encoder.

Tools: ``recon`` (inputs over reconstructions), ``interp`` (linear or spherical paths between
pairs of images), ``attribute --attr NAME`` (add an attribute vector to new images),
``traverse`` (one code dimension at a time) and ``scatter`` (codes coloured by class). Each
writes a PNG (default ``RUN/latent/TOOL_SPLIT_seedS.png``) and prints its path. The work is done
by ``genlab.tools.latent``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch

from genlab import api
from genlab.cli.args import add_checkpoint_args
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


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("run_dir", metavar="RUN", help="a run directory (genlab train --out)")
    p.add_argument("--seed", type=int, default=0, help="seed of the images picked (default 0)")
    p.add_argument(
        "--split",
        choices=("test", "train"),
        default="test",
        help="split the images come from (default test)",
    )
    p.add_argument("--out", help="output PNG (default RUN/latent/TOOL_SPLIT_seedS.png)")
    add_checkpoint_args(p)
    return p


def add_parser(subs) -> None:
    p = subs.add_parser("latent", help="explore the latent space of a model with an encoder")
    tools = p.add_subparsers(dest="tool", required=True, parser_class=type(p))
    common = [_common()]
    t = tools.add_parser("recon", parents=common, help="inputs (top) and reconstructions")
    t.add_argument("--n", type=int, default=8, help="images (default 8)")
    t.set_defaults(run=run_recon)
    t = tools.add_parser("interp", parents=common, help="interpolate between pairs of images")
    t.add_argument("--mode", choices=tuple(latent.INTERPOLATIONS), default="linear")
    t.add_argument("--steps", type=int, default=8, help="decoded steps per pair (default 8)")
    t.add_argument("--n", type=int, default=4, help="pairs, one per row (default 4)")
    t.set_defaults(run=run_interp)
    t = tools.add_parser("attribute", parents=common, help="add an attribute vector to images")
    t.add_argument("--attr", required=True, help="a binary attribute or class name of the data")
    t.add_argument("--strength", type=float, default=1.5, help="multiple of the vector added (1.5)")
    t.add_argument("--n", type=int, default=8, help="images without the attribute (default 8)")
    t.add_argument(
        "--threshold",
        type=float,
        default=latent.AREA_THRESHOLD,
        help="foreground pixels are brighter than this, in [-1, 1] (default -0.5)",
    )
    t.set_defaults(run=run_attribute)
    t = tools.add_parser("traverse", parents=common, help="vary one code dimension at a time")
    t.add_argument("--steps", type=int, default=9, help="values per dimension (default 9)")
    t.add_argument("--dims", type=int, default=10, help="most dimensions shown (default 10)")
    t.set_defaults(run=run_traverse)
    t = tools.add_parser("scatter", parents=common, help="2-D map of codes coloured by class")
    t.add_argument("--n", type=int, default=2000, help="most images encoded (default 2000)")
    t.set_defaults(run=run_scatter)


# ----------------------------------------------------------------------------- shared


def encoder_models() -> list[str]:
    """Registered models whose class implements the encoder contract."""
    keys = ("encode", "decode", "reconstruct")  # code_dim may be set per instance
    return [n for n in MODELS.names() if all(hasattr(MODELS.get(n), k) for k in keys)]


def _open(args) -> tuple[torch.nn.Module, DataSpec, Split, Split]:
    """(model, data spec, the chosen split, the train split) of RUN, after the checks."""
    cfg = api.load_config(args.run_dir)
    model = api.load(args.run_dir, step=args.step, ema=not args.no_ema, device=args.device)
    if not has_encoder(model):
        raise ConfigError(
            f"genlab latent needs a model with an encoder ({', '.join(encoder_models())}); "
            f"{args.run_dir} is a {cfg.model.name}"
        )
    data = load_data(cfg.data)
    if data.spec.kind != "image":
        raise ConfigError(f"genlab latent works on images; {args.run_dir} was trained on points")
    if tuple(data.spec.shape) != tuple(model.spec.shape):
        raise DataError(
            f"dataset {cfg.data.name!r} now gives {data.spec.shape} images but {args.run_dir} "
            f"was trained on {model.spec.shape}; restore the data it was trained on"
        )
    return model, data.spec, getattr(data, args.split), data.train


def _count(value: int, what: str, low: int = 1, high: int = 10_000) -> int:
    if not low <= value <= high:
        raise ConfigError(f"{what} {value}: give a number from {low} to {high}")
    return value


def _labels(split: Split, index: torch.Tensor) -> torch.Tensor | None:
    return None if split.y is None else split.y[index]


def _write(args, png: bytes, name: str | None = None) -> Path:
    stem = name or args.tool
    out = Path(
        args.out or Path(args.run_dir) / "latent" / f"{stem}_{args.split}_seed{args.seed}.png"
    )
    atomic_write_bytes(out, png)
    print(out)
    return out


# ----------------------------------------------------------------------------- tools


def run_recon(args) -> int:
    n = _count(args.n, "--n", high=256)
    model, _, split, _ = _open(args)
    idx = latent.pick(len(split), n, torch.Generator().manual_seed(args.seed))
    images = latent.reconstruction_grid(model, split.x[idx], _labels(split, idx))
    _write(args, grid_png(images, nrow=len(idx), min_cell=CELL, pad_value=PAD))
    return 0


def run_interp(args) -> int:
    n, steps = _count(args.n, "--n", high=64), _count(args.steps, "--steps", 2, 64)
    model, _, split, _ = _open(args)
    if len(split) < 2:
        raise DataError(f"the {args.split} split has fewer than 2 images to interpolate")
    gen = torch.Generator().manual_seed(args.seed)
    idx = torch.stack([latent.pick(len(split), 2, gen) for _ in range(n)])  # (n, 2) distinct
    a, b = idx[:, 0], idx[:, 1]
    labels = None if split.y is None else (split.y[a], split.y[b])
    strip = latent.interpolation_strip(model, split.x[a], split.x[b], steps, args.mode, labels)
    _write(
        args, grid_png(strip, nrow=steps + 2, min_cell=CELL, pad_value=PAD), f"interp_{args.mode}"
    )
    return 0


def run_attribute(args) -> int:
    n = _count(args.n, "--n", high=256)
    if not -1 <= args.threshold < 1:
        raise ConfigError(f"--threshold {args.threshold:g}: give a value in [-1, 1)")
    model, spec, split, train = _open(args)
    gen = torch.Generator().manual_seed(args.seed)
    src = latent.pick(len(train), VECTOR_IMAGES, gen)
    src_mask = latent.attribute_mask(train, spec, args.attr)[src]
    without = (~latent.attribute_mask(split, spec, args.attr)).nonzero().squeeze(1)
    if len(without) == 0:
        raise DataError(f"every {args.split} image has attribute {args.attr!r}; nothing to edit")
    tgt = without[latent.pick(len(without), n, gen)]
    edit = latent.attribute_edit(
        model,
        train.x[src],
        src_mask,
        split.x[tgt],
        args.strength,
        source_labels=_labels(train, src),
        target_labels=_labels(split, tgt),
        threshold=args.threshold,
    )
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", args.attr)
    _write(
        args,
        grid_png(edit.grid(), nrow=len(tgt), min_cell=CELL, pad_value=PAD),
        f"attribute_{safe}",
    )
    print(
        f"attribute {args.attr!r}, strength {args.strength:g}: vector norm "
        f"{edit.vector.norm().item():.3f}, {len(tgt)} images without it "
        "(rows: inputs, reconstructions, edited)"
    )
    if spec.factor_names:  # light shapes on black: the foreground area is meaningful
        before, after = edit.area_before.mean().item(), edit.area_after.mean().item()
        print(
            f"mean foreground area (pixels > {args.threshold:g}): before {before:.1f} px, "
            f"after {after:.1f} px ({after - before:+.1f})"
        )
    return 0


def run_traverse(args) -> int:
    steps, dims = _count(args.steps, "--steps", 2, 64), _count(args.dims, "--dims", 1, 256)
    model, _, split, _ = _open(args)
    gen = torch.Generator().manual_seed(args.seed)
    idx = latent.pick(len(split), 2000, gen)
    codes = latent.encode(model, split.x[idx], _labels(split, idx))
    label = None if split.y is None else split.y[idx[0]]
    images, shown = latent.traversal(model, codes, codes[0], steps, dims, label)
    _write(args, grid_png(images, nrow=steps, min_cell=CELL, pad_value=PAD))
    print(f"rows: code dims {', '.join(map(str, shown))} of {codes.shape[1]}")
    return 0


def run_scatter(args) -> int:
    n = _count(args.n, "--n", 2, 100_000)
    model, spec, split, _ = _open(args)
    idx = latent.pick(len(split), n, torch.Generator().manual_seed(args.seed))
    labels = _labels(split, idx)
    codes = latent.encode(model, split.x[idx], labels)
    points, note = latent.map_2d(codes)
    title = f"{len(idx)} {args.split} codes ({note})"
    _write(args, code_scatter_png(points, labels, spec.class_names, title))
    print(title)
    return 0
