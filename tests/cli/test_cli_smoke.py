"""Every ``genlab`` subcommand smoke-run in-process on a tiny preset (DESIGN.md: Tests)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import genlab
from genlab.cli.main import main
from genlab.core import hardware


def metric_steps(run: Path) -> list[int]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


def assert_png(path: Path) -> None:
    assert path.is_file(), path
    with Image.open(path) as img:
        assert img.format == "PNG"
        img.verify()


# ----------------------------------------------------------------------------- list


def test_list_text(cli):
    code, out, err = cli("list")
    assert code == 0 and err == ""
    for name in ("vae", "dcgan", "gan", "digits", "ring8", "mnist", "imagefolder", "tiny_vae"):
        assert re.search(rf"\b{name}\b", out), name


def test_list_json(cli):
    code, out, _ = cli("list", "--json")
    assert code == 0
    table = json.loads(out)
    assert {"vae", "dcgan", "gan"} <= set(table["models"])
    datasets = {"digits", "ring8", "grid25", "mnist", "fashion_mnist", "imagefolder"}
    assert datasets <= set(table["datasets"])
    assert {"tiny_vae", "tiny_dcgan", "tiny_gan"} <= set(table["presets"])
    assert all(isinstance(h, str) and h for h in table["models"].values())


# ----------------------------------------------------------------------------- train


@pytest.mark.parametrize("model", ["vae", "dcgan", "gan"])
def test_train_tiny_preset(cli, tmp_path, model):
    run = tmp_path / "run"
    code, out, err = cli("train", model, "--preset", f"tiny_{model}", "--out", run)
    assert code == 0, err
    assert f"run: {run}" in out.splitlines()
    (shown,) = re.findall(r"^samples: (.+)$", out, re.M)
    assert Path(shown) == run / "samples" / "step_4.png"
    assert_png(Path(shown))

    config = json.loads((run / "config.json").read_text())
    assert config["model"]["name"] == model and config["train"]["steps"] == 4
    steps = metric_steps(run)
    assert steps == sorted(set(steps)) and steps[-1] == 4
    for step in (2, 4):
        assert_png(run / "samples" / f"step_{step}.png")
    ckpts = run / "checkpoints"
    assert (ckpts / "LATEST").read_text().strip() == "step_4"
    for name in ("model.safetensors", "state.pt"):
        assert (ckpts / "step_4" / name).stat().st_size > 0
    assert list((run / "tb").glob("events.out.tfevents.*"))


def test_resume_extends_a_finished_run(cli, run_copy):
    run = run_copy("vae")
    code, out, err = cli("train", "--resume", run, "train.steps=6")
    assert code == 0, err
    assert f"run: {run}" in out
    assert (run / "checkpoints" / "LATEST").read_text().strip() == "step_6"
    assert (run / "checkpoints" / "step_6" / "model.safetensors").is_file()
    assert metric_steps(run) == [2, 4, 6]


def test_overrides_may_follow_options(cli, tmp_path):
    code, _, err = cli(
        "train", "vae", "--preset", "tiny_vae", "--out", tmp_path / "r", "train.steps=2"
    )
    assert code == 0, err
    assert (tmp_path / "r" / "checkpoints" / "LATEST").read_text().strip() == "step_2"


# ----------------------------------------------------------------------------- sample


def sample_npy(cli, run: Path, out: Path, n: int, seed: int) -> np.ndarray:
    code, stdout, err = cli("sample", run, "-n", n, "--seed", seed, "--npy", "--out", out)
    assert code == 0, err
    assert stdout.strip() == str(out)
    return np.load(out, allow_pickle=False)


def test_sample_png(cli, trained_runs, tmp_path):
    out = tmp_path / "grid.png"
    code, stdout, err = cli("sample", trained_runs["vae"], "-n", 9, "--seed", 3, "--out", out)
    assert code == 0, err
    assert stdout.strip() == str(out)
    assert_png(out)


def test_sample_default_output_path(cli, run_copy):
    run = run_copy("vae")
    code, stdout, err = cli("sample", run, "-n", 4, "--seed", 5)
    assert code == 0, err
    assert stdout.strip() == str(run / "samples" / "sample_seed5.png")
    assert_png(run / "samples" / "sample_seed5.png")


def test_sample_npy_images_deterministic(cli, trained_runs, tmp_path):
    run = trained_runs["vae"]
    a = sample_npy(cli, run, tmp_path / "a.npy", 9, 3)
    assert a.dtype == np.float32 and a.shape == (9, 1, 16, 16)
    assert np.isfinite(a).all() and a.min() >= -1 and a.max() <= 1
    b = sample_npy(cli, run, tmp_path / "b.npy", 9, 3)
    np.testing.assert_array_equal(a, b)
    c = sample_npy(cli, run, tmp_path / "c.npy", 9, 4)
    assert not np.array_equal(a, c)


def test_sample_npy_points(cli, trained_runs, tmp_path):
    run = trained_runs["gan"]
    a = sample_npy(cli, run, tmp_path / "a.npy", 7, 0)
    assert a.dtype == np.float32 and a.shape == (7, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, sample_npy(cli, run, tmp_path / "b.npy", 7, 0))
    assert not np.array_equal(a, sample_npy(cli, run, tmp_path / "c.npy", 7, 1))
    out = tmp_path / "scatter.png"
    code, _, err = cli("sample", run, "-n", 7, "--out", out)
    assert code == 0, err
    assert_png(out)


# ----------------------------------------------------------------------------- bench, version


def test_bench_json(cli):
    argv = ["--models", "vae", "--steps", "1", "--warmup", "0", "--image-size", "16"]
    code, out, err = cli("bench", *argv, "--batch-size", "8", "model.width=8")
    assert code == 0, err
    result = json.loads(out)
    assert result["matmul_fp32_gflops"] > 0
    (row,) = result["models"]
    assert row["model"] == "vae" and row["batch_size"] == 8 and row["image_size"] == 16
    assert row["images_per_s"] > 0 and row["bare_images_per_s"] > 0
    # The printed figures are rounded, so a ratio of them is known only within the rounding.
    low, high = ratio_bounds(row["step_ms"], row["bare_step_ms"], 0.005, 0.005)
    assert low - 1 - 1e-4 <= row["overhead_vs_bare"] <= high - 1 + 1e-4
    assert row["train_flops_per_image"] > 0 and row["peak_memory_mib"] > 0
    # bf16's peak is measured only where bf16 is native (the probe of genlab.core.hardware).
    if hardware.dtype_speed("bf16").fast:
        assert result["matmul_bf16_gflops"] > 0
    else:
        assert result["matmul_bf16_gflops"] == "not native on this CPU"
    assert row["precision"] == "fp32"  # train.precision=auto on a CPU
    assert result["machine"]["cpu_capability"] == hardware.cpu_capability()
    low, high = ratio_bounds(row["achieved_gflops"], result["matmul_fp32_gflops"], 0.005, 0.05)
    assert low - 1e-4 <= row["fraction_of_peak"] <= high + 1e-4


def ratio_bounds(num, den, num_half, den_half):
    """The range of num / den when both were rounded to the given half units."""
    return (num - num_half) / (den + den_half), (num + num_half) / (den - den_half)


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code in (0, None)
    assert capsys.readouterr().out.strip() == f"genlab {genlab.__version__}"
