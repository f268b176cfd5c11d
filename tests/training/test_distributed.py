"""Data parallel training with two gloo processes on this CPU: DDP keeps every model's ranks in
step, two processes of batch B train exactly like one of batch 2B, and a GAN job resumes (under
the same or another number of processes) where it stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from genlab.cli.main import main
from genlab.core.registry import MODELS

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed gloo"
)
WORKER = Path(__file__).with_name("ddp_worker.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    r = subprocess.run([*cmd, *args], capture_output=True, text=True, env=ENV, timeout=timeout)
    # The workers' own lines first: torchrun's summary after them says little.
    assert r.returncode == 0, "\n".join(r.stderr.splitlines()[:60])
    return r


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    latest = (run / "checkpoints" / "LATEST").read_text().strip()
    return load_file(run / "checkpoints" / latest / "model.safetensors")


def test_every_model_keeps_its_ranks_in_step(tmp_path):
    """Each rank sees another shard, so only synchronised gradients keep the weights equal;
    the unsynchronised control shows the check can fail."""
    specs = [f"{n}={n}" for n in MODELS.names()]
    specs += ["vae-learned-sigma=vae,model.likelihood=gaussian"]  # a parameter of no network
    specs += ["vae-categorical=vae,model.posterior=categorical", "gan-unsynced=gan"]
    out = tmp_path / "spread.json"
    torchrun(str(WORKER), str(out), str(tmp_path / "runs"), *specs)
    spread = json.loads(out.read_text())
    assert spread.pop("gan-unsynced") > 1e-4
    assert set(spread) == {s.partition("=")[0] for s in specs} - {"gan-unsynced"}
    assert max(spread.values()) == 0.0, spread


def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path, monkeypatch):
    sys.path.insert(0, str(WORKER.parent))
    from ddp_worker import noiseless_vae

    from genlab.models.vae import GaussianPosterior

    overrides = ["model.norm=none", "train.steps=5"]  # no batch norm: its statistics are per rank
    torchrun(
        str(WORKER), str(tmp_path / "spread.json"), str(tmp_path),
        "noiseless-2x8=vae," + ",".join([*overrides, "train.batch_size=8"]),
    )  # fmt: skip
    monkeypatch.setattr(GaussianPosterior, "rsample", GaussianPosterior.rsample)
    noiseless_vae()  # undone by monkeypatch after the test
    one = tmp_path / "noiseless-1x16"
    args = ["train", "vae", "--preset", "tiny_vae", "--out", str(one), *overrides]
    assert main([*args, "train.batch_size=16"]) == 0
    a, b = final_weights(tmp_path / "noiseless-2x8"), final_weights(one)
    assert a.keys() == b.keys()
    start = load_file(one / "checkpoints" / "step_2" / "model.safetensors")
    assert any(not torch.equal(start[k], b[k]) for k in b)  # it trained on
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)


def test_gan_job_resumes_exactly_and_under_another_world_size(tmp_path, capsys):
    base = ["train", "gan", "--data", "ring8", "--preset", "tiny_gan", "--nproc", "2"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main([*base, "--out", str(whole), "train.steps=6", "train.ckpt_every=2"]) == 0
    assert main([*base, "--out", str(parts), "train.steps=2", "train.ckpt_every=2"]) == 0
    resume = ["train", "--nproc", "2", "--resume", str(parts)]
    assert main([*resume, "train.steps=6"]) == 0
    a, b = final_weights(whole), final_weights(parts)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert main(["train", "--resume", str(parts), "train.steps=8"]) == 0  # one process now
    assert (parts / "checkpoints" / "LATEST").read_text().strip() == "step_8"
    lines = (parts / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(s)["step"] for s in lines] == [2, 4, 6, 8]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["gan", "--nproc", "0"], "--nproc must be >= 1"),
        (["gan", "--nproc", "2", "model.nope=1"], "nope"),
    ],
)
def test_nproc_errors_are_one_line(cli, args, expected):
    code, _, err = cli("train", *args)
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1


def test_nproc_inside_torchrun_is_an_error(cli, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, _, err = cli("train", "gan", "--nproc", "2")
    assert code == 2 and "inside a torchrun job" in err
