"""``genlab doctor``: one screen for a bug report, its JSON form, and its verdict on bf16."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import torch

from genlab import __version__
from genlab.core import hardware


def test_doctor_prints_versions_machine_dtypes_and_a_passing_sanity_train(cli, classifier_cache):
    code, out, err = cli("doctor")
    assert code == 0, err
    assert f"genlab:     {__version__}" in out and f"torch:      {torch.__version__}" in out
    assert f"capability: {hardware.cpu_capability()}" in out
    assert re.search(r"^bf16: +(fast|slow) here", out, re.M)
    assert "train.precision=auto trains in fp32" in out
    assert f"cache dir:  {classifier_cache}" in out  # GENLAB_CACHE, set for the suite
    assert re.search(r"^sanity: +ok: tiny_vae on digits, 60 steps", out, re.M)


def test_doctor_json_has_the_same_facts(cli):
    code, out, _ = cli("doctor", "--json", "--no-train")
    info = json.loads(out)
    assert code == 0 and "sanity_train" not in info
    assert info["dtypes"]["bf16"] == hardware.dtype_speed("bf16").describe()
    assert info["threads"] == torch.get_num_threads()


def test_doctor_says_bf16_is_slow_under_the_avx2_restriction():
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    done = subprocess.run(
        [sys.executable, "-m", "genlab", "doctor", "--no-train"],
        env=env, capture_output=True, text=True, timeout=50,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    if hardware.cpu_capability() in ("AVX2", "AVX512"):  # x86: the restriction applies
        assert re.search(r"^bf16: +slow here", done.stdout, re.M), done.stdout
        assert "capability: AVX2 (restricted by ATEN_CPU_CAPABILITY=avx2" in done.stdout


def test_doctor_refuses_a_bad_device_in_one_line(cli):
    code, out, err = cli("doctor", "--device", "tpu9")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "unknown device" in err
