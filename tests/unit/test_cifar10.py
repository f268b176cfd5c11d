"""CIFAR-10 from its binary release: small real-format batch files written here (extracted and
as the published .tar.gz), decoded pixels checked against a per-record loop over the bytes, the
archive and the folder agreeing, resizing, each bad file a one-line DataError, and the three
CIFAR-10 presets training for two steps from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cifar_files import (
    ARCHIVE,
    CLASSES,
    FOLDER,
    RECORDS,
    TEST,
    TRAIN,
    make_batches,
    write_archive,
    write_folder,
)
from genlab.core.config import DataConfig
from genlab.core.errors import DataError
from genlab.data import load_data
from genlab.data.base import resize_images


def decode_by_loop(data: bytes) -> tuple[torch.Tensor, torch.Tensor]:
    """An independent decode: one record at a time, one byte at a time, pixel (c, r, k) being
    byte 1 + c * 1024 + r * 32 + k of its record."""
    images, labels = [], []
    for start in range(0, len(data), 3073):
        rec = data[start : start + 3073]
        labels.append(rec[0])
        image = []
        for c in range(3):
            image.append([[rec[1 + c * 1024 + r * 32 + k] for k in range(32)] for r in range(32)])
        images.append(image)
    return torch.tensor(images, dtype=torch.uint8), torch.tensor(labels, dtype=torch.int64)


def load(root: Path, **fields):
    return load_data(DataConfig(name="cifar10", root=str(root), **fields))


def expected(files: dict[str, bytes], names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [decode_by_loop(files[n]) for n in names]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return make_batches()


@pytest.fixture(scope="module")
def archive_root(tmp_path_factory, files) -> Path:
    root = tmp_path_factory.mktemp("cifar-archive")
    write_archive(root / ARCHIVE, files)
    return root


@pytest.fixture(scope="module")
def folder_root(tmp_path_factory, files) -> Path:
    root = tmp_path_factory.mktemp("cifar-folder")
    write_folder(root / FOLDER, files)
    return root


# ----------------------------------------------------------------------------- decoding


def test_folder_decodes_like_a_per_record_loop(folder_root, files):
    data = load(folder_root)
    x, y = expected(files, TRAIN)
    assert data.train.x.dtype == torch.uint8 and data.train.y.dtype == torch.int64
    assert data.train.x.shape == (5 * RECORDS, 3, 32, 32)
    assert torch.equal(data.train.x, x) and torch.equal(data.train.y, y)
    x, y = expected(files, TEST)
    assert data.test.x.shape == (RECORDS, 3, 32, 32)
    assert torch.equal(data.test.x, x) and torch.equal(data.test.y, y)
    assert data.spec.shape == (3, 32, 32) and data.spec.num_classes == 10
    assert data.spec.class_names == CLASSES
    data.train.x[0, 0, 0, 0] = 7  # writable, not a view of read-only bytes


def test_archive_and_folder_give_identical_tensors(archive_root, folder_root):
    a, b = load(archive_root), load(folder_root)
    for split in ("train", "test"):
        sa, sb = getattr(a, split), getattr(b, split)
        assert torch.equal(sa.x, sb.x) and torch.equal(sa.y, sb.y)


def test_files_directly_in_root(tmp_path, files, folder_root):
    write_folder(tmp_path, files)
    assert torch.equal(load(tmp_path).train.x, load(folder_root).train.x)


def test_extracted_files_win_over_the_archive(tmp_path, files):
    write_archive(tmp_path / ARCHIVE, make_batches(seed=1))
    write_folder(tmp_path / FOLDER, files)
    assert torch.equal(load(tmp_path).test.x, expected(files, TEST)[0])


def test_image_size_resizes_both_splits(folder_root):
    native, small = load(folder_root), load(folder_root, image_size=16)
    assert small.train.x.shape == (5 * RECORDS, 3, 16, 16) and small.spec.shape == (3, 16, 16)
    assert torch.equal(small.test.x, resize_images(native.test.x, 16))
    assert torch.equal(small.train.y, native.train.y)


# ----------------------------------------------------------------------------- bad files


def one_line_error(root: Path) -> str:
    with pytest.raises(DataError) as err:
        load(root)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_missing_file_is_named_with_the_archive_expected(tmp_path, files):
    write_folder(tmp_path / FOLDER, {k: v for k, v in files.items() if k != "data_batch_3.bin"})
    msg = one_line_error(tmp_path)
    assert "data_batch_3.bin" in msg and "data_batch_2.bin" not in msg and ARCHIVE in msg


def test_empty_root_names_the_archive(tmp_path):
    msg = one_line_error(tmp_path)
    assert ARCHIVE in msg and "test_batch.bin" in msg


def test_missing_root_is_a_data_error(tmp_path):
    msg = one_line_error(tmp_path / "nowhere")
    assert "does not exist" in msg and "data.root" in msg


def test_truncated_batch(tmp_path, files):
    write_folder(tmp_path / FOLDER, {**files, "data_batch_2.bin": files["data_batch_2.bin"][:-100]})
    msg = one_line_error(tmp_path)
    assert "data_batch_2.bin" in msg and "truncated" in msg and "download" in msg


def test_bad_label_names_file_and_record(tmp_path, files):
    data = bytearray(files["test_batch.bin"])
    data[7 * 3073] = 10  # the label byte of record 7
    write_folder(tmp_path / FOLDER, {**files, "test_batch.bin": bytes(data)})
    msg = one_line_error(tmp_path)
    assert "test_batch.bin" in msg and "record 7" in msg and "label 10" in msg


@pytest.mark.parametrize("damage", ["garbage", "cut"])
def test_corrupt_archive(tmp_path, archive_root, damage):
    good = (archive_root / ARCHIVE).read_bytes()
    bad = b"this is not a gzip stream" * 100 if damage == "garbage" else good[: len(good) // 2]
    (tmp_path / ARCHIVE).write_bytes(bad)
    msg = one_line_error(tmp_path)
    assert ARCHIVE in msg and ("not a readable" in msg or "lacks" in msg) and "download" in msg


def test_archive_missing_a_batch(tmp_path, files):
    write_archive(tmp_path / ARCHIVE, {k: v for k, v in files.items() if k != "test_batch.bin"})
    msg = one_line_error(tmp_path)
    assert "test_batch.bin" in msg and "binary version" in msg


def test_truncated_member_in_archive(tmp_path, files):
    write_archive(tmp_path / ARCHIVE, {**files, "data_batch_4.bin": files["data_batch_4.bin"][:5]})
    msg = one_line_error(tmp_path)
    assert "data_batch_4.bin" in msg and "truncated" in msg


# ----------------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    ("preset", "small"),
    # DCGAN at the paper's widths (the documented command); the others at width 16, to keep the
    # test fast: their layer sequence is the same network's (tests/models/test_cnn32.py).
    [("dcgan_cifar10", False), ("sngan_cifar10", True), ("wgan_gp_cifar10", True)],
)
def test_cifar10_presets_train_from_the_cli(cli, tmp_path, folder_root, preset, small):
    out = tmp_path / "run"
    widths = ["model.g_width=16", "model.d_width=16"] if small else []
    code, _, err = cli(
        "train", preset.removesuffix("_cifar10"), "--preset", preset, "--out", out,
        f"data.root={folder_root}", "train.steps=2", "train.batch_size=8", *widths,
    )  # fmt: skip
    assert code == 0, err
    assert (out / "checkpoints" / "LATEST").read_text().strip() == "step_2"
    assert (out / "checkpoints" / "step_2" / "model.safetensors").is_file()


def test_cli_names_the_missing_files_on_one_line(cli, tmp_path):
    code, _, err = cli("train", "dcgan", "--preset", "dcgan_cifar10", f"data.root={tmp_path}")
    assert code == 2 and ARCHIVE in err and len(err.strip().splitlines()) == 1
