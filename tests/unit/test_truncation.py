"""The truncated normal against scipy, and truncation / interpolation / class grids over every
model of the generator contract (``genlab.models.base``)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from genlab.core.config import build_config
from genlab.core.errors import ConfigError
from genlab.core.registry import MODELS
from genlab.data import load_data
from genlab.models import build_model
from genlab.models.base import has_generator
from genlab.models.sampling import (
    class_grid,
    interpolation_rows,
    sample_truncated,
    truncated_normal,
)
from genlab.tools.latent import slerp

gen = lambda seed=0: torch.Generator().manual_seed(seed)  # noqa: E731


def tiny(name, preset=None):
    cfg = build_config(name, preset=preset or f"tiny_{name}")
    torch.manual_seed(0)
    return build_model(cfg.model, load_data(cfg.data).spec)


# ----------------------------------------------------------------------------- truncated normal


@pytest.mark.parametrize("bound", [0.3, 1.0, 2.5])
def test_truncated_normal_matches_scipy_truncnorm(bound):
    z = truncated_normal(200, 100, bound, gen()).double().flatten().numpy()
    assert np.abs(z).max() <= bound
    ref = scipy.stats.truncnorm(-bound, bound)
    assert scipy.stats.kstest(z, ref.cdf).pvalue > 1e-3
    # 20,000 draws: the variance within 5 standard errors (Var of the sample variance ~ m4/n).
    se = np.sqrt((ref.moment(4) - ref.var() ** 2) / z.size)
    assert z.var() == pytest.approx(ref.var(), abs=5 * se)
    assert abs(z.mean()) < 5 * np.sqrt(ref.var() / z.size)


def test_kstest_can_tell_a_plain_normal_from_a_truncated_one():
    z = torch.randn(20_000, generator=gen()).clamp(-1, 1).double().numpy()  # clipped, not redrawn
    assert scipy.stats.kstest(z, scipy.stats.truncnorm(-1, 1).cdf).pvalue < 1e-6


def test_truncated_normal_is_determined_by_the_generator():
    a, b = truncated_normal(8, 5, 0.5, gen(1)), truncated_normal(8, 5, 0.5, gen(1))
    assert torch.equal(a, b) and not torch.equal(a, truncated_normal(8, 5, 0.5, gen(2)))
    # A bound nothing exceeds redraws nothing: the plain normal draws.
    assert torch.equal(
        truncated_normal(8, 5, float("inf"), gen(3)), torch.randn(8, 5, generator=gen(3))
    )


@pytest.mark.parametrize("bound", [0.0, -1.0, 0.001, float("nan")])
def test_bad_bounds_are_config_errors(bound):
    with pytest.raises(ConfigError, match=r"at least 0\.01"):
        truncated_normal(2, 2, bound)


# ----------------------------------------------------------------------------- generator models

GENERATORS = [n for n in MODELS.names() if has_generator(tiny(n))]


def test_generator_models():
    assert {"gan", "dcgan", "wgan", "wgan_gp", "sngan", "cgan", "vae", "ae", "aae"} <= set(
        GENERATORS
    )
    assert "multvae" not in GENERATORS


@pytest.mark.parametrize("name", GENERATORS)
def test_sample_is_generate_of_normal_latents(name):
    """A bound no draw exceeds gives the model's own samples: ``sample`` is ``generate`` of
    N(0, I) noise drawn first from the generator."""
    model = tiny(name)
    expected = model.sample(5, generator=gen(7))
    assert torch.equal(sample_truncated(model, 5, None, generator=gen(7)), expected)
    torch.testing.assert_close(sample_truncated(model, 5, 1e6, generator=gen(7)), expected)
    assert model.training  # the mode is restored


@pytest.mark.parametrize("preset", ["tiny_vae_lognormal", "tiny_cvae"])
def test_vae_variants_sample_through_generate(preset):
    model = tiny("vae", preset)
    expected = model.sample(4, generator=gen(1))
    torch.testing.assert_close(sample_truncated(model, 4, 1e6, generator=gen(1)), expected)


def test_categorical_vae_maps_noise_to_uniform_one_hot_codes():
    model = tiny("vae", "tiny_vae_categorical")
    groups, k = model.cfg.categorical_dims, model.cfg.categories
    codes = model.family.from_noise(torch.randn(6000, model.latent_dim, generator=gen()))
    one_hot = codes.view(6000, groups, k)
    assert torch.equal(one_hot.sum(-1), torch.ones(6000, groups))
    counts = one_hot[:, 0].sum(0).numpy()  # the first group's classes: uniform
    assert scipy.stats.chisquare(counts).pvalue > 1e-3


def test_truncated_samples_use_bounded_latents():
    model = tiny("dcgan")
    got = sample_truncated(model, 6, 0.5, generator=gen(3))
    z = truncated_normal(6, model.latent_dim, 0.5, gen(3))
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(got, model.generate(z))
    assert not torch.allclose(
        got, model.generate(torch.randn(6, model.latent_dim, generator=gen(3)))
    )


def test_truncation_needs_a_latent_generator():
    with pytest.raises(ConfigError, match="generates from a latent"):
        sample_truncated(tiny("multvae"), 3, 0.5)


def test_conditional_truncated_samples_take_labels():
    model = tiny("cgan")
    labels = torch.full((4,), 6)
    got = sample_truncated(model, 4, 0.7, labels=labels, generator=gen())
    model.eval()
    with torch.no_grad():
        expected = model.generate(truncated_normal(4, model.latent_dim, 0.7, gen()), labels)
    torch.testing.assert_close(got, expected)


# ----------------------------------------------------------------------------- interpolation


def test_interpolation_rows_follow_slerp_between_two_latents():
    model = tiny("dcgan")
    rows, steps = 3, 5
    got = interpolation_rows(model, rows, steps, generator=gen(2))
    assert got.shape == (rows * steps, *model.spec.shape)
    z = torch.randn(2 * rows, model.latent_dim, generator=gen(2))
    model.eval()
    with torch.no_grad():
        ends = model.generate(torch.cat([z[:rows], z[rows:]]))
        mid = model.generate(slerp(z[:1], z[rows : rows + 1], torch.tensor([0.5]))[0])
    grid = got.view(rows, steps, *got.shape[1:])
    torch.testing.assert_close(grid[:, 0], ends[:rows])  # t = 0: the first latent
    torch.testing.assert_close(grid[:, -1], ends[rows:])  # t = 1: the second
    torch.testing.assert_close(grid[0, 2], mid[0])


def test_conditional_interpolation_keeps_one_label_per_row():
    model = tiny("cgan")
    got = interpolation_rows(model, 2, 3, labels=torch.tensor([4, 8]), generator=gen())
    z = torch.randn(4, model.latent_dim, generator=gen())
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(got[3], model.generate(z[1:2], torch.tensor([8]))[0])
        torch.testing.assert_close(got[5], model.generate(z[3:4], torch.tensor([8]))[0])


def test_interpolation_needs_two_steps():
    with pytest.raises(ConfigError, match="at least 2"):
        interpolation_rows(tiny("gan"), 2, 1)


# ----------------------------------------------------------------------------- class grids


@pytest.mark.parametrize(("name", "preset"), [("cgan", None), ("vae", "tiny_cvae")])
def test_class_grid_rows_are_classes_columns_share_a_latent(name, preset):
    model = tiny(name, preset)
    got = class_grid(model, 3, generator=gen(5))
    assert got.shape == (10 * 3, *model.spec.shape)
    z = torch.randn(3, model.latent_dim, generator=gen(5))
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(got[7 * 3 : 8 * 3], model.generate(z, torch.full((3,), 7)))


def test_class_grid_needs_a_class_conditional_model():
    with pytest.raises(ConfigError, match="class-conditional"):
        class_grid(tiny("dcgan"), 3)
