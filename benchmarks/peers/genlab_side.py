"""Training throughput of genlab's own loop, timed the same way as the peer scripts.

genlab's ``Trainer`` is built exactly as ``genlab train`` builds it (config, data, model,
optimizers, ``BatchStream``), and each step is ``Trainer.train_one`` (next batch sliced from the
uint8 tensor and converted to [-1, 1], the model's ``train_step``) followed by reading the losses
as floats, which the trainer does every step on CPU to stop at the first non-finite loss. Left
out: tqdm, metrics.jsonl lines, sample grids and checkpoints (``genlab train`` and its
metrics.jsonl ``images_per_s`` include them). ``genlab bench`` times ``train_step`` alone on
batches prepared beforehand.

Prints one JSON object:
    python benchmarks/peers/genlab_side.py --model vae --steps 30 --warmup 5 --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import genlab
from genlab.core.config import build_config
from genlab.data import load_data
from genlab.models import build_model
from genlab.training.trainer import Trainer

BATCH = 128
SETTINGS = ["data.image_size=32", f"train.batch_size={BATCH}"]  # both sides, every script


def genlab_setup(model: str):
    """genlab's config for ``model`` (vae or dcgan) at 32x32 digits, batch 128, the data, and
    the model initialised from the config's seed: the networks a peer script hands its library."""
    cfg = build_config(model, data="digits", overrides=SETTINGS)
    torch.manual_seed(cfg.seed)
    data = load_data(cfg.data)
    return cfg, data, build_model(cfg.model, data.spec)


def rate_incl_epoch_ends(spans: list[list[float]], images_per_epoch: int) -> float:
    """Images/s from the start of the second epoch's loop to the end of the last one: the
    epochs after the first, with their end-of-epoch work (``spans``: [start, end] per epoch)."""
    later = spans[1:]
    return round(images_per_epoch * len(later) / (later[-1][1] - later[0][0]), 1)


class GenlabStepper:
    """genlab's Trainer for ``model`` (vae or dcgan) at 32x32 digits, batch 128; each call runs
    one step as ``genlab train`` does and returns its seconds. The peer scripts' ``--paired``
    mode calls it between their own steps. ``close`` removes the run directory."""

    def __init__(self, model: str, steps: int) -> None:
        overrides = [*SETTINGS, f"train.steps={steps}", "train.progress=false"]
        cfg = build_config(model, data="digits", overrides=overrides)
        self.dir = tempfile.TemporaryDirectory()
        self.trainer = Trainer(cfg, Path(self.dir.name) / "run")
        self.parameters = sum(p.numel() for p in self.trainer.model.parameters())

    def __call__(self) -> float:
        t0 = time.perf_counter()
        values = {k: float(v) for k, v in self.trainer.train_one().items()}
        seconds = time.perf_counter() - t0
        if not all(math.isfinite(v) for v in values.values()):
            raise RuntimeError(f"non-finite losses {values}")
        return seconds

    def close(self) -> None:
        self.dir.cleanup()


def rates(seconds: list[float], warmup: int, steps: int) -> dict[str, float]:
    """Images/s over ``steps`` steps after ``warmup``: from their total time, and from their
    median step (which a busy shared CPU disturbs less)."""
    timed = seconds[warmup : warmup + steps]
    if len(timed) < steps:
        raise RuntimeError(f"only {len(seconds)} steps were run")
    return {
        "images_per_s": round(BATCH * steps / sum(timed), 1),
        "images_per_s_median_step": round(BATCH / statistics.median(timed), 1),
    }


def paired_rates(peer: list[float], genlab: list[float], warmup: int, steps: int) -> dict:
    """genlab's ``rates`` from the steps run between the peer's (``peer[i]`` then
    ``genlab[i]``), and the ratio genlab / peer of images/s: over the totals, and the median
    of the step-by-step ratios, which a load spike on one step moves least."""
    mine, theirs = rates(genlab, warmup, steps), rates(peer, warmup, steps)
    window = slice(warmup, warmup + steps)
    pairs = [p / g for p, g in zip(peer[window], genlab[window], strict=True)]
    return {
        **{f"genlab_{k}": v for k, v in mine.items()},
        "ratio_genlab_over_peer": round(mine["images_per_s"] / theirs["images_per_s"], 3),
        "ratio_median_of_pairs": round(statistics.median(pairs), 3),
    }


def run_once(model: str, warmup: int, steps: int) -> dict[str, float]:
    load = os.getloadavg()[0]
    stepper = GenlabStepper(model, warmup + steps)
    try:
        seconds = [stepper() for _ in range(warmup + steps)]
    finally:
        stepper.close()
    return {**rates(seconds, warmup, steps), "parameters": stepper.parameters, "load_1min": load}


def loader_ms_per_batch(loader: torch.utils.data.DataLoader) -> float:
    """What a peer's DataLoader alone costs per batch (one pass, no training)."""
    t0 = time.perf_counter()
    k = sum(1 for _ in loader)
    return round((time.perf_counter() - t0) / k * 1e3, 2)


def arguments(description: str, *, paired: str | None = None, model: bool = False):
    """The options every script here takes (and ``--paired`` / ``--model`` where given)."""
    p = argparse.ArgumentParser(description=description)
    if model:
        p.add_argument("--model", choices=["vae", "dcgan"], required=True)
    p.add_argument("--steps", type=int, default=30, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    if paired:
        p.add_argument("--paired", action="store_true", help=paired)
    return p.parse_args()


def report(library: str, lib_version: str, model: str, args, run_once) -> None:
    """``run_once()`` ``args.repeats`` times (a trainer's messages go to stderr) and one JSON
    object on stdout: each run's figures as lists, and the settings."""
    torch.set_num_threads(args.threads)
    runs = []
    for _ in range(args.repeats):
        with contextlib.redirect_stdout(sys.stderr):
            runs.append(run_once())
    paired = {"paired": args.paired} if hasattr(args, "paired") else {}
    result = {
        "library": library,
        "version": lib_version,
        "model": model,
        **paired,
        **{k: [r[k] for r in runs] for k in runs[0]},
        "batch": BATCH,
        "image_size": 32,
        "steps": args.steps,
        "warmup": args.warmup,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    print(json.dumps(result))


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0], model=True)
    run = lambda: run_once(args.model, args.warmup, args.steps)  # noqa: E731
    report("genlab", genlab.__version__, args.model, args, run)


if __name__ == "__main__":
    main()
