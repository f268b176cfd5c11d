"""Throughput benchmark: images/s of a model's training step, its FLOPs (counted with
``torch.utils.flop_counter``: matmuls and convolutions, forward and backward), and this
machine's fp32 GEMM peak measured in the same process, so the achieved fraction of peak is
comparable across machines."""

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
from genlab.registry import MODELS
from genlab.training.batches import BatchStream
from genlab.training.trainer import resolve_device


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_seconds(fn, device: torch.device, repeats: int = 5, inner: int = 3) -> float:
    fn()  # warm-up: kernel selection, allocation
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        _sync(device)
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


@torch.no_grad()
def matmul_peak_gflops(device: torch.device, dtype=torch.float32) -> dict[str, float]:
    """This machine's fp32 GEMM throughput in GFLOP/s, measured two ways, and the best.

    ``mm``: a 2048 x 2048 ``torch.mm`` (BLAS). ``conv1x1`` (CPU): a 1x1 convolution, i.e. a
    (N*H*W, 2048) x (2048, 2048) GEMM run by oneDNN, which convolutions also use; on some CPUs
    it is much faster than the BLAS path, so the peak is the larger of the two."""
    n = 2048
    a, b = (
        torch.randn(n, n, device=device, dtype=dtype),
        torch.randn(n, n, device=device, dtype=dtype),
    )
    out = torch.empty(n, n, device=device, dtype=dtype)
    rates = {"mm": 2 * n**3 / _best_seconds(lambda: torch.mm(a, b, out=out), device) / 1e9}
    if device.type == "cpu":
        conv = torch.nn.Conv2d(n, n, 1, bias=False).to(dtype)
        x = torch.randn(4, n, 16, 16, dtype=dtype)
        flops = 2 * x.shape[0] * 16 * 16 * n * n
        rates["conv1x1"] = flops / _best_seconds(lambda: conv(x), device) / 1e9
    rates["peak"] = max(rates.values())
    return {k: round(v, 1) for k, v in rates.items()}


# The benchmark dataset for each kind of data a model may need (a model class says which in
# ``data_kind``; image models by default), with the overrides it takes from the arguments.
BENCH_DATA = {
    "image": ("digits", lambda image_size: [f"data.image_size={image_size}"]),
    "interactions": ("clicks", lambda image_size: []),
}


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
    """Time ``steps`` training steps of model ``name`` after ``warmup`` steps, on digits (image
    models) or procedural clicks (recommendation models, which also report users/s)."""
    dataset, data_overrides = BENCH_DATA[getattr(MODELS.get(name), "data_kind", "image")]
    cfg = build_config(
        name,
        data=dataset,
        overrides=[
            *data_overrides(image_size),
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
    row = {
        "model": name,
        "batch_size": batch_size,
        "image_size": image_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "images_per_s": round(batch_size / step_s, 1),
        "step_ms": round(step_s * 1e3, 2),
        "train_flops_per_image": flops // batch_size,
        "achieved_gflops": round(flops / step_s / 1e9, 2),
    }
    if data.spec.kind == "interactions":  # one sample is one user's click history
        row.update(image_size=None, users_per_s=row["images_per_s"], num_items=data.spec.shape[0])
    return row


def run_bench(models: list[str], *, device: str = "cpu", **kwargs: Any) -> dict[str, Any]:
    dev = resolve_device(device)
    gemm = matmul_peak_gflops(dev)
    peak = gemm["peak"]
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
            "cpu": _cpu_name(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "matmul_fp32_gflops": peak,
        "matmul_fp32_gflops_by_method": gemm,
        "models": rows,
        "peak_memory_mib": round(mem, 1),
    }
