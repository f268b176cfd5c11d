"""Checkpoints: ``RUN/checkpoints/step_N/{model,ema}.safetensors`` for weights, ``state.pt``
(optimizers, step, RNG, batch order; tensors and plain containers only, read back with
``weights_only=True``) and ``RUN/checkpoints/LATEST`` naming the newest complete one.

A checkpoint is written into a hidden temp directory and renamed into place, then LATEST is
replaced atomically, so a process killed at any moment leaves every complete checkpoint intact.
Each holds ``SHA256SUMS.json``, the hashes of its files: when the newest checkpoint no longer
matches them (a bad disk, a copy cut short), ``usable_checkpoint`` falls back to the newest one
that does, and says so; the last ``train.keep_checkpoints`` are kept for that.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from genlab.core.errors import CheckpointError
from genlab.core.io import atomic_write_text, fsync_dir, sha256_file

STEP_DIR = re.compile(r"^step_(\d+)$")
SUMS = "SHA256SUMS.json"


def _save_tensors(tensors: dict[str, Tensor], path: Path) -> None:
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path))
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def save_checkpoint(
    ckpt_root: Path,
    step: int,
    weights: dict[str, Tensor],
    state: dict[str, Any],
    ema: dict[str, Tensor] | None = None,
    keep: int = 3,
) -> Path:
    """Write ``step_{step}`` atomically, point LATEST at it, and prune to the newest ``keep``."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    tmp = ckpt_root / f".tmp-step_{step}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    _save_tensors(weights, tmp / "model.safetensors")
    if ema is not None:
        _save_tensors(ema, tmp / "ema.safetensors")
    torch.save(state, tmp / "state.pt")
    with open(tmp / "state.pt", "rb") as f:
        os.fsync(f.fileno())
    record_sums(tmp)
    final = ckpt_root / f"step_{step}"
    if final.exists():  # a resumed run reaching the same step again: replace it
        shutil.rmtree(final)
    os.rename(tmp, final)
    fsync_dir(ckpt_root)
    atomic_write_text(ckpt_root / "LATEST", final.name + "\n")
    _prune(ckpt_root, keep, final.name)
    return final


def _prune(ckpt_root: Path, keep: int, latest: str) -> None:
    steps = sorted(list_checkpoints(ckpt_root), key=lambda p: int(STEP_DIR.match(p.name)[1]))
    for old in steps[:-keep]:
        if old.name != latest:
            shutil.rmtree(old, ignore_errors=True)
    for leftover in ckpt_root.glob(".tmp-step_*"):  # from a killed writer
        shutil.rmtree(leftover, ignore_errors=True)


def list_checkpoints(ckpt_root: Path) -> list[Path]:
    if not ckpt_root.is_dir():
        return []
    return [p for p in ckpt_root.iterdir() if p.is_dir() and STEP_DIR.match(p.name)]


def latest_checkpoint(ckpt_root: Path, *, strict: bool = True) -> Path | None:
    """The checkpoint LATEST names, or None when the run has none yet. ``strict``: it must
    hold its weights (else a ``CheckpointError``); ``usable_checkpoint`` checks it fully."""
    marker = ckpt_root / "LATEST"
    if not marker.is_file():
        return None
    path = ckpt_root / marker.read_text().strip()
    if not STEP_DIR.match(path.name):
        raise CheckpointError(f"{marker} names {path.name!r}, which is not a checkpoint")
    if strict and not (path / "model.safetensors").is_file():
        raise CheckpointError(f"{marker} names {path.name!r}, which is not a complete checkpoint")
    return path


def record_sums(folder: Path) -> None:
    """Write ``SHA256SUMS.json``: the hash of every file of a checkpoint folder."""
    sums = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.name != SUMS}
    (folder / SUMS).write_text(json.dumps(sums, indent=1) + "\n")


def damage(path: Path) -> str | None:
    """Why checkpoint ``path`` cannot be trusted, or None when every file matches its
    recorded hash (a checkpoint written before hashes were recorded is checked for its files
    only)."""
    if not (path / "model.safetensors").is_file() or not (path / "state.pt").is_file():
        return "a file is missing"
    try:
        sums = json.loads((path / SUMS).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return f"its {SUMS} is unreadable"
    for name, digest in sums.items():
        if not (path / name).is_file():
            return f"{name} is missing"
        if sha256_file(path / name) != digest:
            return f"{name} does not match its recorded sha256"
    return None


def usable_checkpoint(ckpt_root: Path, *, warn: bool = True) -> Path | None:
    """The newest checkpoint whose files match their hashes, starting from the one LATEST
    names; a damaged newest one is skipped with a warning on stderr naming it. None when the
    run has no checkpoint; ``CheckpointError`` when none is intact."""
    latest = latest_checkpoint(ckpt_root, strict=False)
    if latest is None:
        return None
    newer_first = sorted(list_checkpoints(ckpt_root), key=checkpoint_step, reverse=True)
    candidates = [latest] + [p for p in newer_first if checkpoint_step(p) < checkpoint_step(latest)]
    skipped = []
    for path in candidates:
        why = damage(path)
        if why is None:
            if skipped and warn:
                print(f"genlab: warning: {'; '.join(skipped)}; using {path.name}", file=sys.stderr)
            return path
        skipped.append(f"checkpoint {path} is damaged ({why})")
    raise CheckpointError(f"no intact checkpoint in {ckpt_root}: {'; '.join(skipped)}")


def checkpoint_step(path: Path) -> int:
    return int(STEP_DIR.match(path.name)[1])


def read_weights(path: Path) -> dict[str, Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"cannot read weights {path}: {err}") from None


def read_state(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # corrupt, truncated, or holding objects we refuse to unpickle
        raise CheckpointError(
            f"cannot read training state {path}: it is damaged or holds more than tensors and "
            f"plain values; point {path.parent.parent / 'LATEST'} at an older step_N to resume"
        ) from None


def load_weights_into(module: nn.Module, weights: dict[str, Tensor], source: Path) -> None:
    """Load strictly; a mismatch is a clear error, not a silent partial load."""
    own = module.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    bad_shape = [k for k in own.keys() & weights.keys() if own[k].shape != weights[k].shape]
    if missing or unexpected or bad_shape:
        detail = (
            (missing and f"missing {missing[:3]}")
            or (unexpected and f"unexpected {unexpected[:3]}")
            or f"shape mismatch in {bad_shape[:3]}"
        )
        raise CheckpointError(f"{source} does not match the model in config.json: {detail}")
    module.load_state_dict(weights)
