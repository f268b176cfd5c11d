"""MNIST (LeCun et al. 1998), Fashion-MNIST (Xiao et al. 2017, arXiv:1708.07747) and
Kuzushiji-MNIST (Clanuwat et al. 2018, arXiv:1812.01718) from their IDX files, with the official
train/test split. The files are read from ``data.root``, else from the download folder
(``genlab.data.downloads``: fetched there by ``genlab data download`` or ``data.download=true``).

The IDX format: a 4-byte big-endian magic ``00 00 TT NN`` (TT = element type, 0x08 = unsigned
byte, the only type these datasets use; NN = number of dimensions), NN big-endian uint32 sizes,
then the elements in row-major order and nothing else. Each file may be gzipped (``.gz``).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from genlab.core.config import DataConfig
from genlab.core.errors import DataError
from genlab.data.base import DataBundle, Split, image_spec, register_dataset, resize_images
from genlab.data.downloads import dataset_root

UBYTE = 0x08
# Type codes other IDX files use; named in the error so the user knows what they have.
OTHER_TYPES = {0x09: "signed byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
NATIVE_SIZE = 28
NUM_CLASSES = 10
MNIST_CLASSES = tuple(str(i) for i in range(NUM_CLASSES))
# The ten hiragana of KMNIST's class map (kmnist_classmap.csv), romanised.
KMNIST_CLASSES = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
_REFETCH = "delete it and download it again (`genlab data download`, docs/datasets.md)"


def _read_bytes(path: Path) -> bytearray:
    """The file's bytes, gunzipped if the name ends in .gz. A bytearray, so the arrays viewing
    it are writable and ``torch.from_numpy`` shares them without a copy or a warning."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below; opened apart to tell the errors apart
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    with f:
        if path.suffix != ".gz":
            try:
                buf = bytearray(os.fstat(f.fileno()).st_size)
                del buf[f.readinto(buf) :]
                return buf
            except OSError as e:
                raise DataError(f"cannot read {path}: {e.strerror or e}") from None
        buf = bytearray()
        try:
            with gzip.GzipFile(fileobj=f) as g:
                # Chunks, not one read(): a corrupt stream must not make us allocate wildly.
                while chunk := g.read(1 << 22):
                    buf += chunk
        except (gzip.BadGzipFile, EOFError, zlib.error, OSError) as e:
            raise DataError(
                f"{path} is not a valid gzip stream ({e}); check it with `gzip -t`, or {_REFETCH}"
            ) from None
    return buf


def read_idx(path: str | Path) -> np.ndarray:
    """Parse one unsigned-byte IDX file (raw, or gzipped if it ends in .gz) -> uint8 array of the
    shape its header gives, e.g. (N, 28, 28) for images or (N,) for labels. Raises ``DataError``
    naming the file for a bad magic number, another element type, or a size that does not match
    the header."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(
            f"{path} is truncated: {len(data)} bytes, shorter than an IDX header; {_REFETCH}"
        )
    magic = int.from_bytes(data[:4], "big")
    if data[0] or data[1]:
        hint = "it is gzipped: add a .gz suffix" if data[:2] == b"\x1f\x8b" else _REFETCH
        raise DataError(
            f"{path} is not an IDX file: magic number 0x{magic:08X}, expected 0x0000080N "
            f"(two zero bytes, type 0x08, N dimensions); {hint}"
        )
    code, ndim = data[2], data[3]
    if code != UBYTE:
        kind = OTHER_TYPES.get(code, "unknown")
        raise DataError(
            f"{path} holds IDX type 0x{code:02X} ({kind}); only 0x08 (unsigned byte) is "
            f"supported (magic 0x{magic:08X}, expected 0x000008{ndim:02X})"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{path} is truncated: its header needs {header} bytes for {ndim} dimensions, "
            f"found {len(data)}; {_REFETCH}"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, offset=4))
    expected, found = int(np.prod(shape, dtype=np.int64)), len(data) - header
    if found < expected:
        raise DataError(
            f"{path} is truncated: its header {shape} needs {expected} data bytes, found {found}; "
            f"{_REFETCH}"
        )
    if found > expected:
        raise DataError(
            f"{path} has {found - expected} extra bytes after the {expected} its header {shape} "
            f"describes; {_REFETCH}"
        )
    return np.frombuffer(data, np.uint8, expected, offset=header).reshape(shape)


def _find(root: Path, stem: str) -> Path | None:
    # Raw first: a folder that holds both was probably unpacked from the .gz.
    return next((p for p in (root / stem, root / f"{stem}.gz") if p.is_file()), None)


def _read_split(image_file: Path, label_file: Path) -> Split:
    images, labels = read_idx(image_file), read_idx(label_file)
    if images.ndim != 3:
        raise DataError(
            f"{image_file} holds a {images.ndim}-D array {images.shape} (magic 0x000008"
            f"{images.ndim:02X}), expected 3-D images (0x00000803); is it another file renamed?"
        )
    if labels.ndim != 1:
        raise DataError(
            f"{label_file} holds a {labels.ndim}-D array {labels.shape} (magic 0x000008"
            f"{labels.ndim:02X}), expected 1-D labels (0x00000801); is it another file renamed?"
        )
    if len(images) == 0:
        raise DataError(f"{image_file} holds zero images; {_REFETCH}")
    if len(labels) != len(images):
        raise DataError(
            f"{label_file} has {len(labels)} labels but {image_file} has {len(images)} images; "
            f"the two files must come from the same split and release"
        )
    if labels.max() >= NUM_CLASSES:
        raise DataError(
            f"{label_file} has label {labels.max()} at index {int(labels.argmax())}; labels must "
            f"be 0..{NUM_CLASSES - 1}; {_REFETCH}"
        )
    x = torch.from_numpy(images).unsqueeze(1)  # (N, 1, H, W) uint8, shares the buffer
    return Split(x, torch.from_numpy(labels.astype(np.int64)))


def load_idx_dataset(name: str, cfg: DataConfig, class_names: tuple[str, ...]) -> DataBundle:
    """The four IDX files in ``cfg.root`` (or the download folder) -> uint8 (N, 1, S, S)
    splits, S = ``cfg.image_size`` (default 28), int64 labels 0..9."""
    root = dataset_root(name, cfg)
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise DataError(
            f"data.root {root} {what}; set data.root to the directory holding {name}'s IDX files"
        )
    stems = [stem for pair in FILES.values() for stem in pair]
    paths = {stem: _find(root, stem) for stem in stems}
    missing = [stem for stem, p in paths.items() if p is None]
    if missing:
        raise DataError(
            f"{root} lacks {', '.join(f'{s}[.gz]' for s in missing)} for dataset {name!r}; it "
            f"needs {', '.join(stems)}, each raw or gzipped (.gz)"
        )
    train, test = (_read_split(paths[img], paths[lbl]) for img, lbl in FILES.values())
    if train.x.shape[1:] != test.x.shape[1:]:
        raise DataError(
            f"{paths[FILES['test'][0]]} holds {tuple(test.x.shape[2:])} images but "
            f"{paths[FILES['train'][0]]} holds {tuple(train.x.shape[2:])}; use one release"
        )
    size = cfg.image_size or NATIVE_SIZE
    train = Split(resize_images(train.x, size), train.y)
    test = Split(resize_images(test.x, size), test.y)
    return DataBundle(name, image_spec(train.x, NUM_CLASSES, class_names), train, test)


@register_dataset(
    "mnist",
    uses=("root", "image_size", "download"),
    help="MNIST handwritten digits, IDX files (60k/10k, 28x28 grey, 10 classes; downloadable)",
)
def load_mnist(cfg: DataConfig) -> DataBundle:
    return load_idx_dataset("mnist", cfg, MNIST_CLASSES)


@register_dataset(
    "fashion_mnist",
    uses=("root", "image_size", "download"),
    help="Fashion-MNIST clothing, IDX files (60k/10k, 28x28 grey, 10 classes; downloadable)",
)
def load_fashion_mnist(cfg: DataConfig) -> DataBundle:
    return load_idx_dataset("fashion_mnist", cfg, FASHION_CLASSES)


@register_dataset(
    "kmnist",
    uses=("root", "image_size", "download"),
    help="Kuzushiji-MNIST cursive hiragana, IDX files (60k/10k, 28x28 grey; downloadable)",
)
def load_kmnist(cfg: DataConfig) -> DataBundle:
    return load_idx_dataset("kmnist", cfg, KMNIST_CLASSES)
