"""Throughput benchmark: images/s of a model's training step, its FLOPs (counted with
``torch.utils.flop_counter``: matmuls and convolutions, forward and backward), this machine's
fp32 (and, where native, bf16) GEMM peaks measured in the same process (so the achieved
fraction of peak is comparable across machines), peak memory, and the same networks'
hand-written bare loop (``bench_loops``), so genlab's overhead is a measured ratio."""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from genlab.core import hardware
from genlab.core.config import build_config
from genlab.core.registry import MODELS
from genlab.models import build_model
from genlab.tools.bench_loops import bare_step
from genlab.training import speed
from genlab.training.trainer import Trainer, resolve_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


PEAK_MIN_SIZE, PEAK_MAX_SIZE = 256, 2048
PEAK_CALL_S = 0.02  # grow the GEMM until one call takes this long (or reaches the max size)


def _gemm_size(make, device: torch.device) -> int:
    """The GEMM size a peak is measured at: doubled from 256 while one call takes under 20 ms,
    up to 2048. Where the dtype is native this reaches 1024-2048 (large enough for the kernel's
    full rate); where it is emulated it stops at 256-512, so that no call takes long."""
    n = PEAK_MIN_SIZE
    while n < PEAK_MAX_SIZE:
        run, _ = make(n)
        run()  # the first call of a size picks its kernel; the second is timed
        _sync(device)
        t0 = time.perf_counter()
        run()
        _sync(device)
        if time.perf_counter() - t0 >= PEAK_CALL_S:
            break
        n *= 2
    return n


@torch.no_grad()
def matmul_peak_gflops(device: torch.device, dtype=torch.float32) -> dict[str, float]:
    """This machine's GEMM throughput in ``dtype``, in GFLOP/s, measured two ways, and the best.

    ``mm``: an n x n ``torch.mm`` (BLAS). ``conv1x1`` (CPU): a 1x1 convolution of n channels,
    i.e. a (4*16*16, n) x (n, n) GEMM run by oneDNN, which convolutions also use; on some CPUs
    it is much faster than the BLAS path, so the peak is the larger of the two. Each size n
    comes from ``_gemm_size``, so one call takes well under a second in any dtype."""
    gen = torch.Generator(device=device).manual_seed(0)

    def mm(n: int):
        a = torch.randn(n, n, device=device, generator=gen).to(dtype)
        b = torch.randn(n, n, device=device, generator=gen).to(dtype)
        out = torch.empty(n, n, device=device, dtype=dtype)
        return (lambda: torch.mm(a, b, out=out)), 2 * n**3

    def conv1x1(n: int):
        conv = torch.nn.Conv2d(n, n, 1, bias=False).to(dtype)
        x = torch.randn(4, n, 16, 16, generator=gen).to(dtype)
        return (lambda: conv(x)), 2 * x.shape[0] * 16 * 16 * n * n

    methods = {"mm": mm, "conv1x1": conv1x1} if device.type == "cpu" else {"mm": mm}
    rates = {}
    for name, make in methods.items():
        n = _gemm_size(make, device)
        call, flops = make(n)
        seconds = hardware.best_seconds(call, warmup=1, inner=3, sync=lambda: _sync(device))
        rates[name] = flops / seconds / 1e9
    rates["peak"] = max(rates.values())
    return {k: round(v, 1) for k, v in rates.items()}


# The benchmark dataset for each kind of data a model may need (a model class says which in
# ``data_kind``; image models by default), with the overrides it takes from the arguments.
BENCH_DATA = {
    "image": ("digits", lambda image_size: [f"data.image_size={image_size}"]),
    "interactions": ("clicks", lambda image_size: []),
}


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak: CUDA's allocator statistics, or the process's resident high-water mark
    (Linux: writing 5 to /proc/self/clear_refs resets VmHWM)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_memory_mib(device: torch.device) -> float:
    """Peak memory since ``reset_peak_memory``: tensors allocated on CUDA, resident set on CPU
    (the process's lifetime peak where VmHWM cannot be read)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _bare_setup(cfg, spec, dev: torch.device, batches: list[dict]):
    """The hand-written loop's own copy of the networks (same seed, so the same weights) and
    its batches: plain float tensors on the device, in the configured memory format."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, spec).to(dev)
    speed.apply_memory_format(model, cfg.train, spec.kind == "image")
    step = bare_step(model, model.configure_optimizers(cfg.train))
    speed.compile_networks(model, cfg.train)
    xs = []
    for b in batches:
        b = dict(b)
        speed.to_memory_format(b, cfg.train)
        xs.append(b["x"])
    return step, xs


class _GlobalOnly:
    """Stands in for FlopCounterMode's per-module tracker, whose backward hooks fail inside
    ``autograd.grad`` (the double backward of a gradient penalty): every count is 'Global'."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _GlobalOnly:
        return self

    def __exit__(self, *exc) -> None:
        return None


def flop_counter() -> FlopCounterMode:
    """torch's FLOP counter with the module breakdown off (only the total is read), so that it
    also counts training steps that differentiate through a gradient."""
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()
    return counter


def _time_steps(run, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    run()
    _sync(device)
    return time.perf_counter() - t0


def bench_model(
    name: str,
    *,
    batch_size: int = 128,
    image_size: int = 32,
    steps: int = 20,
    warmup: int = 3,
    rounds: int = 3,
    device: str = "cpu",
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Time ``steps`` training steps of model ``name`` on digits (image models) or procedural
    clicks (recommendation models, which also report users/s), best of ``rounds``:

    - genlab's step, as ``Trainer.fit`` runs it between its periodic logs, grids and
      checkpoints (``Trainer.train_one``: the next batch sliced from the uint8 tensor, the
      model's ``train_step`` with the configured precision / memory format / compile, EMA,
      and the per-step loss read of a CPU run);
    - the bare loop of the same networks (``bench_loops``), when one mirrors the model.

    Rounds alternate the two, so drifting machine load hits both alike."""
    dataset, data_overrides = BENCH_DATA[getattr(MODELS.get(name), "data_kind", "image")]
    cfg = build_config(
        name,
        data=dataset,
        overrides=[
            *data_overrides(image_size),
            f"train.batch_size={batch_size}",
            f"device={device}",
            "train.progress=false",
            *(overrides or []),
        ],
    )
    dev = resolve_device(cfg.device)
    reset_peak_memory(dev)
    with tempfile.TemporaryDirectory(prefix="genlab-bench-") as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run")
        counted = trainer.model.batches_for_step(trainer.step)  # batches this step reads
        with flop_counter() as counter:
            trainer.train_one()
        flops = counter.get_total_flops() // counted

        def genlab_steps() -> None:
            for _ in range(steps):
                out = trainer.train_one()
                if trainer.reads_every_step:  # as fit does
                    trainer._finite(out)

        batches = [next(trainer.stream) for _ in range(steps)]
        bare, xs = _bare_setup(cfg, trainer.spec, dev, batches)

        def bare_steps() -> None:
            with speed.autocast(cfg.train, dev):  # the same precision as genlab's step
                for x in xs:
                    bare(x)

        for _ in range(warmup):
            trainer.train_one()
            if bare is not None:
                with speed.autocast(cfg.train, dev):
                    bare(xs[0])
        best = {"genlab": float("inf"), "bare": float("inf")}
        read = steps  # batches read by the fastest round (a GAN reads one per critic step)
        for _ in range(rounds):
            before = trainer.batches_read
            t = _time_steps(genlab_steps, dev)
            if t / (trainer.batches_read - before) < best["genlab"] / read:
                best["genlab"], read = t, trainer.batches_read - before
            if bare is not None:
                best["bare"] = min(best["bare"], _time_steps(bare_steps, dev))
        spec = trainer.spec
        params = sum(p.numel() for p in trainer.model.parameters())
    step_s = best["genlab"] / steps
    batch_s = best["genlab"] / read  # = step_s unless a step reads several batches
    row = {
        "model": name,
        "batch_size": batch_size,
        "image_size": image_size,
        "precision": cfg.train.precision,
        "channels_last": cfg.train.channels_last,
        "compile": cfg.train.compile,
        "parameters": params,
        "images_per_s": round(batch_size / batch_s, 1),
        "step_ms": round(step_s * 1e3, 2),
        "train_flops_per_image": flops // batch_size,
        "achieved_gflops": round(flops / batch_s / 1e9, 2),
        "bare_images_per_s": None,
        "bare_step_ms": None,
        "overhead_vs_bare": None,
        "peak_memory_mib": round(peak_memory_mib(dev), 1),
    }
    if bare is not None:
        bare_s = best["bare"] / steps
        row.update(
            bare_images_per_s=round(batch_size / bare_s, 1),
            bare_step_ms=round(bare_s * 1e3, 2),
            overhead_vs_bare=round(step_s / bare_s - 1, 4),
        )
    if spec.kind == "interactions":  # one sample is one user's click history
        row.update(image_size=None, users_per_s=row["images_per_s"], num_items=spec.shape[0])
    return row


def run_bench(
    models: list[str], *, device: str = "cpu", peaks: bool = False, **kwargs: Any
) -> dict[str, Any]:
    """``bench_model`` for each model, with this machine's matmul peaks measured in the same
    process; each row's fraction of peak is against the peak of its precision.

    fp32's peak is always measured; bf16's where bf16 is native here (``hardware``), where a
    row trains in it, or when ``peaks`` asks for every dtype. Otherwise ``matmul_bf16_gflops``
    says why it is missing instead of spending minutes on an emulated GEMM."""
    dev = resolve_device(device)
    rows = [bench_model(name, device=device, **kwargs) for name in models]
    bf16 = hardware.dtype_speed("bf16", dev)
    wanted = {"fp32"}
    if peaks or bf16.fast or any(r["precision"] in ("bf16", "fp16") for r in rows):
        wanted.add("bf16")
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    peak = {name: matmul_peak_gflops(dev, dtypes[name]) for name in sorted(wanted)}
    for row in rows:
        dtype = "bf16" if row["precision"] == "bf16" else "fp32"
        if row["precision"] == "fp16" and dev.type == "cuda":
            dtype = "bf16"  # the same tensor-core rate on current GPUs
        row["peak_gflops"] = peak[dtype]["peak"]
        row["fraction_of_peak"] = round(row["achieved_gflops"] / peak[dtype]["peak"], 4)
    missing = f"not native on this {'GPU' if dev.type == 'cuda' else 'CPU'}"
    return {
        "machine": {
            "device": str(dev),
            "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
            "torch": torch.__version__,
            **hardware.summary(str(dev)),
        },
        "matmul_fp32_gflops": peak["fp32"]["peak"],
        "matmul_bf16_gflops": peak["bf16"]["peak"] if "bf16" in peak else missing,
        "matmul_gflops_by_method": peak,
        "models": rows,
    }
