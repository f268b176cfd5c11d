"""Fixtures of the docs smoke test: a fake home for the docs' ``~/...`` paths, one working
directory per page, and stand-in files for the datasets a reader brings (IDX, image folders,
MovieLens ratings), written where a command's ``data.root`` points."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifar_files import make_batches, write_folder


@dataclass
class PageState:
    """One page's working directory (the reader's shell, started in the repo root) and what its
    commands have done so far."""

    workdir: Path
    done: set[int] = field(default_factory=set)  # lines already run
    last_run: str | None = None  # the newest run a train command of the page wrote


@pytest.fixture(scope="module")
def doc_home(tmp_path_factory) -> Iterator[Path]:
    """``HOME`` for the module: ``~/data/mnist`` in a doc names a folder of this test, never
    the user's."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def page_states(doc_home, tmp_path_factory) -> Callable[[str], PageState]:
    """``page_states("docs/latent.md")`` -> that page's state, created on first use."""
    states: dict[str, PageState] = {}

    def get(page: str) -> PageState:
        if page not in states:
            states[page] = PageState(tmp_path_factory.mktemp(page.replace("/", "_")))
        return states[page]

    return get


# ----------------------------------------------------------------------------- stand-in data

IDX_FILES = {  # stem -> (count, image?) : 80 training and 20 test images, 28x28
    "train-images-idx3-ubyte": (80, True),
    "train-labels-idx1-ubyte": (80, False),
    "t10k-images-idx3-ubyte": (20, True),
    "t10k-labels-idx1-ubyte": (20, False),
}


def write_idx(root: Path) -> None:
    """The four MNIST IDX files (magic 0x0000080N, big-endian sizes, uint8 data)."""
    rng = np.random.default_rng(0)
    for stem, (count, image) in IDX_FILES.items():
        shape = (count, 28, 28) if image else (count,)
        data = rng.integers(0, 256, shape) if image else np.arange(count) % 10
        header = bytes([0, 0, 0x08, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)
        (root / stem).write_bytes(header + data.astype(np.uint8).tobytes())


def write_image_folder(root: Path) -> None:
    """Two class sub-folders of 12 random 20x20 RGB PNGs each."""
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir()
        for i in range(12):
            pixels = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i}.png")


def write_movielens(root: Path) -> None:
    """An ML-20M style ``ratings.csv``: 200 users, each rating 10 of 50 movies 3 to 5 stars."""
    rng = np.random.default_rng(0)
    with open(root / "ratings.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["userId", "movieId", "rating", "timestamp"])
        for user in range(1, 201):
            for movie in rng.choice(50, 10, replace=False):
                out.writerow([user, movie + 1, rng.choice([3.0, 4.0, 4.5, 5.0]), 1_000_000])


def write_cifar10(root: Path) -> None:
    """The six batch files of CIFAR-10's binary release, 8 records each."""
    write_folder(root, make_batches(records=8))


STANDINS: dict[str, Callable[[Path], None]] = {
    "mnist": write_idx,
    "fashion_mnist": write_idx,
    "kmnist": write_idx,
    "cifar10": write_cifar10,
    "imagefolder": write_image_folder,
    "movielens": write_movielens,
}


def write_standin(dataset: str, root: Path) -> bool:
    """Write stand-in files of ``dataset`` into ``root`` unless it exists; True if written."""
    if dataset not in STANDINS or root.exists():
        return False
    root.mkdir(parents=True)
    STANDINS[dataset](root)
    return True


@pytest.fixture(scope="module")
def standin() -> Callable[[str, Path], bool]:
    """``standin(dataset, root)``: stand-in files for a dataset the reader brings."""
    return write_standin


@pytest.fixture(scope="module", autouse=True)
def shared_matmul_peak() -> Iterator[None]:
    """``genlab bench`` measures this machine's matmul peak on every call (3-4 s of GEMMs).
    It is one property of the machine, so the docs' many bench lines share one measurement per
    device and dtype; each line still runs the whole bench, models and bare loops."""
    import torch

    from genlab.tools import bench

    measured: dict[tuple[str, torch.dtype], dict[str, float]] = {}
    real = bench.matmul_peak_gflops

    def peak(device: torch.device, dtype: torch.dtype = torch.float32) -> dict[str, float]:
        key = (str(device), dtype)
        if key not in measured:
            measured[key] = real(device, dtype)
        return dict(measured[key])

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bench, "matmul_peak_gflops", peak)
        yield
