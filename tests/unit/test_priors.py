"""Latent priors against independent references: scipy's multivariate normal densities, the
closed-form means of a circle, and binomial / sampling-error tolerances for the samplers."""

import math

import numpy as np
import pytest
import scipy.stats
import torch

from genlab.losses.priors import (
    circle_means,
    gaussian_prior,
    mixture_log_prob,
    mixture_prior,
    sample_mixture,
    sample_standard_normal,
    standard_normal_log_prob,
)


def test_circle_means_by_hand():
    m = circle_means(4, 3, 2.0)
    expected = torch.tensor([[2.0, 0, 0], [0, 2.0, 0], [-2.0, 0, 0], [0, -2.0, 0]])
    assert torch.allclose(m, expected, atol=1e-6)
    with pytest.raises(ValueError):
        circle_means(10, 1, 1.0)


def test_standard_normal_log_prob_matches_scipy():
    z = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = scipy.stats.multivariate_normal(np.zeros(3), np.eye(3)).logpdf(z.numpy())
    np.testing.assert_allclose(standard_normal_log_prob(z).numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("dim", [2, 5])
def test_mixture_log_prob_matches_scipy(dim):
    k, radius, std = 10, 4.0, 0.5
    means = circle_means(k, dim, radius).double()
    gen = torch.Generator().manual_seed(1)
    z = 3.0 * torch.randn(200, dim, generator=gen, dtype=torch.float64)
    comps = [scipy.stats.multivariate_normal(m, std**2 * np.eye(dim)) for m in means.numpy()]
    # log of the average density, in probability form (no logsumexp), as the reference.
    dens = np.mean([c.pdf(z.numpy()) for c in comps], axis=0)
    ok = dens > 1e-250  # far from every mean the pdf underflows; compare where it does not
    got = mixture_log_prob(z, means, std).numpy()
    np.testing.assert_allclose(got[ok], np.log(dens[ok]), rtol=1e-9)
    assert ok.sum() > 100


def test_mixture_log_prob_is_finite_far_away():
    means = circle_means(10, 2, 4.0)
    logp = mixture_log_prob(torch.tensor([[1e3, -1e3]]), means, 0.5)
    assert torch.isfinite(logp).all() and logp.item() < -1e6


def test_mixture_sampler_components_means_and_stds():
    n, k, dim, radius, std = 40_000, 10, 3, 4.0, 0.5
    means = circle_means(k, dim, radius)
    z, comp = sample_mixture(n, means, std, generator=torch.Generator().manual_seed(0))
    assert z.shape == (n, dim) and comp.shape == (n,)
    counts = torch.bincount(comp, minlength=k).numpy()
    # Uniform components: each count ~ Binomial(n, 1/k); 5 standard deviations.
    sd = math.sqrt(n * (1 / k) * (1 - 1 / k))
    assert np.all(np.abs(counts - n / k) < 5 * sd), counts
    for j in range(k):
        zj = z[comp == j].double()
        m = len(zj)
        # Sample mean within 5 standard errors, sample std within 5 of its standard errors.
        assert torch.all((zj.mean(0) - means[j]).abs() < 5 * std / math.sqrt(m))
        assert torch.all((zj.std(0) - std).abs() < 5 * std / math.sqrt(2 * (m - 1)))


def test_samplers_are_determined_by_the_generator():
    means = circle_means(10, 2, 4.0)
    draw = lambda s: sample_mixture(8, means, 0.5, generator=torch.Generator().manual_seed(s))  # noqa: E731
    assert torch.equal(draw(3)[0], draw(3)[0]) and not torch.equal(draw(3)[0], draw(4)[0])
    a = sample_standard_normal(5, 4, generator=torch.Generator().manual_seed(3))
    b = sample_standard_normal(5, 4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (5, 4)


def test_prior_objects_bind_their_parameters():
    mix = mixture_prior(2, 10, 4.0, 0.5)
    z = mix.sample(6, generator=torch.Generator().manual_seed(0))
    assert z.shape == (6, 2)
    assert torch.allclose(mix.log_prob(z), mixture_log_prob(z, circle_means(10, 2, 4.0), 0.5))
    gauss = gaussian_prior(3)
    assert torch.equal(
        gauss.log_prob(torch.zeros(1, 3)), standard_normal_log_prob(torch.zeros(1, 3))
    )
    # Samples of a well-separated mixture sit where it has mass: mean log p close to the entropy
    # bound -H = -(log K + d/2 log(2 pi e s^2)).
    many = mix.sample(20_000, generator=torch.Generator().manual_seed(1))
    neg_entropy = -(math.log(10) + math.log(2 * math.pi * math.e * 0.25))
    assert mix.log_prob(many).mean().item() == pytest.approx(neg_entropy, abs=0.05)
