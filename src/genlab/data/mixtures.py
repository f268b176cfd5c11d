"""2-D Gaussian mixtures of the mode-collapse benchmark (VEEGAN, Srivastava et al. 2017,
arXiv:1705.07761; PacGAN, Lin et al. 2018, arXiv:1712.04086).

``ring8``: 8 equal modes on a circle of radius 2. ``grid25``: 25 equal modes on
{-4, -2, 0, 2, 4}^2. Each mode is an isotropic Gaussian with std ``sigma`` (default 0.02 for the
ring, 0.05 for the grid). Centres and sigma travel in ``DataSpec.extra`` so mode coverage can be
counted later: a sample is high quality within 3 sigma of its nearest centre.
"""

from __future__ import annotations

import math

import torch

from genlab.core.config import DataConfig
from genlab.data.base import DataBundle, DataSpec, Split, register_dataset

RING_RADIUS = 2.0
RING_SIGMA = 0.02
GRID_SIGMA = 0.05


def ring_centres(n: int = 8, radius: float = RING_RADIUS) -> torch.Tensor:
    """(n, 2) points evenly spaced on a circle, the first at angle 0."""
    angles = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def grid_centres(values: tuple[float, ...] = (-4.0, -2.0, 0.0, 2.0, 4.0)) -> torch.Tensor:
    """(len(values)^2, 2) points of the square grid values x values, row-major."""
    v = torch.tensor(values)
    xs, ys = torch.meshgrid(v, v, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)


def sample_mixture(
    centres: torch.Tensor, sigma: float, n: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """n points of the equal-weight mixture: (points (n, 2) float32, mode index (n,) int64)."""
    modes = torch.randint(len(centres), (n,), generator=generator)
    noise = torch.randn(n, centres.shape[1], generator=generator) * sigma
    return centres[modes] + noise, modes


def _bundle(name: str, centres: torch.Tensor, sigma: float, cfg: DataConfig) -> DataBundle:
    gen = torch.Generator().manual_seed(cfg.split_seed)
    n_test = max(1, round(cfg.num_samples * cfg.test_fraction))
    x_train, y_train = sample_mixture(centres, sigma, cfg.num_samples, gen)
    x_test, y_test = sample_mixture(centres, sigma, n_test, gen)
    spec = DataSpec(
        "points",
        (2,),
        num_classes=len(centres),
        extra={"centres": centres.tolist(), "sigma": sigma},
    )
    return DataBundle(name, spec, Split(x_train, y_train), Split(x_test, y_test))


_USES = ("num_samples", "test_fraction", "split_seed", "sigma")


@register_dataset("ring8", uses=(*_USES, "radius"), help="8 Gaussians on a circle (2-D)")
def load_ring8(cfg: DataConfig) -> DataBundle:
    centres = ring_centres(8, cfg.radius or RING_RADIUS)
    return _bundle("ring8", centres, cfg.sigma or RING_SIGMA, cfg)


@register_dataset("grid25", uses=_USES, help="25 Gaussians on a 5x5 grid (2-D)")
def load_grid25(cfg: DataConfig) -> DataBundle:
    return _bundle("grid25", grid_centres(), cfg.sigma or GRID_SIGMA, cfg)
