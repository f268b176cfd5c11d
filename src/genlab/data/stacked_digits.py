"""Stacked digits: three handwritten digits in the three channels of one image, 1,000 modes.

The mode-collapse benchmark of Metz et al. 2017 (Unrolled GANs, arXiv:1611.02163), VEEGAN
(Srivastava et al. 2017, arXiv:1705.07761) and PacGAN (Lin et al. 2018, arXiv:1712.04086) stacks
three MNIST digits as the R, G and B channels; a generator that covers the data makes all
10 x 10 x 10 = 1,000 digit triples. Here the digits come from scikit-learn's embedded ``digits``
(no download), so the benchmark runs anywhere.

Each sample draws three digit classes independently and uniformly (so the 1,000 modes are
equally likely), then a random image of each class from the *matching split* of ``digits``
(training samples from its training images, test samples from its test images, split with the
same ``data.test_fraction`` and ``data.split_seed``), and stacks them as channels 0, 1, 2. The
label is the mode, ``y = 100 d0 + 10 d1 + d2``. ``data.num_samples`` training samples and
``round(num_samples * test_fraction)`` test samples are drawn from a generator seeded by
``data.split_seed``.

``spec.extra["stacked"]`` names the base data, so ``genlab.metrics.classifier`` can read each
channel with the digits classifier and the ``modes`` metric can count modes (its default
26,000 samples follow PacGAN).
"""

from __future__ import annotations

import torch
from torch import Tensor

from genlab.core.config import DataConfig
from genlab.core.errors import ConfigError
from genlab.data.base import DataBundle, DataSpec, Split, load_data, register_dataset

CHANNELS = 3
BASE = 10  # digit classes
DEFAULT_SIZE = 16
MAX_BYTES = 1 << 30  # all images: at most 1 GiB of uint8 pixels


def stack_split(base: Split, n: int, gen: torch.Generator) -> Split:
    """n stacked samples from a split of single-channel digits: uint8 (n, 3, H, W) images and
    int64 (n,) modes 100 d0 + 10 d1 + d2, each d_i uniform over the 10 classes."""
    order = torch.argsort(base.y, stable=True)  # base indices grouped by class
    count = torch.bincount(base.y, minlength=BASE)
    if (count == 0).any():
        missing = int((count == 0).nonzero()[0])
        raise ConfigError(
            f"the digits split has no image of class {missing}; lower data.test_fraction"
        )
    start = torch.cumsum(count, 0) - count
    digits = torch.randint(BASE, (n, CHANNELS), generator=gen)  # (n, 3)
    within = (torch.rand(n, CHANNELS, generator=gen) * count[digits]).long()
    within = torch.minimum(within, count[digits] - 1)  # rand() < 1, but be safe with rounding
    idx = order[start[digits] + within]  # (n, 3) indices into the base split
    images = base.x[idx.flatten()].view(n, CHANNELS, *base.x.shape[-2:])
    modes = (digits * torch.tensor([BASE**2, BASE, 1])).sum(1)
    return Split(images, modes)


def mode_digits(modes: Tensor) -> Tensor:
    """(n,) int64 modes -> (n, 3) the digits of channels 0, 1, 2."""
    return torch.stack([modes // BASE**2, modes // BASE % BASE, modes % BASE], dim=1)


@register_dataset(
    "stacked_digits",
    uses=("image_size", "num_samples", "test_fraction", "split_seed"),
    help="three embedded digits stacked as RGB channels: 1,000 modes (stacked MNIST protocol)",
)
def load_stacked_digits(cfg: DataConfig) -> DataBundle:
    size = cfg.image_size or DEFAULT_SIZE
    n_train = cfg.num_samples
    n_test = max(1, round(n_train * cfg.test_fraction))
    if (n_train + n_test) * CHANNELS * size * size > MAX_BYTES:
        most = int(MAX_BYTES / (CHANNELS * size * size) / (1 + cfg.test_fraction))
        raise ConfigError(
            f"data.num_samples={n_train} stacked digits of {size}x{size} exceed 1 GiB; "
            f"use at most data.num_samples={most}"
        )
    base_fields = {
        "name": "digits",
        "image_size": size,
        "test_fraction": cfg.test_fraction,
        "split_seed": cfg.split_seed,
    }
    base = load_data(DataConfig(**base_fields))
    gen = torch.Generator().manual_seed(cfg.split_seed)
    train = stack_split(base.train, n_train, gen)
    test = stack_split(base.test, n_test, gen)
    spec = DataSpec(
        "image",
        (CHANNELS, size, size),
        num_classes=BASE**CHANNELS,
        class_names=tuple(f"{m:03d}" for m in range(BASE**CHANNELS)),
        extra={"stacked": {"data": base_fields, "channels": CHANNELS}, "eval_metrics": "modes"},
    )
    return DataBundle("stacked_digits", spec, train, test)
