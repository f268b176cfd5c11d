"""The ``shapes`` dataset: determinism, measured geometry against closed forms, attributes."""

import colorsys
import functools
import math

import numpy as np
import pytest
import torch

from genlab.core.config import DataConfig
from genlab.core.errors import ConfigError
from genlab.data import load_data
from genlab.data.shapes import ATTRS, SHAPES, attributes, render, sample_factors

# Areas of the shapes in units of the squared circumradius, from their definitions: a square
# with corners on the unit circle, an ellipse with semi-axes 1 and 1/2, an equilateral triangle
# inscribed in the unit circle; the heart (x^2 + y^2 - 1)^3 <= x^2 y^3 scaled by 1/1.25 is
# integrated by brute force on a fine grid below.
CLOSED_FORM = {"square": 2.0, "ellipse": math.pi / 2, "triangle": 3 * math.sqrt(3) / 4}


@functools.cache
def heart_area() -> float:
    g = np.linspace(-1.6, 1.6, 2001)
    x, y = np.meshgrid(g, g)
    inside = (x**2 + y**2 - 1) ** 3 - x**2 * y**3 <= 0
    return inside.sum() * (g[1] - g[0]) ** 2 / 1.25**2


def one(kind: str, scale=1.0, rotation=0.0, x=0.5, y=0.5, size=64, hue=None) -> torch.Tensor:
    """Render a single shape; returns float coverage (C, size, size) in [0, 1]."""
    f = [scale, rotation, x, y] + ([hue] if hue is not None else [])
    shape = torch.tensor([SHAPES.index(kind)])
    return render(shape, torch.tensor([f], dtype=torch.float32), size)[0].float() / 255


def centroid(img: torch.Tensor) -> tuple[float, float]:
    """(row, column) of the intensity centroid, in pixels, pixel centres at i + 0.5."""
    w = img.sum(0)
    idx = torch.arange(w.shape[0], dtype=torch.float32) + 0.5
    total = w.sum()
    return (w.sum(1) @ idx / total).item(), (w.sum(0) @ idx / total).item()


def test_deterministic_from_the_seed_and_sized_by_the_config():
    a = load_data(DataConfig(name="shapes", num_samples=300, test_fraction=0.2))
    b = load_data(DataConfig(name="shapes", num_samples=300, test_fraction=0.2))
    c = load_data(DataConfig(name="shapes", num_samples=300, test_fraction=0.2, split_seed=1))
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.factors, b.test.factors)
    assert not torch.equal(a.train.x, c.train.x)
    assert a.train.x.shape == (300, 1, 32, 32) and a.train.x.dtype == torch.uint8
    assert len(a.test) == 60 and a.spec.shape == (1, 32, 32)
    assert a.spec.class_names == SHAPES and a.spec.attr_names == ATTRS
    assert a.spec.factor_names == ("scale", "rotation", "x", "y")
    assert a.train.x.max() == 255 and (a.train.x == 0).float().mean() > 0.8  # shapes on black


@pytest.mark.parametrize("kind", SHAPES)
def test_area_matches_the_closed_form_and_grows_with_scale(kind):
    expected = CLOSED_FORM.get(kind) or heart_area()
    areas = []
    for scale in (0.5, 0.75, 1.0):
        radius_px = 0.2 * scale * 64
        areas.append(one(kind, scale, rotation=0.3).sum().item())
        assert areas[-1] == pytest.approx(expected * radius_px**2, rel=0.03), (kind, scale)
    assert areas[0] < areas[1] < areas[2]


def test_shapes_are_told_apart_by_their_area_at_equal_scale():
    area = {k: one(k).sum().item() for k in SHAPES}
    ratios = sorted(area[k] / area["square"] for k in SHAPES)
    assert min(np.diff(ratios)) > 0.1  # every pair differs by over 10% of a square
    assert area["heart"] / area["square"] == pytest.approx(heart_area() / 2, rel=0.03)


@pytest.mark.parametrize("kind", ["square", "ellipse", "triangle"])  # centroid = centre
def test_centroid_follows_x_and_y(kind):
    for x, y, rot in [(0.25, 0.7, 0.0), (0.5, 0.5, 1.0), (0.78, 0.22, 2.5)]:
        row, col = centroid(one(kind, 0.8, rot, x, y))
        assert col == pytest.approx(x * 64, abs=0.1) and row == pytest.approx(y * 64, abs=0.1)


def test_rotation_turns_the_ellipse_counter_clockwise():
    # The major axis of the ellipse, from the image's second moments (y up), is at the rotation.
    for rot in (0.0, 0.5, 1.2, 2.0):
        img = one("ellipse", 1.0, rot)[0]
        rows, cols = torch.meshgrid(
            torch.arange(64.0) + 0.5, torch.arange(64.0) + 0.5, indexing="ij"
        )
        u, v = cols - 32, -(rows - 32)
        cov = np.cov(np.stack([u.flatten(), v.flatten()]), aweights=img.flatten().numpy())
        major = np.linalg.eigh(cov)[1][:, -1]
        angle = math.atan2(major[1], major[0]) % math.pi
        assert min(abs(angle - rot % math.pi), math.pi - abs(angle - rot % math.pi)) < 0.02


def test_attributes_agree_with_the_factors_and_labels():
    b = load_data(DataConfig(name="shapes", num_samples=2000))
    s, f = b.train, b.train.factors
    col = {name: s.attrs[:, i] for i, name in enumerate(ATTRS)}
    assert s.attrs.dtype == torch.bool and s.attrs.shape == (2000, len(ATTRS))
    assert torch.equal(col["large"], f[:, 0] > 0.75) and torch.equal(col["small"], ~col["large"])
    assert torch.equal(col["right"], f[:, 2] > 0.5) and torch.equal(col["left"], ~col["right"])
    assert torch.equal(col["bottom"], f[:, 3] > 0.5) and torch.equal(col["top"], ~col["bottom"])
    for k, kind in enumerate(SHAPES):
        assert torch.equal(col[f"is_{kind}"], s.y == k)
    # The factors really drive the pixels: measured areas of large images exceed small ones',
    # and the measured centroid column of "right" images lies right of the middle.
    area = s.x.float().sum((1, 2, 3)) / 255
    assert area[col["large"]].mean() > 1.5 * area[col["small"]].mean()
    cols = torch.tensor([centroid(img.float())[1] for img in s.x[:200]])
    assert torch.equal(cols > 16, col["right"][:200])
    assert f[:, 0].min() >= 0.5 and f[:, 0].max() <= 1.0 and f[:, 1].max() < 2 * math.pi


def test_rgb_colour_is_the_hue_factor():
    b = load_data(DataConfig(name="shapes", channels=3, image_size=64, num_samples=50))
    assert b.train.x.shape == (50, 3, 64, 64) and b.spec.factor_names[-1] == "hue"
    for img, hue in zip(b.train.x[:10], b.train.factors[:10, 4], strict=True):
        brightest = img.float().sum(0).flatten().argmax()
        rgb = img.flatten(1)[:, brightest].float() / 255
        ref = torch.tensor(colorsys.hsv_to_rgb(hue.item(), 1.0, 1.0))
        torch.testing.assert_close(rgb, ref, atol=2 / 255, rtol=0)


def test_factors_are_uniform_over_their_ranges():
    shape, f = sample_factors(20_000, False, torch.Generator().manual_seed(0))
    assert torch.bincount(shape, minlength=4).min() > 4700
    for i, (lo, hi) in enumerate([(0.5, 1.0), (0.0, 2 * math.pi), (0.2, 0.8), (0.2, 0.8)]):
        assert f[:, i].min() >= lo and f[:, i].max() <= hi
        assert f[:, i].mean().item() == pytest.approx((lo + hi) / 2, rel=0.02)
    assert attributes(shape, f)[:, 1].float().mean().item() == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"image_size": 48}, "32x32 or 64x64"),
        ({"num_samples": 2_000_000}, "at most data.num_samples="),
        ({"num_samples": 200_000, "image_size": 64, "channels": 3}, "exceed 1 GiB"),
    ],
)
def test_bad_config_is_one_line(fields, fragment):
    with pytest.raises(ConfigError, match=fragment) as err:
        load_data(DataConfig(name="shapes", **fields))
    assert "\n" not in str(err.value)
