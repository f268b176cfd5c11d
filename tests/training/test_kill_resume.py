"""A run killed with SIGKILL at an arbitrary moment resumes from its last complete checkpoint
and ends bit-identical to an uninterrupted run (DESIGN.md: writes are atomic; the same seed
gives the same run on CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genlab.cli.main import main

SRC = Path(__file__).resolve().parents[2] / "src"
STEPS = 300
KILL_AFTER = 20  # kill once LATEST names a step at least this far...
KILL_DELAY = 0.017  # ...and a few steps later, so the kill lands mid-step, not on a checkpoint
COMMON = [
    f"train.steps={STEPS}",
    "train.ckpt_every=5",
    "train.sample_every=1000",
    "train.log_every=5",
    "train.threads=1",
]
EXTRA = {"vae": [], "dcgan": ["train.ema=0.9"]}


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """``train.threads=1`` sets torch's global thread count; give the next tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def train_argv(model: str, out: Path) -> list[str]:
    overrides = [*COMMON, *EXTRA[model]]
    return ["train", model, *overrides, "--preset", f"tiny_{model}", "--out", str(out)]


def latest_step(run: Path) -> int | None:
    try:
        name = (run / "checkpoints" / "LATEST").read_text().strip()
    except FileNotFoundError:
        return None
    return int(name.removeprefix("step_")) if name.startswith("step_") else None


def kill_midway(model: str, run: Path, log: Path, timeout: float = 60.0) -> int:
    """Train in a child process, SIGKILL it soon after a checkpoint >= KILL_AFTER exists; the
    step LATEST names after the kill."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "genlab.cli.main", *train_argv(model, run)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + timeout
            while (latest_step(run) or 0) < KILL_AFTER:
                if proc.poll() is not None:
                    pytest.fail(f"training exited early ({proc.returncode}):\n{log.read_text()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"no checkpoint >= {KILL_AFTER} in {timeout} s:\n{log.read_text()}")
                time.sleep(0.002)
            time.sleep(KILL_DELAY)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()  # no-op if already dead; never leaves a child behind on failure
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    step = latest_step(run)
    assert step is not None and KILL_AFTER <= step < STEPS, "the kill must land mid-run"
    return step


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], what: str):
    assert a.keys() == b.keys(), what
    differ = sorted(k for k in a if not torch.equal(a[k], b[k]))
    assert not differ, f"{what}: tensors differ: {differ}"


def assert_same_state(a, b, where: str = "state") -> None:
    """Recursive exact equality of two state.pt trees (optimizers, RNG, batch order)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same_state(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.parametrize("model", ["vae", "dcgan"])
def test_sigkill_then_resume_matches_uninterrupted(tmp_path, model):
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    kill_midway(model, killed, tmp_path / "child.log")

    assert main(["train", "--resume", str(killed)]) == 0
    assert main(train_argv(model, straight)) == 0

    final = f"step_{STEPS}"
    for run in (killed, straight):
        assert latest_step(run) == STEPS
    files = ["model.safetensors", *(["ema.safetensors"] if EXTRA[model] else [])]
    for name in files:
        a = load_file(str(killed / "checkpoints" / final / name))
        b = load_file(str(straight / "checkpoints" / final / name))
        assert_same_tensors(a, b, name)
    load_state = lambda run: torch.load(  # noqa: E731
        run / "checkpoints" / final / "state.pt", map_location="cpu", weights_only=True
    )
    assert_same_state(load_state(killed), load_state(straight))

    resumed, reference = metrics(killed), metrics(straight)
    steps = [row["step"] for row in resumed]
    assert steps == list(range(5, STEPS + 1, 5))  # strictly increasing, no gaps, no duplicates
    for row, ref in zip(resumed, reference, strict=True):
        drop = {"images_per_s"}  # wall-clock, the only value allowed to differ
        assert {k: v for k, v in row.items() if k not in drop} == {
            k: v for k, v in ref.items() if k not in drop
        }


def test_half_written_checkpoint_is_ignored_and_cleaned(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "vae", "--preset", "tiny_vae", "--out", str(run)]) == 0
    leftover = run / "checkpoints" / ".tmp-step_99-123"
    leftover.mkdir()
    full = (run / "checkpoints" / "step_4" / "model.safetensors").read_bytes()
    (leftover / "model.safetensors").write_bytes(full[: len(full) // 3])

    assert main(["train", "--resume", str(run), "train.steps=6"]) == 0
    assert latest_step(run) == 6
    assert not leftover.exists()
    assert not list((run / "checkpoints").glob(".tmp-*"))
    assert [row["step"] for row in metrics(run)] == [2, 4, 6]

    straight = tmp_path / "straight"
    assert (
        main(["train", "vae", "train.steps=6", "--preset", "tiny_vae", "--out", str(straight)]) == 0
    )
    for name in ("model.safetensors",):
        a = load_file(str(run / "checkpoints" / "step_6" / name))
        b = load_file(str(straight / "checkpoints" / "step_6" / name))
        assert_same_tensors(a, b, name)


def test_killed_before_first_checkpoint_starts_over(tmp_path):
    """Only config.json, a half-written first checkpoint and a cut metrics line survived."""
    run, straight = tmp_path / "run", tmp_path / "straight"
    assert main(["train", "vae", "--preset", "tiny_vae", "--out", str(run)]) == 0
    assert main(["train", "vae", "--preset", "tiny_vae", "--out", str(straight)]) == 0
    ckpts = run / "checkpoints"
    for path in ckpts.iterdir():
        if path.is_dir():
            for f in path.iterdir():
                f.unlink()
            path.rmdir()
        else:
            path.unlink()
    (ckpts / ".tmp-step_2-77").mkdir()
    (ckpts / ".tmp-step_2-77" / "model.safetensors").write_bytes(b"\x00" * 10)
    (run / "metrics.jsonl").write_text('{"step": 2, "loss": 1.0}\n{"step": 4, "lo')

    assert main(["train", "--resume", str(run)]) == 0
    assert latest_step(run) == 4
    assert not list(ckpts.glob(".tmp-*"))
    assert [row["step"] for row in metrics(run)] == [2, 4]
    assert_same_tensors(
        load_file(str(ckpts / "step_4" / "model.safetensors")),
        load_file(str(straight / "checkpoints" / "step_4" / "model.safetensors")),
        "model.safetensors",
    )
