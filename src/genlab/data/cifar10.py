"""CIFAR-10 (Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images";
https://www.cs.toronto.edu/~kriz/cifar.html): 50,000 training and 10,000 test colour images of
32x32 pixels in 10 classes, read from the *binary version* of the release.

The binary format: each of ``data_batch_1.bin`` ... ``data_batch_5.bin`` (train) and
``test_batch.bin`` (test) is a plain sequence of 3073-byte records, 10,000 in the release: one
label byte (0..9), then 3072 pixel bytes, the 1024 red values, then the 1024 green, then the 1024
blue, each plane 32x32 in row-major order. So a record is already (C, H, W) order: byte
1 + c * 1024 + r * 32 + k is channel c, row r, column k.

The files are read from the directory ``dataset_root`` gives, either extracted (in its
``cifar-10-batches-bin/`` folder or in the directory itself; preferred when present) or straight
from the published ``cifar-10-binary.tar.gz``, whose members are streamed, never extracted.
"""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from genlab.core.config import DataConfig
from genlab.core.errors import DataError
from genlab.data.base import DataBundle, Split, image_spec, register_dataset, resize_images
from genlab.data.downloads import dataset_root

ARCHIVE = "cifar-10-binary.tar.gz"
FOLDER = "cifar-10-batches-bin"  # the archive's top-level folder
SPLITS = {
    "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("test_batch.bin",),
}
BATCHES = SPLITS["train"] + SPLITS["test"]
SIDE = 32
PLANE = SIDE * SIDE
RECORD = 1 + 3 * PLANE  # label byte + R, G, B planes
NUM_CLASSES = 10
# The order of the release's batches.meta.txt: label byte i names CLASSES[i].
CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
_REFETCH = f"download {ARCHIVE} again ({URL})"


def parse_batch(data: bytes | bytearray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The bytes of one batch file -> uint8 images (N, 3, 32, 32) and int64 labels (N,).
    ``where`` names the file in errors: a size that is not a whole number of records, or a label
    outside 0..9."""
    if len(data) == 0 or len(data) % RECORD:
        raise DataError(
            f"{where} is truncated or corrupt: {len(data)} bytes is not a whole number of "
            f"{RECORD}-byte records; {_REFETCH}"
        )
    records = np.frombuffer(data, np.uint8).reshape(-1, RECORD)  # (N, 3073), a view
    labels = records[:, 0]
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{where} record {i} has label {labels[i]}, outside 0..{NUM_CLASSES - 1}; is it a "
            f"CIFAR-100 or other file? {_REFETCH}"
        )
    images = records[:, 1:].reshape(-1, 3, SIDE, SIDE)  # planes R, G, B, each row-major
    return images, labels.astype(np.int64)


def _read_folder(folder: Path) -> dict[str, bytes]:
    out = {}
    for name in BATCHES:
        try:
            out[name] = (folder / name).read_bytes()
        except OSError as e:
            raise DataError(f"cannot read {folder / name}: {e.strerror or e}") from None
    return out


def _read_archive(path: Path) -> dict[str, bytes]:
    """The six batch files of the .tar.gz, read member by member in one pass (no extraction:
    only regular files with a batch's name are read, wherever they sit in the archive)."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                name = PurePosixPath(member.name).name
                if not member.isfile() or name not in BATCHES or name in found:
                    continue
                if member.size == 0 or member.size % RECORD:  # checked before reading it
                    raise DataError(
                        f"{path}: member {member.name} is truncated or corrupt ({member.size} "
                        f"bytes, not a whole number of {RECORD}-byte records); {_REFETCH}"
                    )
                f = tar.extractfile(member)
                found[name] = f.read() if f is not None else b""
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DataError(
            f"{path} is not a readable .tar.gz ({e}); check it with `tar -tzf`, or {_REFETCH}"
        ) from None
    missing = [n for n in BATCHES if n not in found]
    if missing:
        raise DataError(
            f"{path} lacks {', '.join(missing)} (expected under {FOLDER}/); is it the binary "
            f"version of CIFAR-10? {_REFETCH}"
        )
    return found


def read_cifar10_files(root: Path) -> tuple[dict[str, bytes], str]:
    """The bytes of the six batch files found in ``root`` and where they came from (a folder
    or the archive). Extracted files win over the archive."""
    folders = (root / FOLDER, root)
    for folder in folders:
        if all((folder / n).is_file() for n in BATCHES):
            return _read_folder(folder), str(folder)
    archive = root / ARCHIVE
    if archive.is_file():
        return _read_archive(archive), str(archive)
    # Name the files missing from the folder that holds the most of them.
    folder = max(folders, key=lambda d: sum((d / n).is_file() for n in BATCHES))
    missing = [n for n in BATCHES if not (folder / n).is_file()]
    raise DataError(
        f"{folder} lacks {', '.join(missing)} for dataset 'cifar10', and {root} has no "
        f"{ARCHIVE}; put the binary version's {ARCHIVE} ({URL}) in {root}, or its extracted "
        f"{FOLDER}/ folder"
    )


def _split(files: dict[str, bytes], names: tuple[str, ...], source: str) -> Split:
    parts = [parse_batch(files[n], f"{source}: {n}") for n in names]
    # One concatenation: a fresh, writable, contiguous copy (the parsed views are read-only).
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return Split(torch.from_numpy(x), torch.from_numpy(y))


@register_dataset(
    "cifar10",
    uses=("root", "image_size", "download"),
    help="CIFAR-10 colour images from the binary release in data.root (50k/10k, 32x32 RGB, "
    "10 classes)",
)
def load_cifar10(cfg: DataConfig) -> DataBundle:
    """uint8 (N, 3, S, S) splits, S = ``cfg.image_size`` (default 32), int64 labels 0..9:
    50,000 training and 10,000 test images with the release's files."""
    root = dataset_root("cifar10", cfg)
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise DataError(
            f"data.root {root} {what}; set data.root to the directory holding {ARCHIVE} or "
            f"its extracted {FOLDER}/ folder"
        )
    files, source = read_cifar10_files(root)
    train = _split(files, SPLITS["train"], source)
    test = _split(files, SPLITS["test"], source)
    size = cfg.image_size or SIDE
    train = Split(resize_images(train.x, size), train.y)
    test = Split(resize_images(test.x, size), test.y)
    return DataBundle("cifar10", image_spec(train.x, NUM_CLASSES, CLASSES), train, test)
