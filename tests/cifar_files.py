"""CIFAR-10 files in the binary release's format, written for tests (tests/unit/test_cifar10.py,
the download tests, the docs smoke test's stand-in data)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np

TRAIN = [f"data_batch_{i}.bin" for i in range(1, 6)]
TEST = ["test_batch.bin"]
ARCHIVE = "cifar-10-binary.tar.gz"
FOLDER = "cifar-10-batches-bin"
RECORDS = 20  # per batch file (10,000 in the release)
CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def make_batches(seed: int = 0, records: int = RECORDS) -> dict[str, bytes]:
    """The six batch files' bytes in the release's format: per record one label byte, then
    the red, green and blue 32x32 planes; random labels and pixels."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in TRAIN + TEST:
        labels = rng.integers(0, 10, (records, 1), dtype=np.uint8)
        pixels = rng.integers(0, 256, (records, 3072), dtype=np.uint8)
        out[name] = np.concatenate([labels, pixels], 1).tobytes()
    return out


def write_folder(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def write_archive(path: Path, files: dict[str, bytes]) -> Path:
    """A .tar.gz laid out as the published one: a folder entry, the batches, and the text files
    the release also holds (which the loader must skip)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"batches.meta.txt": "\n".join(CLASSES).encode(), "readme.html": b"<html></html>"}
    with tarfile.open(path, "w:gz") as tar:
        folder = tarfile.TarInfo(FOLDER)
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, data in {**extra, **files}.items():
            info = tarfile.TarInfo(f"{FOLDER}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
