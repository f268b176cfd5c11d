"""A damaged newest checkpoint (a flipped byte, a file cut to zero bytes) is detected by its
recorded SHA-256 and skipped, with a warning naming it, for the newest intact one: ``load``,
``sample`` and ``--resume`` go on, and the resumed run still ends on the weights of a run never
damaged. With no intact checkpoint left, one line and exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genlab.training import checkpoint as ckpt
from helpers import assert_one_line_error

ARGS = ["--preset", "tiny_vae", "train.steps=8", "train.ckpt_every=4", "train.threads=1"]


@pytest.fixture(autouse=True)
def keep_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    from genlab.cli.main import main

    run = tmp_path_factory.mktemp("straight") / "run"
    assert main(["train", "vae", *ARGS, "--out", str(run)]) == 0
    return run


@pytest.mark.parametrize(
    "damage",
    [
        lambda step: flip_a_byte(step / "model.safetensors"),
        lambda step: (step / "state.pt").write_bytes(b""),
    ],
    ids=["flipped-byte", "empty-state"],
)
def test_a_damaged_newest_checkpoint_falls_back_and_resumes_exactly(
    cli, tmp_path, straight, damage
):
    run = tmp_path / "run"
    assert cli("train", "vae", *ARGS, "--out", run)[0] == 0
    newest = run / "checkpoints" / "step_8"
    damage(newest)
    assert ckpt.damage(newest) is not None and ckpt.damage(run / "checkpoints" / "step_4") is None
    code, _, err = cli("sample", run, "-n", "4", "--out", tmp_path / "s.png")
    assert code == 0 and "step_8 is damaged" in err and "using step_4" in err
    code, _, err = cli("train", "--resume", run)
    assert code == 0 and "using step_4" in err
    assert ckpt.damage(newest) is None  # written again from step 4
    a = load_file(str(newest / "model.safetensors"))
    b = load_file(str(straight / "checkpoints" / "step_8" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_no_intact_checkpoint_is_one_line(cli, tmp_path):
    run = tmp_path / "run"
    assert cli("train", "vae", *ARGS, "--out", run)[0] == 0
    for step in ("step_4", "step_8"):
        flip_a_byte(run / "checkpoints" / step / "model.safetensors")
    code, _, err = cli("sample", run, "-n", "4", "--out", tmp_path / "s.png")
    assert code == 2
    assert_one_line_error(err, "no intact checkpoint", "step_8", "step_4", "sha256")


def test_latest_naming_a_missing_checkpoint_falls_back(cli, tmp_path):
    run = tmp_path / "run"
    assert cli("train", "vae", *ARGS, "--out", run)[0] == 0
    (run / "checkpoints" / "LATEST").write_text("step_99\n")
    code, _, err = cli("sample", run, "-n", "4", "--out", tmp_path / "s.png")
    assert code == 0 and "step_99 is damaged (a file is missing); using step_8" in err
