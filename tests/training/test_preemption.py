"""Preemption and shared run directories: SIGTERM / SIGUSR1 (what Kubernetes and SLURM send
before a kill) stop a run at a step boundary with a checkpoint and exit status 128 + signal,
and ``--resume`` then ends on the same weights as an uninterrupted run; a run directory being
trained is refused to a second writer (one line naming the holder), stays readable, and is
free again once the trainer ends, however it ends."""

from __future__ import annotations

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
from genlab.models.vae import VAE
from genlab.training import checkpoint as ckpt
from genlab.training.rundir import LOCK_NAME
from helpers import assert_one_line_error

SRC = Path(__file__).resolve().parents[2] / "src"
TINY = ["--preset", "tiny_vae", "train.ckpt_every=4", "train.log_every=2", "train.threads=1"]


@pytest.fixture(autouse=True)
def keep_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / f"step_{step}" / "model.safetensors"))


@pytest.mark.parametrize(("name", "status"), [("SIGTERM", 143), ("SIGUSR1", 138)])
def test_a_scheduler_signal_checkpoints_stops_and_resumes_exactly(
    name, status, tmp_path, monkeypatch, capsys
):
    sig = getattr(signal, name)
    original = VAE.train_step

    def signalled(self, batch, optimizers, step):
        if step == 5:
            signal.raise_signal(sig)  # handled after this step, at the step boundary
        return original(self, batch, optimizers, step)

    before = signal.getsignal(sig)
    run, straight = tmp_path / "run", tmp_path / "straight"
    with monkeypatch.context() as m:
        m.setattr(VAE, "train_step", signalled)
        code = main(["train", "vae", *TINY, "train.steps=12", "--out", str(run)])
    assert code == status
    err = capsys.readouterr().err
    assert_one_line_error(err, f"stopped by {name} at step 6", f"--resume {run}")
    assert ckpt.latest_checkpoint(run / "checkpoints").name == "step_6"
    assert signal.getsignal(sig) == before
    assert main(["train", "--resume", str(run)]) == 0
    assert main(["train", "vae", *TINY, "train.steps=12", "--out", str(straight)]) == 0
    a, b = weights(run, 12), weights(straight, 12)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def child(run: Path, steps: int, log: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "genlab.cli.main", "train", "vae", *TINY,
           f"train.steps={steps}", "--out", str(run)]  # fmt: skip
    return subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)


def wait_for_checkpoint(proc: subprocess.Popen, run: Path, log: Path, timeout=60.0) -> None:
    deadline = time.monotonic() + timeout
    while ckpt.latest_checkpoint(run / "checkpoints") is None:
        if proc.poll() is not None:
            pytest.fail(f"training exited early ({proc.returncode}):\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no checkpoint in {timeout} s:\n{log.read_text()}")
        time.sleep(0.01)


def test_a_run_in_use_is_refused_readable_and_free_after_the_writer_ends(tmp_path, cli):
    run, log = tmp_path / "run", tmp_path / "child.log"
    proc = child(run, 100_000, log)
    try:
        wait_for_checkpoint(proc, run, log)
        holder = f"process {proc.pid}"
        assert holder in (run / LOCK_NAME).read_text()
        code, _, err = cli("train", "--resume", run)
        assert code == 2
        assert_one_line_error(err, f"{run} is being trained by {holder}", "another --out")
        code, _, err = cli("train", "vae", *TINY, "--out", run)
        assert code == 2
        assert_one_line_error(err, "is being trained by")
        code, _, err = cli("sample", run, "-n", "4", "--out", tmp_path / "s.png")
        assert code == 0, err  # readers take no lock
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert "stopped by SIGTERM" in log.read_text()
    stopped = int(ckpt.latest_checkpoint(run / "checkpoints").name.removeprefix("step_"))
    code, _, err = cli("train", "--resume", run, f"train.steps={stopped + 2}")
    assert code == 0, err


def test_a_killed_writer_leaves_no_stale_lock(tmp_path, cli):
    run, log = tmp_path / "run", tmp_path / "child.log"
    proc = child(run, 100_000, log)
    try:
        wait_for_checkpoint(proc, run, log)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    stopped = int(ckpt.latest_checkpoint(run / "checkpoints").name.removeprefix("step_"))
    code, _, err = cli("train", "--resume", run, f"train.steps={stopped + 2}")
    assert code == 0, err
