"""``genlab sample RUN [-n N] [--seed S] [--truncation T] [--label L] [--grid classes |
--interpolate K] [--out FILE] [--npy]``.

Three pictures, each from latents drawn with ``--seed``:

- default: N samples (default 64) in a square grid; ``--label L`` makes them all class L (an
  index or a class name) on a class-conditional model;
- ``--grid classes``: one row per class, N columns (default 8); column j uses the same latent in
  every row, so it shows one style across the classes;
- ``--interpolate K``: N rows (default 8), each the K-step spherical path between two random
  latents (``--label`` holds every row at one class).

``--truncation T`` draws every latent from N(0, 1) truncated to [-T, T] (Brock et al. 2019):
smaller T, more typical and less varied samples. Grid modes and truncation need a model that
generates from a latent (``genlab.models.base``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genlab import api
from genlab.cli.args import add_checkpoint_args
from genlab.core.errors import ConfigError
from genlab.core.io import atomic_write
from genlab.models.sampling import (
    MIN_TRUNCATION,
    class_grid,
    interpolation_rows,
    sample_truncated,
    save_samples,
)

MAX_SAMPLES = 100_000


def add_parser(subs) -> None:
    p = subs.add_parser("sample", help="draw samples from a trained run")
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument(
        "-n",
        type=int,
        help="samples (default 64); columns with --grid classes, rows with --interpolate (8)",
    )
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--out", help="output file (default RUN/samples/<what>_seedS.png or .npy)")
    p.add_argument(
        "--npy", action="store_true", help="write the raw array (.npy): float32, or int64 token ids"
    )
    add_checkpoint_args(p)
    p.add_argument(
        "--truncation", type=float, metavar="T", help="latents from N(0, 1) truncated to [-T, T]"
    )
    p.add_argument(
        "--label",
        metavar="L",
        help="class index or name (class-conditional models); attribute models: the attributes "
        "that are on, e.g. large,left, or 0/1 per attribute",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--grid", choices=["classes"], help="classes: one row per class")
    mode.add_argument(
        "--interpolate", type=int, metavar="K", help="rows of K-step latent interpolations"
    )
    p.set_defaults(run=run)


def check_args(args) -> int:
    """Argument errors found before the run is loaded; returns the resolved -n."""
    plain = args.grid is None and args.interpolate is None
    n = args.n if args.n is not None else (64 if plain else 8)
    if not 1 <= n <= MAX_SAMPLES:
        raise ConfigError(f"-n {n}: give between 1 and {MAX_SAMPLES} samples")
    if args.truncation is not None and not args.truncation >= MIN_TRUNCATION:
        raise ConfigError(
            f"--truncation {args.truncation}: give a bound of at least {MIN_TRUNCATION}, "
            "e.g. 0.7 (smaller bounds reject nearly every draw)"
        )
    if args.interpolate is not None and args.interpolate < 2:
        raise ConfigError(f"--interpolate {args.interpolate}: give at least 2 steps per row")
    if args.label is not None and args.grid == "classes":
        raise ConfigError("--label and --grid classes: a class grid shows every class; drop one")
    return n


def parse_attrs(model, text: str) -> torch.Tensor:
    """The attribute vector (A,) float 0/1 of ``--label`` for an attribute-conditional model:
    the names of the attributes that are on (``large,left``), or A values 0/1 (``1,0,1,0``)."""
    a, names = model.num_attrs, list(model.spec.attr_names or ())
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) == a and all(p in ("0", "1") for p in parts):
        return torch.tensor([float(p) for p in parts])
    if parts and names and all(p in names for p in parts):
        return torch.tensor([1.0 if n in parts else 0.0 for n in names])
    shown = f"names of the attributes that are on ({', '.join(names)}) or " if names else ""
    raise ConfigError(f"--label {text!r}: this model takes {shown}{a} comma-separated 0/1 values")


def parse_label(model, text: str) -> int | torch.Tensor:
    """The class index of ``--label`` (a class name of the data or an index 0..K-1), or the
    attribute vector of an attribute-conditional model (``parse_attrs``)."""
    k = getattr(model, "num_classes", None)
    if not k and getattr(model, "num_attrs", None):
        return parse_attrs(model, text)
    if not k:
        raise ConfigError(
            "--label needs a conditional model (cgan, or vae with model.num_classes); "
            f"this run's {model.cfg.name!r} is unconditional"
        )
    names = list(model.spec.class_names or ())
    if text in names:
        return names.index(text)
    index = int(text) if text.lstrip("-").isdigit() else -1
    if not 0 <= index < k:
        plain = names == [str(i) for i in range(k)]  # names that are the indices add nothing
        shown = f" or a name ({', '.join(names)})" if names and not plain else ""
        raise ConfigError(f"--label {text!r} is not a class: use an index 0..{k - 1}{shown}")
    return index


def repeat_label(label: int | torch.Tensor, n: int) -> torch.Tensor:
    """n copies: (n,) class ids or (n, A) attribute rows."""
    if isinstance(label, torch.Tensor):
        return label.expand(n, -1).clone()
    return torch.full((n,), label)


def label_tag(label: int | torch.Tensor) -> str:
    """A file-name part: the class index, or the attribute bits (``1010``)."""
    if isinstance(label, torch.Tensor):
        return "".join(str(int(v)) for v in label)
    return str(label)


def run(args) -> int:
    n = check_args(args)
    model = api.load(args.run_dir, step=args.step, ema=not args.no_ema, device=args.device)
    generator = torch.Generator().manual_seed(args.seed)
    label = None if args.label is None else parse_label(model, args.label)
    labels = None if label is None else repeat_label(label, n)
    t, nrow = args.truncation, None
    if args.grid == "classes":
        what, nrow = "classes", n
        samples = class_grid(model, n, truncation=t, generator=generator)
    elif args.interpolate is not None:
        what, nrow = "interpolate", args.interpolate
        samples = interpolation_rows(
            model, n, args.interpolate, truncation=t, labels=labels, generator=generator
        )
    else:
        what = "sample"
        samples = sample_truncated(model, n, t, labels=labels, generator=generator)
    samples = samples.cpu()
    stem = "_".join(
        [what]
        + ([f"label{label_tag(label)}"] if label is not None else [])
        + ([f"trunc{t:g}"] if t is not None else [])
        + [f"seed{args.seed}"]
    )
    suffix = ".npy" if args.npy else ".png"
    out = Path(args.out or Path(args.run_dir) / "samples" / f"{stem}{suffix}")
    if args.npy:
        # Token ids stay integers; images and points are float32.
        array = (
            samples.numpy()
            if not samples.is_floating_point()
            else samples.numpy().astype(np.float32)
        )
        atomic_write(out, lambda f: np.save(f, array, allow_pickle=False))
    else:
        title = f"{len(samples)} samples, seed {args.seed}" + (f", truncation {t:g}" if t else "")
        save_samples(samples, model.spec, out, title=title, nrow=nrow)
    print(out)
    return 0
