"""What this machine runs fast, in one place: the CPU and the instruction set torch uses, whether
bf16 and fp16 matmuls are native here, threads, and the CUDA device.

On a CPU the answer comes from a timed probe, once per process: a 256 x 256 ``torch.mm`` in
the dtype against the same in fp32 (a few milliseconds, tens where the dtype is emulated). On
x86 CPUs without AVX-512 bf16 or AMX (AVX2 only), bf16 matmuls run 30-60x slower than fp32,
and fp16 does on most CPUs; where bf16 is native it is about twice as fast. Setting
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` makes any x86 machine behave like an
AVX2-only one, which is how the slow case is tested. On CUDA the device's flags decide:
bf16 is native from compute capability 8.0 (Ampere), fp16 from 7.0.

``train.precision=auto`` is resolved here (``resolve_precision``): bf16 on a CUDA device with
native bf16, fp32 everywhere else. CPUs stay in fp32 even where bf16 is native, because every
measured result of genlab's presets is an fp32 run and bf16 changes some of them (a clipped
WGAN critic, docs/performance.md); ``train.precision=bf16`` opts in.
"""

from __future__ import annotations

import functools
import os
import platform
import sys
import time
from dataclasses import dataclass

import torch

LOW_PRECISION = {"bf16": torch.bfloat16, "fp16": torch.float16}
PROBE_SIZE = 256  # the probe's matmul: (256 x 256) @ (256 x 256), 34 MFLOP
SLOW_FACTOR = 2.0  # a dtype is slow here when its matmul takes over twice fp32's time
CAPABILITY_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")  # what restricts torch's kernels
CUDA_NATIVE = {"bf16": (8, 0), "fp16": (7, 0)}  # the first compute capability with fast kernels


@dataclass(frozen=True)
class DtypeSpeed:
    """How a low-precision dtype runs on a device, against fp32.

    ``slowdown``: its probe matmul's time / fp32's (below 1 is a speed-up); None on CUDA, where
    the device's compute capability decides. ``fast``: native here, worth training in."""

    dtype: str
    device: str
    fast: bool
    slowdown: float | None

    def describe(self) -> str:
        """One line: ``fast here (0.48x fp32's matmul time)`` or ``slow here: 38x ...``."""
        if self.slowdown is None:
            return (
                "fast here (native on this GPU)"
                if self.fast
                else "slow here (not native on this GPU)"
            )
        ratio = f"{self.slowdown:.2f}" if self.slowdown < 10 else f"{self.slowdown:.0f}"
        ratio += "x fp32's matmul time"
        if self.fast:
            return f"fast here ({ratio})"
        return f"slow here: {ratio} (not native on this {self.device.upper()})"


def best_seconds(
    fn, *, warmup: int = 2, repeats: int = 5, inner: int = 1, sync=lambda: None
) -> float:
    """The best of ``repeats`` timings of ``inner`` calls of ``fn``, per call, after ``warmup``
    untimed calls (kernel choice, allocation, the thread pool's first start); ``sync`` waits
    for queued device work before each clock read (``torch.cuda.synchronize``)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


@torch.no_grad()
def _cpu_matmul_seconds(dtype: torch.dtype) -> float:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(PROBE_SIZE, PROBE_SIZE, generator=gen).to(dtype)
    b = torch.randn(PROBE_SIZE, PROBE_SIZE, generator=gen).to(dtype)
    return best_seconds(lambda: torch.mm(a, b))


def _cpu_slowdown(dtype: torch.dtype) -> float:
    """The probe's time in ``dtype`` over fp32's, fp32 timed before and after (the best of
    both), so that a process's first, cold matmul does not pass for fp32's speed."""
    fp32 = _cpu_matmul_seconds(torch.float32)
    low = _cpu_matmul_seconds(dtype)
    return low / min(fp32, _cpu_matmul_seconds(torch.float32))


def dtype_speed(dtype: str, device: str | torch.device = "cpu") -> DtypeSpeed:
    """Whether ``dtype`` ("bf16" or "fp16") is fast on ``device`` ("cpu", "cuda", "cuda:N");
    measured once per process on a CPU (under 0.1 s where the dtype is native, well under 1 s
    where it is emulated)."""
    if dtype not in LOW_PRECISION:
        raise ValueError(f"dtype must be one of {sorted(LOW_PRECISION)}, not {dtype!r}")
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return _dtype_speed(dtype, dev)


@functools.cache
def _dtype_speed(dtype: str, dev: torch.device) -> DtypeSpeed:
    if dev.type == "cuda":
        capability = torch.cuda.get_device_capability(dev)
        return DtypeSpeed(dtype, "gpu", capability >= CUDA_NATIVE[dtype], None)
    if dev.type != "cpu":  # mps and others: autocast support varies, assume not
        return DtypeSpeed(dtype, dev.type, False, None)
    slowdown = _cpu_slowdown(LOW_PRECISION[dtype])
    return DtypeSpeed(dtype, "cpu", slowdown <= SLOW_FACTOR, round(slowdown, 3))


_warned: set[str] = set()


def warn_once(message: str) -> None:
    """``genlab: warning: MESSAGE`` on stderr, once per process for each message."""
    if message not in _warned:
        _warned.add(message)
        print(f"genlab: warning: {message}", file=sys.stderr, flush=True)


def resolve_precision(requested: str, device: torch.device) -> str:
    """The precision a training step runs in: ``auto`` becomes bf16 on a CUDA device with
    native bf16 and fp32 elsewhere; an explicit bf16 / fp16 that is slow on ``device`` is kept
    (the user asked for it) with a one-line warning naming the measured slow-down."""
    if requested == "auto":
        cuda_bf16 = device.type == "cuda" and dtype_speed("bf16", device).fast
        return "bf16" if cuda_bf16 else "fp32"
    if requested in LOW_PRECISION:
        speed = dtype_speed(requested, device)
        if not speed.fast:
            warn_once(
                f"train.precision={requested} is {speed.describe()}; training will be slow "
                "(train.precision=auto picks the fast one)"
            )
    return requested


# ----------------------------------------------------------------------------- the machine


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_capability() -> str:
    """The widest vector instruction set torch's kernels use here (``AVX512``, ``AVX2``,
    ``DEFAULT``...), after ``ATEN_CPU_CAPABILITY``."""
    return torch.backends.cpu.get_cpu_capability()


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cuda_devices() -> list[dict]:
    """Each visible CUDA device: name, compute capability, memory, native bf16."""
    if not torch.cuda.is_available():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        out.append({
            "index": i,
            "name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 1),
            "bf16": dtype_speed("bf16", f"cuda:{i}").fast,
        })  # fmt: skip
    return out


def summary(device: str = "cpu") -> dict:
    """What ``genlab doctor`` and ``genlab bench`` print about this machine."""
    dev = torch.device(device)
    return {
        "cpu": cpu_name(),
        "cpu_capability": cpu_capability(),
        "capability_env": {
            k: os.environ[k]
            for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")
            if k in os.environ
        },
        "threads": torch.get_num_threads(),
        "usable_cores": usable_cores(),
        "dtypes": {name: dtype_speed(name, dev).describe() for name in LOW_PRECISION},
        "precision_auto": resolve_precision("auto", dev),
        "cuda": cuda_devices(),
        "cuda_build": torch.version.cuda,
    }
