"""The 2-D sample plot draws each mode as its 3-sigma ring under the samples: a captured mode's
ring is partly covered by blue samples, a dropped mode's ring stays red."""

import dataclasses
import io

import matplotlib.image
import torch

from genlab.core.config import DataConfig
from genlab.data import load_data
from genlab.models.sampling import scatter_png


def red_and_blue(png: bytes) -> tuple[int, int]:
    """Counts of clearly red and clearly blue pixels of a PNG."""
    rgb = matplotlib.image.imread(io.BytesIO(png), format="png")[..., :3]
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    red = (r > 0.7) & (g < 0.45) & (b < 0.45)
    blue = (b > 0.6) & (r < 0.6) & (b - r > 0.15)
    return int(red.sum()), int(blue.sum())


def test_dropped_modes_leave_their_rings_uncovered():
    bundle = load_data(DataConfig(name="grid25"))
    x = bundle.train.x[:2500]
    kept = x[x[:, 0] > -3]  # every mode of the column x = -4 dropped
    red_all, blue_all = red_and_blue(scatter_png(x, bundle.spec))
    red_kept, blue_kept = red_and_blue(scatter_png(kept, bundle.spec))
    assert blue_all > 0 and red_all > 0  # samples drawn, rings drawn
    assert red_kept > red_all * 1.1  # the 5 uncovered rings add red
    assert blue_kept < blue_all


def test_modes_without_sigma_are_crosses():
    bundle = load_data(DataConfig(name="grid25"))
    no_sigma = dataclasses.replace(bundle.spec, extra={"centres": bundle.spec.extra["centres"]})
    red, _ = red_and_blue(scatter_png(torch.zeros(0, 2), no_sigma))
    assert red > 0
