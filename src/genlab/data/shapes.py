"""Procedural 2-D shapes in the manner of dSprites (Matthey et al. 2017,
https://github.com/deepmind/dsprites-dataset): every image is one white (or coloured) shape on
black, drawn from known generative factors, so a latent space can be checked against the truth.

Factors, drawn independently and uniformly from a generator seeded by ``data.split_seed``:

- shape in {square, ellipse, triangle, heart}: the class label ``y``;
- scale in [0.5, 1]: the shape fits a circle of radius 0.2 * scale of the image side;
- rotation in [0, 2 pi) radians, counter-clockwise;
- x, y in [0.2, 0.8]: the centre's column and row as fractions of the image side (0 = left /
  top edge), so a shape never leaves the frame whatever its scale and rotation;
- hue in [0, 1) (``data.channels=3`` only): the colour HSV(hue, 1, 1).

Binary attributes: ``small`` / ``large`` (scale below / above the median 0.75), ``left`` /
``right`` (x below / above 0.5), ``top`` / ``bottom`` (y below / above 0.5) and ``is_<shape>``.

Rendering is vectorised: for each shape class, an inside test on a supersampled coordinate grid
over a window around every shape at once (batched to bound memory); the mean of the s x s
subsamples of a pixel is its coverage, which anti-aliases the edges.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from genlab.core.config import DataConfig
from genlab.core.errors import ConfigError
from genlab.data.base import DataBundle, DataSpec, Split, register_dataset

SHAPES = ("square", "ellipse", "triangle", "heart")
FACTORS = ("scale", "rotation", "x", "y")
ATTRS = ("small", "large", "left", "right", "top", "bottom", *(f"is_{s}" for s in SHAPES))
SIZES = (32, 64)
RADIUS = 0.2  # circumradius of a shape of scale 1, as a fraction of the image side
SCALE_RANGE = (0.5, 1.0)
POS_RANGE = (RADIUS, 1.0 - RADIUS)
SUPERSAMPLE = 4  # s x s coverage samples per pixel
MAX_BYTES = 1 << 30  # all images of one dataset: at most 1 GiB of uint8 pixels
CHUNK_POINTS = 1 << 21  # subsample points evaluated at once (bounds the temporaries)

# --------------------------------------------------------------------------- inside tests
# Each takes local coordinates (u, v) of any shape, v pointing up, in units of the circumradius
# (the shape fits the unit disk), and says which points are inside.


def inside_square(u: Tensor, v: Tensor) -> Tensor:
    """Axis-aligned square of side sqrt(2) (corners on the unit circle); area 2."""
    return torch.maximum(u.abs(), v.abs()) <= 1 / math.sqrt(2)


def inside_ellipse(u: Tensor, v: Tensor) -> Tensor:
    """Ellipse with semi-axes 1 (along u) and 1/2 (along v); area pi / 2."""
    return u * u + 4 * v * v <= 1


def inside_triangle(u: Tensor, v: Tensor) -> Tensor:
    """Equilateral triangle inscribed in the unit circle, a vertex pointing up; area 3 sqrt(3)/4.
    Inside = on the inner side of all three edges, each at distance 1/2 (the inradius)."""
    c = math.sqrt(3) / 2
    return (-v <= 0.5) & (c * u + 0.5 * v <= 0.5) & (-c * u + 0.5 * v <= 0.5)


def inside_heart(u: Tensor, v: Tensor) -> Tensor:
    """The heart curve (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, which fits the circle of radius 1.25
    about (0, 0.25), mapped onto the unit disk; area about 2.34."""
    x, y = 1.25 * u, 1.25 * v + 0.25
    return (x * x + y * y - 1) ** 3 - x * x * y**3 <= 0


INSIDE: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "square": inside_square,
    "ellipse": inside_ellipse,
    "triangle": inside_triangle,
    "heart": inside_heart,
}

# --------------------------------------------------------------------------- factors


def sample_factors(n: int, rgb: bool, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """n draws of the factors: (shape index (n,) int64, factors (n, 4 or 5) float32 in the order
    scale, rotation, x, y[, hue])."""
    shape = torch.randint(len(SHAPES), (n,), generator=generator)
    u = torch.rand(n, 5 if rgb else 4, generator=generator)
    lo = torch.tensor([SCALE_RANGE[0], 0.0, POS_RANGE[0], POS_RANGE[0], 0.0])
    hi = torch.tensor([SCALE_RANGE[1], 2 * math.pi, POS_RANGE[1], POS_RANGE[1], 1.0])
    k = u.shape[1]
    return shape, lo[:k] + u * (hi[:k] - lo[:k])


def attributes(shape: Tensor, factors: Tensor) -> Tensor:
    """Binary attributes (n, len(ATTRS)) bool from shape indices (n,) and factors (n, >=4)."""
    scale, x, y = factors[:, 0], factors[:, 2], factors[:, 3]
    large, right, bottom = scale > sum(SCALE_RANGE) / 2, x > 0.5, y > 0.5
    is_shape = [shape == k for k in range(len(SHAPES))]
    return torch.stack([~large, large, ~right, right, ~bottom, bottom, *is_shape], dim=1)


def hsv_colour(hue: Tensor) -> Tensor:
    """HSV(hue, 1, 1) -> RGB in [0, 1]: hue (n,) in [0, 1) -> (n, 3)."""
    k = torch.tensor([5.0, 3.0, 1.0])
    h = (k + 6 * hue[:, None]) % 6  # (n, 3)
    return 1 - torch.clamp(torch.minimum(h, 4 - h), 0, 1)


# --------------------------------------------------------------------------- rendering


def _window(size: int) -> int:
    """Side in pixels of a square that holds any shape, with a pixel of margin either side."""
    return math.ceil(2 * RADIUS * SCALE_RANGE[1] * size) + 2


def _coverage(kind: str, factors: Tensor, origin: Tensor, size: int, s: int) -> Tensor:
    """Coverage in [0, 1] of the windows (n, W, W) whose top-left pixels are ``origin`` (n, 2)
    (row, column), for n shapes of one kind with factors (n, >=4)."""
    n, w = len(factors), _window(size)
    offs = (torch.arange(w * s, dtype=torch.float32) + 0.5) / s  # subsample centres, in pixels
    rows = (origin[:, :1] + offs) / size  # (n, W*s), fractions of the image side
    cols = (origin[:, 1:] + offs) / size
    scale, rot, cx, cy = (factors[:, i, None] for i in range(4))
    radius = RADIUS * scale
    dx = ((cols - cx) / radius)[:, None, :]  # (n, 1, W*s)
    dy = (-(rows - cy) / radius)[:, :, None]  # (n, W*s, 1), up is positive
    cos, sin = rot.cos()[:, :, None], rot.sin()[:, :, None]
    # Rotate the sample points by -rotation: the shape turns counter-clockwise by +rotation.
    u, v = cos * dx + sin * dy, cos * dy - sin * dx  # (n, W*s, W*s)
    inside = INSIDE[kind](u, v).float()
    return inside.view(n, w, s, w, s).mean(dim=(2, 4))


def render(shape: Tensor, factors: Tensor, size: int, s: int = SUPERSAMPLE) -> Tensor:
    """uint8 images (n, C, size, size), C = 1 (4 factors) or 3 (5 factors, the last the hue),
    of the shapes ``shape`` (n,) int64 with ``factors`` (n, 4|5) as ``sample_factors`` gives.
    Only the uint8 result is held for all images; float work is done a chunk at a time."""
    n, w = len(shape), _window(size)
    colour = hsv_colour(factors[:, 4]) if factors.shape[1] > 4 else torch.ones(n, 1)  # (n, C)
    images = torch.zeros(n, colour.shape[1], size, size, dtype=torch.uint8)
    centre = factors[:, [3, 2]] * size  # (n, 2) row, column in pixels
    origin = (centre - w / 2).floor().clamp(0, size - w).long()  # window inside the image
    per_chunk = max(1, CHUNK_POINTS // (w * s) ** 2)
    grid, channels = torch.arange(w), torch.arange(colour.shape[1])[None, :, None, None]
    for k, kind in enumerate(SHAPES):
        idx = (shape == k).nonzero().squeeze(1)
        for part in idx.split(per_chunk):
            cov = _coverage(kind, factors[part], origin[part], size, s)  # (m, W, W)
            pixels = cov[:, None] * colour[part, :, None, None] * 255  # (m, C, W, W)
            r = (origin[part, 0:1] + grid)[:, None, :, None]  # (m, 1, W, 1)
            c = (origin[part, 1:2] + grid)[:, None, None, :]  # (m, 1, 1, W)
            images[part[:, None, None, None], channels, r, c] = pixels.round_().to(torch.uint8)
    return images


# --------------------------------------------------------------------------- dataset


def _check(cfg: DataConfig) -> tuple[int, int, int]:
    """(image size, channels, test images) after validating the config."""
    size, channels = cfg.image_size or SIZES[0], cfg.channels or 1
    if size not in SIZES:
        raise ConfigError(
            f"data.image_size={size}: shapes renders 32x32 or 64x64 images; "
            "set data.image_size=32 or 64"
        )
    n_test = max(1, round(cfg.num_samples * cfg.test_fraction))
    per_image = channels * size * size
    if (cfg.num_samples + n_test) * per_image > MAX_BYTES:
        most = int(MAX_BYTES / per_image / (1 + cfg.test_fraction))
        raise ConfigError(
            f"data.num_samples={cfg.num_samples} shapes of {channels}x{size}x{size} exceed "
            f"1 GiB; use at most data.num_samples={most}"
        )
    return size, channels, n_test


@register_dataset(
    "shapes",
    uses=("image_size", "channels", "num_samples", "test_fraction", "split_seed"),
    help="dSprites-style shapes with known factors (32 or 64 px, grey or colour), rendered",
)
def load_shapes(cfg: DataConfig) -> DataBundle:
    size, channels, n_test = _check(cfg)
    rgb = channels == 3
    gen = torch.Generator().manual_seed(cfg.split_seed)
    shape, factors = sample_factors(cfg.num_samples + n_test, rgb, gen)
    images = render(shape, factors, size)
    attrs = attributes(shape, factors)
    # Views, not copies: the first num_samples images train, the rest test.
    n = cfg.num_samples
    train = Split(images[:n], shape[:n], attrs[:n], factors[:n])
    test = Split(images[n:], shape[n:], attrs[n:], factors[n:])
    spec = DataSpec(
        "image",
        (channels, size, size),
        num_classes=len(SHAPES),
        class_names=SHAPES,
        attr_names=ATTRS,
        factor_names=(*FACTORS, "hue") if rgb else FACTORS,
    )
    return DataBundle("shapes", spec, train, test)
