"""``genlab doctor``: what a bug report needs to say about the machine, on one screen.

Versions (genlab, torch, Python, OS), the CPU and the instruction set torch's kernels use,
which low-precision dtypes are fast here (``hardware``'s timed probe) and what
``train.precision=auto`` picks, threads, CUDA devices, the cache directory, and a short sanity
train: a small VAE on the bundled digits, whose loss must be finite and fall."""

from __future__ import annotations

import json
import math
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from genlab.core import hardware
from genlab.core.config import build_config
from genlab.core.io import cache_root
from genlab.core.version import __version__
from genlab.training.trainer import Trainer

SANITY_STEPS = 60  # about 1-3 s on one laptop core
SANITY_OVERRIDES = [
    f"train.steps={SANITY_STEPS}",
    f"train.sample_every={SANITY_STEPS}",
    f"train.ckpt_every={SANITY_STEPS}",
    "train.log_every=10",
    "train.progress=false",
]


def sanity_train(device: str = "cpu") -> dict[str, Any]:
    """Train ``tiny_vae`` (16x16 digits, bundled) for ``SANITY_STEPS`` steps in a temporary
    directory: its seconds, first and last logged loss, and ``ok`` when the losses are finite
    and the last is below the first."""
    cfg = build_config(preset="tiny_vae", overrides=[*SANITY_OVERRIDES, f"device={device}"])
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="genlab-doctor-") as tmp:
        run_dir = Path(tmp) / "run"
        Trainer(cfg, run_dir).fit()
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        losses = [row["loss"] for row in map(json.loads, lines) if "loss" in row]
    seconds = time.perf_counter() - t0
    finite = bool(losses) and all(math.isfinite(v) for v in losses)
    return {
        "model": "tiny_vae on digits",
        "steps": SANITY_STEPS,
        "seconds": round(seconds, 2),
        "first_loss": round(losses[0], 3) if losses else None,
        "last_loss": round(losses[-1], 3) if losses else None,
        "ok": finite and losses[-1] < losses[0],
    }


def report(device: str = "cpu", train: bool = True) -> dict[str, Any]:
    """Everything ``genlab doctor`` prints, as a dict (``--json``)."""
    out = {
        "genlab": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "os": platform.platform(),
        **hardware.summary(device),
        "cache_dir": str(cache_root()),
    }
    if train:
        out["sanity_train"] = sanity_train(device)
    return out


def format_report(info: dict[str, Any]) -> str:
    """The screen of ``genlab doctor``: one ``key: value`` line each."""
    env = " ".join(f"{k}={v}" for k, v in info["capability_env"].items())
    lines = [
        f"genlab:     {info['genlab']}",
        f"torch:      {info['torch']} (CUDA build: {info['cuda_build'] or 'none'})",
        f"python:     {info['python']}",
        f"os:         {info['os']}",
        f"cpu:        {info['cpu']}",
        f"capability: {info['cpu_capability']}" + (f" (restricted by {env})" if env else ""),
        f"threads:    {info['threads']} of {info['usable_cores']} usable cores",
    ]
    lines += [f"{name + ':':<11} {verdict}" for name, verdict in info["dtypes"].items()]
    lines.append(
        f"precision:  train.precision=auto trains in {info['precision_auto']} here "
        "(bf16 on a GPU with native bf16, else fp32)"
    )
    if info["cuda"]:
        for gpu in info["cuda"]:
            bf16 = "native bf16" if gpu["bf16"] else "no native bf16"
            lines.append(
                f"gpu {gpu['index']}:      {gpu['name']}, compute {gpu['capability']}, "
                f"{gpu['memory_gib']} GiB, {bf16}"
            )
    else:
        lines.append("gpu:        none visible to torch")
    lines.append(f"cache dir:  {info['cache_dir']}")
    if "sanity_train" in info:
        s = info["sanity_train"]
        verdict = "ok" if s["ok"] else "FAILED"
        lines.append(
            f"sanity:     {verdict}: {s['model']}, {s['steps']} steps in {s['seconds']} s, "
            f"loss {s['first_loss']} -> {s['last_loss']}"
        )
    return "\n".join(lines)


def main_status(info: dict[str, Any]) -> int:
    """The exit status: 1 when the sanity train failed, else 0."""
    return 1 if not info.get("sanity_train", {"ok": True})["ok"] else 0
