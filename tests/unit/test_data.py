"""Embedded and synthetic datasets, splits and the pixel rule."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from genlab.core.config import DataConfig
from genlab.core.errors import ConfigError
from genlab.data import load_data
from genlab.data.pixels import to_model, to_uint8


def test_digits_native():
    b = load_data(DataConfig(name="digits"))
    assert b.train.x.dtype == torch.uint8 and b.train.x.shape[1:] == (1, 8, 8)
    assert len(b.train) + len(b.test) == 1797 and len(b.test) == 180
    assert b.spec.num_classes == 10 and b.train.y.dtype == torch.int64
    # Values are sklearn's 0..16 scaled to 0..255: compare as a multiset with sklearn directly.
    ref = np.rint(load_digits().images * 255 / 16).astype(np.uint8)
    ours = torch.cat([b.train.x, b.test.x]).numpy().reshape(-1, 8, 8)
    assert sorted(map(bytes, ours)) == sorted(map(bytes, ref))


def test_digits_split_is_deterministic_and_disjoint():
    a, b = load_data(DataConfig()), load_data(DataConfig())
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    c = load_data(DataConfig(split_seed=1))
    assert not torch.equal(a.test.x, c.test.x)
    train = {bytes(x.numpy()) + bytes([int(y)]) for x, y in zip(a.train.x, a.train.y, strict=True)}
    test = [bytes(x.numpy()) + bytes([int(y)]) for x, y in zip(a.test.x, a.test.y, strict=True)]
    assert len(train) + len(test) >= 1790  # a few digits are exact duplicates in sklearn's set


@pytest.mark.parametrize("size", [16, 32])
def test_digits_resize(size):
    b = load_data(DataConfig(image_size=size))
    assert b.train.x.shape[1:] == (1, size, size) and b.spec.shape == (1, size, size)
    assert b.train.x.max() > 200  # still uses the full range


def test_ring8_geometry_and_sigma():
    b = load_data(DataConfig(name="ring8", num_samples=20_000))
    centres = torch.tensor(b.spec.extra["centres"])
    assert centres.shape == (8, 2)
    torch.testing.assert_close(centres.norm(dim=1), torch.full((8,), 2.0))
    angles = torch.atan2(centres[:, 1], centres[:, 0]).remainder(2 * np.pi).sort().values
    torch.testing.assert_close(angles.diff(), torch.full((7,), 2 * np.pi / 8), atol=1e-6, rtol=0)
    offsets = b.train.x - centres[b.train.y]
    assert offsets.std().item() == pytest.approx(0.02, rel=0.05)
    assert b.train.x.dtype == torch.float32 and len(b.test) == 2000


def test_grid25_geometry():
    b = load_data(DataConfig(name="grid25", num_samples=5000, sigma=0.1))
    centres = {tuple(c) for c in b.spec.extra["centres"]}
    assert centres == {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert b.spec.extra["sigma"] == 0.1
    counts = torch.bincount(b.train.y, minlength=25)
    assert counts.min() > 120  # equal weights: about 200 each


def test_field_not_read_by_dataset_is_an_error():
    with pytest.raises(ConfigError, match=r"data\.radius is not used by dataset 'grid25'"):
        load_data(DataConfig(name="grid25", radius=3.0))


def test_pixel_round_trip():
    x = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    f = to_model(x)
    assert f.min() == -1 and f.max() == 1
    assert torch.equal(to_uint8(f), x)
    assert torch.equal(
        to_uint8(torch.tensor([-3.0, 3.0])), torch.tensor([0, 255], dtype=torch.uint8)
    )
