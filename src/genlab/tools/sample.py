"""Samples of a trained run as a picture or an array (``genlab sample``).

Three pictures, each from latents drawn with ``seed``:

- default: n samples (default 64) in a square grid; ``label`` makes them all class L (an index
  or a class name) on a class-conditional model;
- ``grid="classes"``: one row per class, n columns (default 8); column j uses the same latent in
  every row, so it shows one style across the classes;
- ``interpolate=K``: n rows (default 8), each the K-step spherical path between two random
  latents (``label`` holds every row at one class).

``truncation=T`` draws every latent from N(0, 1) truncated to [-T, T] (Brock et al. 2019):
smaller T, more typical and less varied samples. Grid modes and truncation need a model that
generates from a latent (``genlab.models.base``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genlab.api import load
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


def check_request(
    n: int | None,
    *,
    truncation: float | None = None,
    label: str | None = None,
    grid: str | None = None,
    interpolate: int | None = None,
) -> int:
    """Argument errors found before the run is loaded; returns the resolved n (64 samples, or
    8 columns / rows in the grid modes)."""
    plain = grid is None and interpolate is None
    n = n if n is not None else (64 if plain else 8)
    if not 1 <= n <= MAX_SAMPLES:
        raise ConfigError(f"-n {n}: give between 1 and {MAX_SAMPLES} samples")
    if truncation is not None and not truncation >= MIN_TRUNCATION:
        raise ConfigError(
            f"--truncation {truncation}: give a bound of at least {MIN_TRUNCATION}, "
            "e.g. 0.7 (smaller bounds reject nearly every draw)"
        )
    if grid is not None and grid != "classes":
        raise ConfigError(f"--grid {grid!r}: the only grid is classes")
    if grid is not None and interpolate is not None:
        raise ConfigError("--grid and --interpolate draw different pictures; choose one")
    if interpolate is not None and interpolate < 2:
        raise ConfigError(f"--interpolate {interpolate}: give at least 2 steps per row")
    if label is not None and grid == "classes":
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


def sample(
    run_dir: str | Path,
    n: int | None = None,
    *,
    seed: int = 0,
    truncation: float | None = None,
    label: str | None = None,
    grid: str | None = None,
    interpolate: int | None = None,
    out: str | Path | None = None,
    npy: bool = False,
    step: int | None = None,
    ema: bool = True,
    device: str = "cpu",
) -> Path:
    """Draw samples of a run's checkpoint (see the module docstring for ``grid``,
    ``interpolate``, ``label`` and ``truncation``) and write them to ``out``: a PNG grid, or
    with ``npy`` the raw array (float32 (N, ...) samples, int64 token ids). The default is
    RUN/samples/<what>_seedS.png (or .npy), <what> naming the picture, label and bound. Returns
    the path written."""
    n = check_request(n, truncation=truncation, label=label, grid=grid, interpolate=interpolate)
    model = load(run_dir, step=step, ema=ema, device=device)
    generator = torch.Generator().manual_seed(seed)
    cls = None if label is None else parse_label(model, label)
    labels = None if cls is None else repeat_label(cls, n)
    t, nrow = truncation, None
    if grid == "classes":
        what, nrow = "classes", n
        samples = class_grid(model, n, truncation=t, generator=generator)
    elif interpolate is not None:
        what, nrow = "interpolate", interpolate
        samples = interpolation_rows(
            model, n, interpolate, truncation=t, labels=labels, generator=generator
        )
    else:
        what = "sample"
        samples = sample_truncated(model, n, t, labels=labels, generator=generator)
    samples = samples.cpu()
    stem = "_".join(
        [what]
        + ([f"label{label_tag(cls)}"] if cls is not None else [])
        + ([f"trunc{t:g}"] if t is not None else [])
        + [f"seed{seed}"]
    )
    path = Path(out or Path(run_dir) / "samples" / f"{stem}{'.npy' if npy else '.png'}")
    if npy:
        # Token ids stay integers; images and points are float32.
        array = samples.numpy()
        if samples.is_floating_point():
            array = array.astype(np.float32)
        atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))
    else:
        title = f"{len(samples)} samples, seed {seed}" + (f", truncation {t:g}" if t else "")
        save_samples(samples, model.spec, path, title=title, nrow=nrow)
    return path
