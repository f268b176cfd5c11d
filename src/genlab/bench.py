"""Throughput benchmark: images/s of a model's training step, its FLOPs (counted with
``torch.utils.flop_counter``), and this machine's matmul peak measured in the same process,
so the achieved fraction of peak is comparable across machines."""

from __future__ import annotations

import platform
import resource
import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from genlab.config import build_config
from genlab.data import load_data
from genlab.models import build_model
from genlab.training.batches import BatchStream
from genlab.training.trainer import resolve_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_gflops(device: torch.device, dtype=torch.float32, n: int = 2048) -> float:
    """Best of 5 timings of an n x n matmul (2 n^3 FLOPs), in GFLOP/s."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(5):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(3):
            torch.mm(a, b, out=out)
        _sync(device)
        best = min(best, (time.perf_counter() - t0) / 3)
    return 2 * n**3 / best / 1e9


def bench_model(
    name: str,
    *,
    batch_size: int = 128,
    image_size: int = 32,
    steps: int = 20,
    warmup: int = 3,
    device: str = "cpu",
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Time ``steps`` training steps of model ``name`` on digits after ``warmup`` steps."""
    cfg = build_config(
        name,
        data="digits",
        overrides=[
            f"data.image_size={image_size}",
            f"train.batch_size={batch_size}",
            f"device={device}",
            *(overrides or []),
        ],
    )
    dev = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    data = load_data(cfg.data)
    model = build_model(cfg.model, data.spec).to(dev)
    opts = model.configure_optimizers(cfg.train)
    stream = BatchStream(data.train, cfg.train.batch_size, cfg.seed, dev)
    with FlopCounterMode(display=False) as counter:
        model.train_step(next(stream), opts, 0)
    flops = counter.get_total_flops()
    for i in range(warmup):
        model.train_step(next(stream), opts, i)
    batches = [next(stream) for _ in range(steps)]  # data time excluded from the timing
    _sync(dev)
    t0 = time.perf_counter()
    for i, batch in enumerate(batches):
        out = model.train_step(batch, opts, i)
    _sync(dev)
    elapsed = time.perf_counter() - t0
    assert all(torch.isfinite(torch.as_tensor(v)) for v in out.values())
    step_s = elapsed / steps
    return {
        "model": name,
        "batch_size": batch_size,
        "image_size": image_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "images_per_s": round(batch_size / step_s, 1),
        "step_ms": round(step_s * 1e3, 2),
        "train_flops_per_image": flops // batch_size,
        "achieved_gflops": round(flops / step_s / 1e9, 2),
    }


def run_bench(models: list[str], *, device: str = "cpu", **kwargs: Any) -> dict[str, Any]:
    dev = resolve_device(device)
    peak = matmul_peak_gflops(dev)
    rows = []
    for name in models:
        row = bench_model(name, device=device, **kwargs)
        row["fraction_of_fp32_peak"] = round(row["achieved_gflops"] / peak, 4)
        rows.append(row)
    mem = (
        torch.cuda.max_memory_allocated(dev) / 2**20
        if dev.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    )
    return {
        "machine": {
            "device": str(dev),
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "matmul_fp32_gflops": round(peak, 1),
        "models": rows,
        "peak_memory_mib": round(mem, 1),
    }
