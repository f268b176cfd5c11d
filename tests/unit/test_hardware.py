"""genlab.core.hardware: the dtype probe agrees with the CPU's flags, the AVX2 restriction makes
bf16 slow, train.precision=auto resolves to fp32 on a CPU, an explicit slow dtype warns once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from genlab.core import hardware
from genlab.core.hardware import DtypeSpeed

AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
PROBE = (
    "import json, torch; from genlab.core import hardware as h; s = h.dtype_speed('bf16'); "
    "print(json.dumps({'fast': s.fast, 'slowdown': s.slowdown, 'capability': h.cpu_capability(),"
    " 'auto': h.resolve_precision('auto', torch.device('cpu'))}))"
)


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def probe(env: dict[str, str]) -> dict:
    """The bf16 probe in a fresh process (the capability is fixed when torch loads)."""
    clean = {k: v for k, v in os.environ.items() if k not in AVX2_ONLY}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
        timeout=50, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


x86 = pytest.mark.skipif(not cpu_flags() & {"avx2"}, reason="an x86 CPU with AVX2")


@x86
def test_the_avx2_restriction_makes_bf16_slow_and_auto_picks_fp32():
    got = probe(AVX2_ONLY)
    assert got["capability"] == "AVX2"
    assert not got["fast"] and got["slowdown"] > hardware.SLOW_FACTOR
    assert got["auto"] == "fp32"


@x86
def test_the_probe_agrees_with_the_cpus_bf16_flags():
    # The independent reference: the kernel's CPU flags. Native bf16 GEMMs need AVX-512 bf16 or
    # AMX; without AVX-512 at all they are emulated.
    flags = cpu_flags()
    got = probe({})
    if flags & {"avx512_bf16", "amx_bf16"}:
        assert got["fast"], got
    elif "avx512f" not in flags:
        assert not got["fast"], got
    assert got["auto"] == "fp32"  # CPUs train in fp32 unless asked


def test_describe_names_the_measured_ratio():
    assert DtypeSpeed("bf16", "cpu", True, 0.512).describe() == (
        "fast here (0.51x fp32's matmul time)"
    )
    slow = DtypeSpeed("bf16", "cpu", False, 61.4).describe()
    assert slow == "slow here: 61x fp32's matmul time (not native on this CPU)"
    assert DtypeSpeed("fp16", "gpu", False, None).describe() == "slow here (not native on this GPU)"


def test_an_unknown_dtype_is_refused():
    with pytest.raises(ValueError, match="bf16"):
        hardware.dtype_speed("int8")


def test_the_probe_is_measured_once_per_process():
    first = hardware.dtype_speed("bf16", "cpu")
    assert hardware.dtype_speed("bf16", torch.device("cpu")) is first
    assert first.slowdown is not None and first.slowdown > 0


@pytest.fixture
def slow_bf16(monkeypatch):
    monkeypatch.setattr(
        hardware, "dtype_speed", lambda dtype, device="cpu": DtypeSpeed(dtype, "cpu", False, 40.0)
    )
    monkeypatch.setattr(hardware, "_warned", set())


def test_an_explicit_slow_dtype_is_kept_with_one_warning(slow_bf16, capsys):
    cpu = torch.device("cpu")
    assert hardware.resolve_precision("bf16", cpu) == "bf16"
    assert hardware.resolve_precision("bf16", cpu) == "bf16"
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "genlab: warning: train.precision=bf16 is slow here: 40x fp32's matmul time (not native "
        "on this CPU); training will be slow (train.precision=auto picks the fast one)"
    ]


def test_auto_and_fp32_never_warn(slow_bf16, capsys):
    cpu = torch.device("cpu")
    assert hardware.resolve_precision("auto", cpu) == "fp32"
    assert hardware.resolve_precision("fp32", cpu) == "fp32"
    assert capsys.readouterr().err == ""


def test_summary_lists_both_dtypes_and_the_auto_choice():
    info = hardware.summary("cpu")
    assert set(info["dtypes"]) == {"bf16", "fp16"}
    assert info["precision_auto"] == "fp32"
    assert info["threads"] == torch.get_num_threads() and info["usable_cores"] >= 1
    assert info["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
