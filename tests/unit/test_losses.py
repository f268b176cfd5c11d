"""Loss math against independent references: probability-form formulas in numpy, scipy's
distributions, torch.distributions and numerical integration."""

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import torch

from genlab.losses.adversarial import ADVERSARIAL_LOSSES
from genlab.losses.likelihood import bernoulli_nll, gaussian_kl_std_normal, gaussian_nll

REAL = np.array([0.0, 2.0, -0.5])
FAKE = np.array([-1.0, 1.0, 0.25])


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# Each reference is written in the papers' probability form, not the softplus form we use.
EXPECTED = {
    "minimax": (
        np.mean(-np.log(sigmoid(REAL))) + np.mean(-np.log(1 - sigmoid(FAKE))),
        np.mean(np.log(1 - sigmoid(FAKE))),
    ),
    "nonsaturating": (
        np.mean(-np.log(sigmoid(REAL))) + np.mean(-np.log(1 - sigmoid(FAKE))),
        np.mean(-np.log(sigmoid(FAKE))),
    ),
    "wasserstein": (FAKE.mean() - REAL.mean(), -FAKE.mean()),
    "hinge": (
        np.mean(np.maximum(0, 1 - REAL)) + np.mean(np.maximum(0, 1 + FAKE)),
        -FAKE.mean(),
    ),
    "least_squares": (
        0.5 * np.mean((REAL - 1) ** 2) + 0.5 * np.mean(FAKE**2),
        0.5 * np.mean((FAKE - 1) ** 2),
    ),
}


def test_every_loss_has_a_reference():
    assert set(EXPECTED) == set(ADVERSARIAL_LOSSES)


@pytest.mark.parametrize("name", sorted(ADVERSARIAL_LOSSES))
def test_adversarial_pair_matches_hand_computed(name):
    pair = ADVERSARIAL_LOSSES[name]
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    d_expected, g_expected = EXPECTED[name]
    assert pair.d(real, fake).item() == pytest.approx(d_expected, rel=1e-12)
    assert pair.g(fake).item() == pytest.approx(g_expected, rel=1e-12)


def test_hand_values_for_hinge():
    # relu(1-0)=1, relu(1-2)=0, relu(1.5)=1.5 -> 2.5/3; relu(0)=0, relu(2)=2, relu(1.25) -> 3.25/3
    assert ADVERSARIAL_LOSSES["hinge"].d(torch.tensor(REAL), torch.tensor(FAKE)).item() == (
        pytest.approx(2.5 / 3 + 3.25 / 3)
    )


def test_bce_losses_stable_for_large_logits():
    big = torch.tensor([80.0, -80.0], dtype=torch.float32)
    for name in ("minimax", "nonsaturating"):
        pair = ADVERSARIAL_LOSSES[name]
        assert torch.isfinite(pair.d(big, big)) and torch.isfinite(pair.g(big))


def test_bernoulli_nll_matches_scipy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 1, 3, 3))
    target = rng.integers(0, 2, size=(4, 1, 3, 3)).astype(float)
    expected = -scipy.stats.bernoulli.logpmf(target, sigmoid(logits)).reshape(4, -1).sum(1)
    got = bernoulli_nll(torch.tensor(logits), torch.tensor(target))
    assert got.shape == (4,)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)


def test_gaussian_nll_matches_scipy():
    rng = np.random.default_rng(1)
    mean, target = rng.normal(size=(3, 2, 4, 4)), rng.normal(size=(3, 2, 4, 4))
    log_sigma = np.log(0.3)
    expected = -scipy.stats.norm.logpdf(target, mean, 0.3).reshape(3, -1).sum(1)
    got = gaussian_nll(torch.tensor(mean), torch.tensor(target), torch.tensor(log_sigma))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)


def test_gaussian_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(5, 7, dtype=torch.float64), torch.randn(5, 7, dtype=torch.float64)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(q, p).sum(1)
    torch.testing.assert_close(gaussian_kl_std_normal(mu, logvar), expected)


def test_gaussian_kl_matches_numerical_integral():
    mu, sigma = 0.7, 0.4
    q, p = scipy.stats.norm(mu, sigma), scipy.stats.norm(0, 1)
    integral, _ = scipy.integrate.quad(lambda x: q.pdf(x) * (q.logpdf(x) - p.logpdf(x)), -10, 10)
    mu_t = torch.tensor([[mu]], dtype=torch.float64)
    got = gaussian_kl_std_normal(mu_t, torch.tensor([[2 * np.log(sigma)]], dtype=torch.float64))
    assert got.item() == pytest.approx(integral, rel=1e-8)
