"""Bad input (config, data file, run directory, checkpoint, argument) ends with ONE line on
stderr, starting with ``genlab``, no traceback, exit status 2 (DESIGN.md: Errors and safety).
A diverged run exits 1 and keeps a loadable checkpoint."""

from __future__ import annotations

import contextlib
import gzip
import io
import re
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import genlab
from genlab.cli.main import main
from genlab.training import checkpoint as ckpt
from helpers import assert_one_line_error

# ----------------------------------------------------------------------------- helpers


def idx_bytes(arr: np.ndarray) -> bytes:
    """An unsigned-byte IDX file written by hand from the format spec."""
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + np.ascontiguousarray(arr, np.uint8).tobytes()


IMAGES, LABELS = "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"


def make_idx_dir(root: Path) -> Path:
    """A valid MNIST-layout folder of raw IDX files: 50 train and 20 test 28x28 images."""
    rng = np.random.default_rng(0)
    shapes = {
        IMAGES: (50, 28, 28),
        "train-labels-idx1-ubyte": (50,),
        "t10k-images-idx3-ubyte": (20, 28, 28),
        LABELS: (20,),
    }
    root.mkdir(parents=True, exist_ok=True)
    for stem, shape in shapes.items():
        high = 10 if len(shape) == 1 else 256
        (root / stem).write_bytes(idx_bytes(rng.integers(0, high, shape, dtype=np.uint8)))
    return root


@dataclass
class Ctx:
    """What a case builds on: its tmp dir, the --out of a new run, a copy of a finished vae run
    (made on demand) and fragments only known once the files exist."""

    tmp: Path
    copy_run: Callable[[str], Path]
    expect: list[str] = field(default_factory=list)

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    def run(self) -> Path:
        return self.copy_run("vae")


def train(c: Ctx, *overrides: str, data: str | None = None) -> list:
    """``genlab train vae [overrides] --preset tiny_vae [--data D] --out OUT``."""
    # Overrides right after the model; test_overrides_may_follow_options covers the other order.
    argv: list = ["train", "vae", *overrides, "--preset", "tiny_vae", "--out", c.out]
    return [*argv, "--data", data] if data else argv


def mnist(c: Ctx, damage: Callable[[Path], None] | None = None) -> list:
    root = make_idx_dir(c.tmp / "idx")
    if damage:
        damage(root)
    return train(c, f"data.root={root}", "data.image_size=16", data="mnist")


def folder(c: Ctx, root: Path) -> list:
    return train(c, f"data.root={root}", data="imagefolder")


CASES: dict[str, tuple[Callable[[Ctx], list], tuple[str, ...]]] = {}


def case(name: str, *fragments: str):
    def add(fn):
        CASES[name] = (fn, fragments)
        return fn

    return add


# ----------------------------------------------------------------------------- config


@case("unknown_model", "unknown model 'nope'", "dcgan, gan", "vae")
def _(c):
    return ["train", "nope", "--out", c.out]


@case("unknown_dataset", "unknown dataset 'nope'", "digits", "imagefolder", "mnist")
def _(c):
    return train(c, data="nope")


@case("unknown_preset", "unknown preset 'nope'", "tiny_vae")
def _(c):
    return ["train", "vae", "--preset", "nope", "--out", c.out]


@case("preset_for_another_model", "'tiny_dcgan'", "'dcgan'", "'vae'")
def _(c):
    return ["train", "vae", "--preset", "tiny_dcgan", "--out", c.out]


# name -> (overrides of `train vae --preset tiny_vae`, fragments the message must contain)
OVERRIDE_CASES = {
    "unknown_model_key": (["model.foo=1"], ("model.foo", "model.latent_dim", "model.width")),
    "unknown_data_key": (["data.foo=1"], ("data.foo", "data.image_size", "data.root")),
    "unknown_train_key": (["train.foo=1"], ("train.foo", "train.lr", "train.steps")),
    "unknown_top_level_key": (["foo=1"], ("'foo'", "data, device, model, seed, train")),
    "value_under_a_value": (["model.name.x=1"], ("model.name.x", "not a section")),
    "bad_int": (["model.latent_dim=abc"], ("model.latent_dim", "integer", "abc")),
    "negative_lr": (["train.lr=-1"], ("train.lr", "greater than 0", "-1")),
    "bad_choice": (["train.optimizer=lion"], ("train.optimizer", "'adam'", "lion")),
    "override_without_equals": (["train.lr"], ("'train.lr'", "key=value")),
    "field_the_dataset_ignores": (["data.radius=3"], ("data.radius", "'digits'", "image_size")),
    "unknown_device": (["device=nonsense"], ("device", "'nonsense'")),
    "batch_larger_than_data": (["train.batch_size=100000"], ("batch_size=100000", "lower it")),
}
for _name, (_overrides, _fragments) in OVERRIDE_CASES.items():
    case(_name, *_fragments)(lambda c, o=_overrides: train(c, *o))


@case("no_model", "name a model")
def _(c):
    return ["train", "--preset", "tiny_vae", "--out", c.out]


@case("no_model_no_args", "name a model")
def _(c):
    return ["train"]


# ----------------------------------------------------------------------------- data files


@case("mnist_without_root", "'mnist'", "data.root")
def _(c):
    return train(c, data="mnist")


@case("mnist_root_missing", "does not exist")
def _(c):
    c.expect.append(str(c.tmp / "nowhere"))
    return train(c, f"data.root={c.tmp / 'nowhere'}", data="mnist")


@case("mnist_file_missing", "t10k-labels-idx1-ubyte[.gz]")
def _(c):
    return mnist(c, lambda root: (root / LABELS).unlink())


@case("idx_wrong_magic", IMAGES, "magic number 0x12345678")
def _(c):
    return mnist(c, lambda root: (root / IMAGES).write_bytes(b"\x12\x34\x56\x78" + bytes(64)))


@case("idx_truncated", IMAGES, "truncated")
def _(c):
    return mnist(c, lambda root: (root / IMAGES).write_bytes((root / IMAGES).read_bytes()[:-7]))


@case("idx_corrupt_gz", f"{IMAGES}.gz", "gzip")
def _(c):
    def damage(root: Path) -> None:
        data = gzip.compress((root / IMAGES).read_bytes())
        (root / IMAGES).unlink()
        (root / f"{IMAGES}.gz").write_bytes(data[: len(data) // 2])  # cut mid-stream

    return mnist(c, damage)


@case("idx_label_count", LABELS, "21 labels", "20 images")
def _(c):
    return mnist(c, lambda root: (root / LABELS).write_bytes(idx_bytes(np.zeros(21, np.uint8))))


@case("imagefolder_without_root", "'imagefolder'", "data.root")
def _(c):
    return train(c, data="imagefolder")


@case("imagefolder_root_missing", "does not exist")
def _(c):
    c.expect.append(str((c.tmp / "nowhere").resolve()))
    return folder(c, c.tmp / "nowhere")


@case("imagefolder_empty", "no images found")
def _(c):
    (c.tmp / "pics" / "cats").mkdir(parents=True)
    (c.tmp / "pics" / "notes.txt").write_text("not an image")
    c.expect.append(str((c.tmp / "pics").resolve()))
    return folder(c, c.tmp / "pics")


@case("imagefolder_unreadable_image", "cannot decode image")
def _(c):
    (c.tmp / "pics").mkdir()
    (c.tmp / "pics" / "x.png").write_bytes(np.random.default_rng(0).bytes(300))
    c.expect.append(str((c.tmp / "pics" / "x.png").resolve()))
    return folder(c, c.tmp / "pics")


# ----------------------------------------------------------------------------- runs, checkpoints


def only_checkpoint(changed: Path) -> None:
    """Make the checkpoint holding ``changed`` the run's only one, its recorded hashes those of
    its files as they are now: the file's own damage is then what genlab meets (with older
    checkpoints or mismatching hashes it would fall back to an older one, see
    tests/training/test_damaged_checkpoint.py)."""
    folder = changed.parent
    for other in ckpt.list_checkpoints(folder.parent):
        if other != folder:
            shutil.rmtree(other)
    ckpt.record_sums(folder)


@case("sample_missing_run", "does not exist")
def _(c):
    c.expect.append(str(c.tmp / "nowhere"))
    return ["sample", c.tmp / "nowhere"]


@case("resume_missing_run", "does not exist")
def _(c):
    c.expect.append(str(c.tmp / "nowhere"))
    return ["train", "--resume", c.tmp / "nowhere"]


@case("sample_dir_without_config", "config.json", "not a genlab run")
def _(c):
    (c.tmp / "empty").mkdir()
    return ["sample", c.tmp / "empty"]


@case("sample_config_not_json", "config.json", "damaged")
def _(c):
    run = c.run()
    (run / "config.json").write_text('{"model": {"name": "vae", ')
    return ["sample", run]


@case("sample_config_unknown_key", "config.json", "train.foo")
def _(c):
    run = c.run()
    path = run / "config.json"
    path.write_text(path.read_text().replace('"train": {', '"train": {"foo": 1, ', 1))
    return ["sample", run]


@case("sample_corrupt_weights", "cannot read weights")
def _(c):
    run = c.run()
    path = run / "checkpoints" / "step_4" / "model.safetensors"
    path.write_bytes(np.random.default_rng(0).bytes(len(path.read_bytes())))
    only_checkpoint(path)
    c.expect.append(str(path))
    return ["sample", run]


@case("sample_truncated_weights", "cannot read weights")
def _(c):
    run = c.run()
    path = run / "checkpoints" / "step_4" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:200])
    only_checkpoint(path)
    c.expect.append(str(path))
    return ["sample", run]


@case("sample_weights_of_another_model", "does not match the model in config.json")
def _(c):
    run = c.run()
    path = run / "config.json"
    path.write_text(path.read_text().replace('"latent_dim": 4', '"latent_dim": 5', 1))
    return ["sample", run]


@case("sample_missing_step", "step 3")
def _(c):
    return ["sample", c.run(), "--step", "3"]


@case("latest_names_no_checkpoint", "LATEST", "not a checkpoint")
def _(c):
    run = c.run()
    (run / "checkpoints" / "LATEST").write_text("weights\n")
    return ["sample", run]


@case("resume_garbage_state", "cannot read training state")
def _(c):
    run = c.run()
    path = run / "checkpoints" / "step_4" / "state.pt"
    path.write_bytes(np.random.default_rng(0).bytes(len(path.read_bytes())))
    only_checkpoint(path)
    c.expect.append(str(path))
    return ["train", "--resume", run]


@case("train_into_existing_run", "already holds a run", "--resume")
def _(c):
    run = c.run()
    c.expect.append(str(run))
    return ["train", "vae", "--preset", "tiny_vae", "--out", run]


@case("resume_changes_model", "keeps its model config")
def _(c):
    return ["train", "--resume", c.run(), "model.latent_dim=8"]


@case("resume_with_out", "--resume RUN takes only")
def _(c):
    return ["train", "--resume", c.run(), "--out", c.out]


@case("sample_zero", "-n 0")
def _(c):
    return ["sample", c.run(), "-n", "0"]


@case("sample_unknown_device", "'nonsense'")
def _(c):
    return ["sample", c.run(), "--device", "nonsense"]


@case("bench_unknown_model", "unknown model 'nope'")
def _(c):
    return ["bench", "--models", "nope"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_and_status_2(name, tmp_path, run_copy, capsys):
    build, fragments = CASES[name]
    c = Ctx(tmp_path, run_copy)
    argv = [str(a) for a in build(c)]
    before = snapshot(tmp_path)
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (code, out, err)
    assert_one_line_error(err, *fragments, *c.expect)
    assert not (c.out / "config.json").exists(), "a failed start left a run behind"
    assert snapshot(tmp_path) == before, "bad input changed files"


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` except caches a dataset is allowed to write."""
    return {
        str(p): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".genlab-cache" not in p.parts
    }


# ----------------------------------------------------------------------------- argparse


USAGE_ERRORS = {
    "unknown_train_flag": (["train", "vae", "--bogus"], "--bogus"),
    "unknown_list_flag": (["list", "--bogus"], "--bogus"),
    "no_command": ([], "command"),
    "unknown_command": (["nope"], "'nope'"),
    "sample_no_run": (["sample"], "RUN"),
    "sample_n_not_int": (["sample", "run", "-n", "abc"], "'abc'"),
    "list_extra_arg": (["list", "extra"], "extra"),
}


@pytest.mark.parametrize("name", sorted(USAGE_ERRORS))
def test_usage_errors_exit_2(name, capsys):
    argv, fragment = USAGE_ERRORS[name]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert_one_line_error(capsys.readouterr().err, fragment, "--help")


# ----------------------------------------------------------------------------- bad checkpoints


class Opener:
    """Unpickling this runs ``open(marker, "w")``: proof that a file was unpickled unsafely."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_malicious_state_is_never_unpickled(run_copy, tmp_path, capsys):
    run = run_copy("vae")
    marker = tmp_path / "pwned"
    path = run / "checkpoints" / "step_4" / "state.pt"
    torch.save({"step": 4, "payload": Opener(marker)}, path)
    only_checkpoint(path)  # a hostile checkpoint comes with matching hashes
    assert main(["train", "--resume", str(run)]) == 2
    assert_one_line_error(capsys.readouterr().err, str(path))
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["garbage", "pickle"])
def test_bad_state_message_gives_safe_advice(run_copy, tmp_path, capsys, kind):
    run = run_copy("vae")
    path = run / "checkpoints" / "step_4" / "state.pt"
    if kind == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(4000))
    else:
        torch.save({"payload": Opener(tmp_path / "pwned")}, path)
    only_checkpoint(path)
    assert main(["train", "--resume", str(run)]) == 2
    text = assert_one_line_error(capsys.readouterr().err, str(path))
    assert "weights_only" not in text and "\x1b" not in text, text


# ----------------------------------------------------------------------------- divergence

DIVERGE = ["train.lr=1e10", "train.optimizer=sgd", "train.steps=20", "train.ckpt_every=1"]


@pytest.fixture(scope="module")
def diverged(tmp_path_factory) -> tuple[Path, int, str]:
    """A tiny VAE with SGD at lr=1e10: non-finite within a few steps, checkpointing each step."""
    run = tmp_path_factory.mktemp("diverged") / "run"
    argv = ["train", "vae", *DIVERGE, "--preset", "tiny_vae", "--out", str(run)]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    assert code == 1, err.getvalue()
    found = re.search(r"non-finite (?:loss at|weights after) step (\d+)", err.getvalue())
    assert found, err.getvalue()
    return run, int(found[1]), err.getvalue()


def test_non_finite_loss_exits_1_and_keeps_a_loadable_checkpoint(diverged):
    run, step, err = diverged
    assert 1 < step < 20, "lr=1e10 must diverge within the run, after one checkpoint"
    assert_one_line_error(err, f"step {step}", "train.lr")
    latest = (run / "checkpoints" / "LATEST").read_text().strip()
    assert latest == f"step_{step - 1}"  # every finite step was checkpointed, the bad one not
    assert str(run / "checkpoints" / latest) in err
    assert not (run / "checkpoints" / f"step_{step}").exists()
    model = genlab.load(run)
    assert model.sample(2, generator=torch.Generator().manual_seed(0)).shape == (2, 1, 16, 16)


def test_kept_checkpoint_has_finite_weights(diverged):
    run, _, _ = diverged
    latest = (run / "checkpoints" / "LATEST").read_text().strip()
    weights = load_file(str(run / "checkpoints" / latest / "model.safetensors"))
    bad = sorted(k for k, v in weights.items() if v.is_floating_point() and not v.isfinite().all())
    assert not bad, f"{latest} has non-finite tensors: {bad}"


def test_divergence_without_a_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "vae", "train.lr=1e30", "train.optimizer=sgd", "train.steps=20"]
    assert main([*argv, "--preset", "tiny_vae", "--out", str(run)]) == 1
    text = assert_one_line_error(capsys.readouterr().err, "non-finite")
    latest = run / "checkpoints" / "LATEST"
    if latest.exists():  # diverged after a checkpoint: that one must still load
        genlab.load(run)
    else:
        assert "no checkpoint yet" in text
