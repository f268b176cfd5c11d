"""genlab.tools.probe: the K-means triangle encoding against a brute-force loop, the probe on raw
pixels of digits against chance, and which representation of a model is probed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.core.config import DataConfig, build_config
from genlab.core.errors import ConfigError
from genlab.data import load_data
from genlab.data.base import DataSpec, Split
from genlab.models.base import build_model
from genlab.tools.probe import (
    feature_source,
    fit_kmeans,
    linear_probe,
    model_features,
    probe_features,
    triangle_features,
)


def brute_triangle(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    out = np.zeros((len(x), len(c)))
    for i in range(len(x)):
        d = [
            np.sqrt(sum((x[i, j] - c[k, j]) ** 2 for j in range(x.shape[1]))) for k in range(len(c))
        ]
        mean = sum(d) / len(d)
        for k in range(len(c)):
            out[i, k] = max(0.0, mean - d[k])
    return out


def test_triangle_features_match_a_brute_force_loop():
    gen = torch.Generator().manual_seed(0)
    x, c = torch.randn(7, 5, generator=gen), torch.randn(4, 5, generator=gen)
    got = triangle_features(x, c).numpy()
    np.testing.assert_allclose(got, brute_triangle(x.double().numpy(), c.double().numpy()), 1e-10)
    assert (got == 0).any() and (got > 0).any()  # both sides of the max(0, .) are exercised


def test_kmeans_finds_well_separated_centres():
    gen = torch.Generator().manual_seed(1)
    centres = torch.tensor([[10.0, 0.0], [-10.0, 0.0], [0.0, 10.0]])
    x = centres.repeat_interleave(50, 0) + 0.1 * torch.randn(150, 2, generator=gen)
    found = fit_kmeans(x, 3).float()
    nearest = torch.cdist(centres, found).min(1).values
    assert (nearest < 0.1).all()
    with pytest.raises(ConfigError, match="--k 200"):
        fit_kmeans(x, 200)


def test_probe_on_raw_digit_pixels_is_well_above_chance():
    data = load_data(DataConfig(name="digits", image_size=8))
    result = probe_features(None, data, k=20)
    rows = {r.name: r for r in result.rows}
    assert set(rows) == {"kmeans", "pixels"}
    assert result.chance < 0.15 and result.num_classes == 10
    assert rows["pixels"].accuracy > 0.9 and rows["pixels"].dim == 64
    assert rows["kmeans"].accuracy > 0.7 and rows["kmeans"].dim == 20


def test_probe_of_shuffled_labels_is_near_chance():
    """The same probe cannot read labels that carry no information about the images."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(600, 10, generator=gen)
    y = torch.randint(0, 3, (600,), generator=gen)
    acc, converged = linear_probe(x[:400], y[:400], x[400:], y[400:])
    assert converged and acc < 0.5


def tiny(name: str):
    """A tiny model of its preset (16x16 digits, width 8, latent 4), untrained."""
    cfg = build_config(name, preset=f"tiny_{name}")
    spec = DataSpec("image", (1, 16, 16), 10, tuple("0123456789"))
    return build_model(cfg.model, spec)


def test_which_representation_is_probed():
    x = torch.randint(0, 256, (5, 1, 16, 16), dtype=torch.uint8)
    vae = tiny("vae")
    assert feature_source(vae) == "encoder"
    assert model_features(vae, Split(x), "encoder").shape == (5, 4)
    gan = tiny("dcgan")
    assert feature_source(gan) == "discriminator"
    with torch.no_grad():
        want = gan.eval().features(x.float() / 127.5 - 1).flatten(1)
    torch.testing.assert_close(model_features(gan, Split(x), "discriminator"), want)
    with pytest.raises(ConfigError, match="conditioned"):
        feature_source(tiny("cgan"))
    with pytest.raises(ConfigError, match="has neither"):
        feature_source(torch.nn.Linear(2, 2))
