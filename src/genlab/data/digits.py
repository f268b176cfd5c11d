"""scikit-learn's bundled handwritten digits: 1,797 grey 8x8 images, 10 classes.

The embedded default dataset: no file, no network. Pixel values 0..16 are scaled to 0..255.
"""

from __future__ import annotations

import numpy as np
import torch

from genlab.core.config import DataConfig
from genlab.data.base import DataBundle, image_spec, random_split, register_dataset, resize_images


@register_dataset(
    "digits",
    uses=("image_size", "test_fraction", "split_seed"),
    help="scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), embedded",
)
def load_digits(cfg: DataConfig) -> DataBundle:
    from sklearn.datasets import load_digits as sk_digits

    raw = sk_digits()
    pixels = np.rint(raw.images * (255.0 / 16.0)).astype(np.uint8)  # (N, 8, 8)
    images = torch.from_numpy(pixels).unsqueeze(1)  # (N, 1, 8, 8)
    images = resize_images(images, cfg.image_size or 8)
    labels = torch.from_numpy(raw.target.astype(np.int64))
    train, test = random_split(images, labels, cfg.test_fraction, cfg.split_seed)
    names = [str(i) for i in range(10)]
    return DataBundle("digits", image_spec(images, 10, names), train, test)
