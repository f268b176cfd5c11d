"""Slow quality check of the demo runs (``make bench``, not CI): do the samples look like
digits? Measured, not eyeballed: a logistic-regression classifier fitted on scikit-learn's 8x8
digits reads the samples (shrunk back to 8x8); we count confident predictions and classes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

import genlab
from genlab.core.config import DataConfig
from genlab.data import load_data
from genlab.data.pixels import to_model


def digit_probabilities(images: torch.Tensor) -> np.ndarray:
    """(N, 1, S, S) in [-1, 1] -> (N, 10) class probabilities of a classifier on 8x8 digits."""
    digits = load_digits()
    clf = LogisticRegression(max_iter=5000).fit(digits.data, digits.target)
    small = F.interpolate((images + 1) * 8.0, size=(8, 8), mode="area")  # back to 0..16
    return clf.predict_proba(small.reshape(len(images), 64).double().numpy())


def summary(proba: np.ndarray) -> tuple[float, np.ndarray]:
    return float((proba.max(1) > 0.8).mean()), np.bincount(proba.argmax(1), minlength=10)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vae", "dcgan"])
def test_demo_samples_read_as_digits(name, tmp_path):
    run = genlab.train(
        name, preset=f"demo_{name}", out=tmp_path / name, overrides=["train.progress=false"]
    )
    samples = genlab.load(run).sample(1000, generator=torch.Generator().manual_seed(0))
    confident, counts = summary(digit_probabilities(samples))
    # Reference: real held-out digits through the same 8 -> 32 -> 8 pipeline.
    real = to_model(load_data(DataConfig(name="digits", image_size=32)).test.x)
    real_confident, _ = summary(digit_probabilities(real))
    print(f"{name}: confident {confident:.3f} (real {real_confident:.3f}), classes {counts}")
    assert confident >= 0.5 * real_confident
    assert (counts >= 30).sum() >= 9  # no collapse onto a few digits
