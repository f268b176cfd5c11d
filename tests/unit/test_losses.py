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


# ----------------------------------------------------------------------------- literal values
# Every pair on logits / scores (real, fake) = (0, 0) and (1, -1), worked out by hand:
# softplus(0) = log 2; softplus(-1) = log(1 + e^-1), softplus(1) = log(1 + e).
LOG2, SP_NEG1, SP_POS1 = np.log(2.0), np.log1p(np.exp(-1.0)), np.log1p(np.e)
HAND = {
    # name: ((d at 0, 0), (g at fake 0), (d at 1, -1), (g at fake -1))
    "minimax": (2 * LOG2, -LOG2, 2 * SP_NEG1, -SP_NEG1),
    "nonsaturating": (2 * LOG2, LOG2, 2 * SP_NEG1, SP_POS1),
    "wasserstein": (0.0, 0.0, -2.0, 1.0),
    "hinge": (2.0, 0.0, 0.0, 1.0),
    "least_squares": (0.5, 0.5, 0.5, 2.0),
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL_LOSSES))
def test_adversarial_pair_literal_values(name):
    assert set(HAND) == set(ADVERSARIAL_LOSSES)
    pair, (d0, g0, d1, g1) = ADVERSARIAL_LOSSES[name], HAND[name]
    zero, one, minus = torch.zeros(2), torch.ones(2), -torch.ones(2)
    assert pair.d(zero, zero).item() == pytest.approx(d0, abs=1e-6)
    assert pair.g(zero).item() == pytest.approx(g0, abs=1e-6)
    assert pair.d(one, minus).item() == pytest.approx(d1, abs=1e-6)
    assert pair.g(minus).item() == pytest.approx(g1, abs=1e-6)


# ----------------------------------------------------------------------------- soft BCE targets


def test_soft_bce_matches_numpy_cross_entropy():
    from genlab.losses.adversarial import d_bce_soft

    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=6) * 3, rng.normal(size=5) * 3
    t_real, t_fake = rng.uniform(size=6), rng.uniform(size=5)

    def xent(logit, t):  # -t log D - (1 - t) log(1 - D), in probabilities
        d = sigmoid(logit)
        return np.mean(-t * np.log(d) - (1 - t) * np.log(1 - d))

    expected = xent(real, t_real) + xent(fake, t_fake)
    got = d_bce_soft(*(torch.tensor(a) for a in (real, fake, t_real, t_fake)))
    assert got.item() == pytest.approx(expected, rel=1e-10)
    # Hard targets 1 / 0 give the plain BCE discriminator loss.
    r, f = torch.tensor(real), torch.tensor(fake)
    hard = d_bce_soft(r, f, torch.ones(6, dtype=r.dtype), torch.zeros(5, dtype=r.dtype))
    assert hard.item() == pytest.approx(ADVERSARIAL_LOSSES["minimax"].d(r, f).item(), rel=1e-12)


def test_only_bce_pairs_take_targets():
    with_targets = {k for k, v in ADVERSARIAL_LOSSES.items() if v.d_soft is not None}
    assert with_targets == {"minimax", "nonsaturating"}


def test_discriminator_targets_smoothing_and_flips():
    from genlab.losses.adversarial import discriminator_targets

    t_real, t_fake = discriminator_targets(4, 3, real_label=0.9)
    assert t_real.tolist() == pytest.approx([0.9] * 4) and t_fake.tolist() == [0.0] * 3
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    n = 20_000
    t_real, t_fake = discriminator_targets(n, n, 0.9, 0.2, generator=gen())
    again = discriminator_targets(n, n, 0.9, 0.2, generator=gen())
    assert torch.equal(t_real, again[0]) and torch.equal(t_fake, again[1])
    assert ((t_real == 0) | torch.isclose(t_real, torch.tensor(0.9))).all()
    # A flipped real gets 0, a flipped fake the real target; each with probability 0.2
    # (binomial std of the share: sqrt(0.2 * 0.8 / n) = 0.0028; 5 std tolerance).
    assert (t_real == 0).float().mean().item() == pytest.approx(0.2, abs=0.015)
    assert (t_fake > 0).float().mean().item() == pytest.approx(0.2, abs=0.015)


# ----------------------------------------------------------------------------- gradient penalty


def test_gradient_penalty_of_a_linear_critic_is_closed_form():
    from genlab.losses.penalties import gradient_penalty

    # f(x) = w . x has gradient w everywhere, so the penalty is (||w|| - 1)^2 for any points.
    w = torch.tensor([[3.0, -4.0], [0.0, 12.0]], dtype=torch.float64)  # ||w||_F = 13
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = (
        torch.randn(5, 2, 2, dtype=torch.float64),
        torch.randn(5, 2, 2, dtype=torch.float64),
    )
    gp = gradient_penalty(critic, real, fake, torch.rand(5, dtype=torch.float64))
    assert gp.item() == pytest.approx((13.0 - 1.0) ** 2, rel=1e-12)


def test_interpolates_are_per_sample():
    from genlab.losses.penalties import interpolates

    real, fake = torch.ones(3, 1, 2, 2), torch.zeros(3, 1, 2, 2)
    x = interpolates(real, fake, torch.tensor([1.0, 0.0, 0.25]))
    assert x.shape == real.shape
    assert x[0].eq(1).all() and x[1].eq(0).all() and x[2].eq(0.25).all()


def test_gradient_penalty_matches_finite_differences():
    from genlab.losses.penalties import gradient_penalty

    torch.manual_seed(0)
    a, v = torch.randn(3, 4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    critic = lambda x: torch.tanh(x @ a) @ v  # noqa: E731  (B, 3) -> (B,), nonlinear
    real, fake = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    eps = torch.rand(6, dtype=torch.float64)
    x_hat = (eps[:, None] * real + (1 - eps[:, None]) * fake).numpy()
    f = lambda x: np.tanh(x @ a.numpy()) @ v.numpy()  # noqa: E731  numpy, per row
    h, grads = 1e-6, np.zeros_like(x_hat)
    for j in range(3):  # central differences, coordinate by coordinate
        step = np.zeros(3)
        step[j] = h
        grads[:, j] = (f(x_hat + step) - f(x_hat - step)) / (2 * h)
    expected = np.mean((np.linalg.norm(grads, axis=1) - 1) ** 2)
    assert gradient_penalty(critic, real, fake, eps).item() == pytest.approx(expected, rel=1e-7)


def test_gradient_penalty_trains_the_critic():
    """The penalty's gradient w.r.t. the critic's weights (double backprop) against numerical
    differentiation (torch.autograd.gradcheck)."""
    from genlab.losses.penalties import gradient_penalty

    torch.manual_seed(1)
    real, fake = torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    eps = torch.rand(3, dtype=torch.float64)

    def penalty(a):
        return gradient_penalty(lambda x: torch.tanh(x @ a).sum(1), real, fake, eps)

    a = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(penalty, (a,))
