"""VAE latent math against independent references: torch.distributions and scipy densities,
Monte Carlo, brute-force sums, F.gumbel_softmax, and exact marginal likelihoods (a linear-Gaussian
model in closed form, a small categorical model by enumerating every latent configuration)."""

import itertools
import math

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch
import torch.nn.functional as F
from torch import distributions as D

from genlab.core.config import build_config
from genlab.data import load_data
from genlab.data.pixels import to_model
from genlab.losses import latent as L
from genlab.losses.likelihood import gaussian_kl_std_normal, log_mean_exp
from genlab.models import build_model

f64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def chi2_pvalue(counts: np.ndarray, probs: np.ndarray) -> float:
    return float(scipy.stats.chisquare(counts, probs * counts.sum()).pvalue)


# ----------------------------------------------------------------------------- densities, KL


def test_gaussian_and_lognormal_log_probs_match_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(4, 3, dtype=f64), torch.randn(4, 3, dtype=f64)
    std = (0.5 * logvar).exp()
    u = torch.randn(4, 3, dtype=f64)
    expected = D.Normal(mu, std).log_prob(u).sum(1)
    torch.testing.assert_close(L.gaussian_log_prob(u, mu, logvar), expected)
    torch.testing.assert_close(L.std_normal_log_prob(u), D.Normal(0.0, 1.0).log_prob(u).sum(1))
    z = u.exp()
    torch.testing.assert_close(
        L.lognormal_log_prob(z, mu, logvar), D.LogNormal(mu, std).log_prob(z).sum(1)
    )
    torch.testing.assert_close(
        L.std_lognormal_log_prob(z), D.LogNormal(0.0, 1.0).log_prob(z).sum(1)
    )


def test_lognormal_kl_matches_a_monte_carlo_estimate():
    # KL(q || p) = E_q[log q(z) - log p(z)], estimated with torch's own log-normal sampler and
    # densities (Jacobians included): an independent route to the closed form we use.
    mu = torch.tensor([[0.7, -0.4, 0.0]], dtype=f64)
    logvar = torch.tensor([[-1.0, 0.5, 0.0]], dtype=f64)
    q, p = D.LogNormal(mu, (0.5 * logvar).exp()), D.LogNormal(0.0, 1.0)
    torch.manual_seed(0)
    z = q.sample((200_000,))  # (N, 1, 3)
    terms = (q.log_prob(z) - p.log_prob(z)).sum(-1).squeeze(1)
    mc, se = terms.mean().item(), terms.std().item() / math.sqrt(len(terms))
    assert L.lognormal_kl_std(mu, logvar).item() == pytest.approx(mc, abs=4 * se)
    assert se < 0.01  # the tolerance is tight enough to matter


# ----------------------------------------------------------------------------- Gumbel-Softmax

LOGITS = torch.tensor([1.5, 0.2, -1.0, 0.7, -0.3], dtype=f64)


def test_relaxed_sample_argmax_follows_softmax_of_the_logits():
    y = L.gumbel_softmax(LOGITS.expand(40_000, 5), 0.7, generator=gen(1))
    counts = np.bincount(y.argmax(-1).numpy(), minlength=5)
    assert chi2_pvalue(counts, torch.softmax(LOGITS, 0).numpy()) > 1e-3
    # The test has power: the same counts reject a slightly different distribution.
    assert chi2_pvalue(counts, torch.softmax(LOGITS * 1.1, 0).numpy()) < 1e-6


def test_exact_categorical_sample_follows_softmax():
    z = L.categorical_sample(LOGITS.expand(40_000, 5), gen(2))
    assert set(z.unique().tolist()) == {0.0, 1.0} and (z.sum(-1) == 1).all()
    counts = z.sum(0).numpy()
    assert chi2_pvalue(counts, torch.softmax(LOGITS, 0).numpy()) > 1e-3


def test_relaxed_samples_match_torch_gumbel_softmax_in_distribution():
    n = 40_000
    ours = L.gumbel_softmax(LOGITS.expand(n, 5), 0.5, generator=gen(3))
    torch.manual_seed(3)
    ref = F.gumbel_softmax(LOGITS.expand(n, 5), tau=0.5)
    for stat in (
        lambda y: y.mean(0),
        lambda y: y.pow(2).mean(0),
        lambda y: y.max(-1).values.mean(),
    ):
        a, b = stat(ours), stat(ref)
        torch.testing.assert_close(a, b, atol=0.01, rtol=0)


def test_relaxed_samples_lie_on_the_simplex_and_sharpen_with_lower_temperature():
    logits = torch.randn(500, 4, 6, generator=gen(4), dtype=f64)
    mean_max = []
    for tau in (5.0, 1.0, 0.1):
        y = L.gumbel_softmax(logits, tau, generator=gen(5))
        assert y.shape == logits.shape and (y >= 0).all()
        torch.testing.assert_close(y.sum(-1), torch.ones(500, 4, dtype=f64))
        mean_max.append(y.max(-1).values.mean().item())
    assert mean_max[0] < mean_max[1] < mean_max[2] and mean_max[2] > 0.95


def test_straight_through_is_one_hot_forward_with_the_relaxed_gradient():
    logits = torch.randn(3, 2, 4, generator=gen(6), dtype=f64, requires_grad=True)
    hard = L.gumbel_softmax(logits, 0.8, hard=True, generator=gen(7))
    soft = L.gumbel_softmax(logits, 0.8, generator=gen(7))
    assert ((hard == 0) | (hard == 1)).all() and (hard.sum(-1) == 1).all()
    assert torch.equal(hard.argmax(-1), soft.argmax(-1))
    w = torch.randn(3, 2, 4, generator=gen(8), dtype=f64)
    (g_hard,) = torch.autograd.grad((hard * w).sum(), logits)
    (g_soft,) = torch.autograd.grad((soft * w).sum(), logits)
    torch.testing.assert_close(g_hard, g_soft)


@pytest.mark.parametrize(
    ("step", "expected"), [(0, 1.0), (10_000, 0.7408182), (20_000, 0.5488116), (30_000, 0.5)]
)
def test_temperature_schedule(step, expected):
    # Jang et al.'s schedule with their values: max(0.5, exp(-3e-5 * step)), by hand.
    assert L.gumbel_temperature(step) == pytest.approx(expected, rel=1e-6)


def test_categorical_kl_matches_a_brute_force_sum_and_is_zero_for_uniform():
    logits = torch.randn(3, 4, 5, generator=gen(9), dtype=f64)
    q = scipy.special.softmax(logits.numpy(), axis=-1)
    brute = [
        sum(q[b, g, k] * math.log(q[b, g, k] * 5) for g in range(4) for k in range(5))
        for b in range(3)
    ]
    np.testing.assert_allclose(L.categorical_kl_uniform(logits).numpy(), brute, rtol=1e-12)
    flat = torch.full((2, 4, 5), 0.3, dtype=f64)  # equal logits: q uniform
    torch.testing.assert_close(L.categorical_kl_uniform(flat), torch.zeros(2, dtype=f64))


def test_categorical_log_probs_match_torch_distributions():
    logits = torch.randn(6, 3, 4, generator=gen(10), dtype=f64)
    z = L.categorical_sample(logits, gen(11))
    expected = D.OneHotCategorical(logits=logits).log_prob(z).sum(1)
    torch.testing.assert_close(L.categorical_log_prob(z, logits), expected)
    uniform = D.OneHotCategorical(logits=torch.zeros(6, 3, 4, dtype=f64)).log_prob(z).sum(1)
    torch.testing.assert_close(L.uniform_categorical_log_prob(z), uniform)
    prior = L.uniform_categorical_sample(20_000, 1, 4, gen(12), logits)
    assert chi2_pvalue(prior.sum((0, 1)).numpy(), np.full(4, 0.25)) > 1e-3


def test_log_mean_exp_matches_scipy():
    t = torch.randn(7, 3, generator=gen(13), dtype=f64) * 50
    expected = scipy.special.logsumexp(t.numpy(), axis=0) - math.log(7)
    np.testing.assert_allclose(log_mean_exp(t).numpy(), expected, rtol=1e-12)


# ----------------------------------------------------------------------------- importance weights


def tiny_model(**overrides):
    """A float64 MLP VAE on 8x8 digits (cheap enough for thousands of samples per image)."""
    base = {"data.image_size": 8, "model.arch": "mlp", "model.hidden": [32]}
    cfg = build_config("vae", preset="tiny_vae", overrides={**base, **overrides})
    data = load_data(cfg.data)
    torch.manual_seed(0)
    model = build_model(cfg.model, data.spec).double().eval()
    return model, to_model(data.test.x[:6], f64)


@pytest.mark.parametrize("posterior", ["gaussian", "lognormal", "categorical"])
def test_mean_log_weight_is_the_analytic_elbo(posterior):
    """E_q[log w] = E_q[log p(x|z)] - KL: with the same z, the mean of log p(z) - log q(z|x)
    must tend to minus the closed-form KL (Jacobians included for the log-normal)."""
    model, x = tiny_model(**{"model.posterior": posterior, "model.categorical_dims": 3})
    with torch.no_grad():
        model.encoder[1][-1].weight.mul_(5.0)  # a posterior far from the prior
    t = model.log_importance_terms(x, 2000, generator=gen(14))
    w = model.log_importance_weights(x, 2000, generator=gen(14))
    torch.testing.assert_close(w, t["log_px_z"] + t["log_pz"] - t["log_qz"])
    with torch.no_grad():
        kl = model.family.kl(model.posterior(x))
    elbo = t["log_px_z"].mean(0) - kl
    log_ratio = t["log_pz"] - t["log_qz"]
    se = log_ratio.std(0) / math.sqrt(len(log_ratio))
    assert ((w.mean(0) - elbo).abs() <= 4 * se).all()
    assert (kl > 0.5).all() and (se < 0.1 * kl).all()  # a KL worth checking, a tight tolerance


def test_importance_weights_are_chunked_and_gradient_free():
    model, x = tiny_model()
    rows = []
    model.decoder.register_forward_hook(lambda m, i, o: rows.append(len(i[0])))
    w = model.log_importance_weights(x, 1000, generator=gen(15), max_rows=600)
    assert w.shape == (1000, 6) and not w.requires_grad and torch.isfinite(w).all()
    assert max(rows) <= 600 and sum(rows) == 6000


def linear_gaussian(sigma: float = 0.4, scales=(1.5, 0.8)):
    """8x8 digits, z in R^2, x = W z + b + sigma * noise with orthogonal columns of W, so the
    exact posterior N(A (x - b), S) is diagonal: S = diag(1 / (1 + a_j^2 / sigma^2)),
    A = S W^T / sigma^2. Returns the model (encoder set to that posterior), W, b, S, A, x."""
    cfg = build_config(
        "vae",
        overrides={
            "model.arch": "mlp",
            "model.hidden": [],
            "model.latent_dim": 2,
            "model.likelihood": "gaussian",
            "model.sigma": sigma,
        },
    )
    data = load_data(cfg.data)
    model = build_model(cfg.model, data.spec).double().eval()
    q, _ = torch.linalg.qr(torch.randn(64, 2, generator=gen(16), dtype=f64))
    w = q * torch.tensor(scales, dtype=f64)
    x = to_model(data.test.x[:8], f64)
    b = to_model(data.train.x, f64).flatten(1).mean(0)
    s = 1.0 / (1.0 + w.pow(2).sum(0) / sigma**2)  # (2,)
    a = s[:, None] * w.T / sigma**2  # (2, 64)
    dec, enc = model.decoder[0][0], model.encoder[1][0]
    with torch.no_grad():
        dec.weight.copy_(w), dec.bias.copy_(b)
        enc.weight.zero_(), enc.weight[:2].copy_(a)
        enc.bias.copy_(torch.cat([-a @ b, s.log()]))
    exact = scipy.stats.multivariate_normal(b.numpy(), (w @ w.T).numpy() + sigma**2 * np.eye(64))
    return model, x, w, b, s, exact.logpdf(x.flatten(1).numpy())


def test_linear_gaussian_with_the_exact_posterior_has_constant_weights():
    model, x, *_, log_px = linear_gaussian()
    w = model.log_importance_weights(x, 50, generator=gen(17))
    np.testing.assert_allclose(w.numpy(), np.broadcast_to(log_px, (50, 8)), atol=1e-8)


def test_linear_gaussian_iwae_climbs_to_the_exact_marginal_likelihood():
    sigma = 0.4
    model, x, w, b, s, log_px = linear_gaussian(sigma)
    enc = model.encoder[1][0]
    with torch.no_grad():  # a worse posterior: means shifted, variances doubled
        enc.bias[:2] += 0.5 * s.sqrt()
        enc.bias[2:] += math.log(2.0)
    logw = model.log_importance_weights(x, 10_000, generator=gen(18))  # (k, B)
    # Closed-form ELBO of the linear-Gaussian model for the (diagonal) posterior the encoder gives.
    with torch.no_grad():
        p = model.posterior(x)
    mu, var = p["mu"], p["logvar"].exp()
    resid = (x.flatten(1) - mu @ w.T - b).pow(2).sum(1) + (var * w.pow(2).sum(0)).sum(1)
    recon = -0.5 * resid / sigma**2 - 64 * (math.log(sigma) + 0.5 * math.log(2 * math.pi))
    elbo = (recon - gaussian_kl_std_normal(mu, p["logvar"])).numpy()
    se = (logw.std(0) / math.sqrt(len(logw))).numpy()
    np.testing.assert_array_less(np.abs(logw.mean(0).numpy() - elbo), 4 * se)
    bounds = [log_mean_exp(logw.view(-1, k, 8), dim=1).mean(0).numpy() for k in (1, 10, 100, 1000)]
    gaps = [log_px - bound for bound in bounds]
    assert (gaps[0] > 0.3).all()  # the ELBO is clearly loose here
    for loose, tight in itertools.pairwise(gaps):
        assert (tight < loose).all()
    # k = 1000: within Monte Carlo error of the exact value (only 10 groups of 1000 per image).
    assert abs(gaps[-1].mean()) < 0.01 and (np.abs(gaps[-1]) < 0.03).all()


def test_categorical_iwae_reaches_the_exact_likelihood_by_enumeration():
    model, x = tiny_model(
        **{
            "model.posterior": "categorical",
            "model.categorical_dims": 2,
            "model.categories": 3,
        }
    )
    with torch.no_grad():
        for layer in (model.encoder[1][-1], model.decoder[0][-1]):
            layer.weight.mul_(4.0)  # a peaked posterior and decoder: weights that vary
        logits = model.posterior(x)["logits"]  # (B, 2, 3)
        configs = list(itertools.product(range(3), repeat=2))
        log_joint, log_q = [], []
        for c in configs:
            z = F.one_hot(torch.tensor(c), 3).to(f64).flatten()[None].expand(len(x), -1)
            log_px_z = -model.nll(model.decoder(z), x)
            log_joint.append(log_px_z - 2 * math.log(3))
            log_q.append(sum(torch.log_softmax(logits[:, g], -1)[:, c[g]] for g in range(2)))
    log_joint, log_q = torch.stack(log_joint), torch.stack(log_q)  # (9, B)
    exact = torch.logsumexp(log_joint, 0)
    exact_elbo = (log_q.exp() * (log_joint - log_q)).sum(0)
    logw = model.log_importance_weights(x, 10_000, generator=gen(19))
    se = logw.std(0) / math.sqrt(len(logw))
    assert ((logw.mean(0) - exact_elbo).abs() < 4 * se).all()
    assert ((exact - exact_elbo) > 0.1).all()  # the posterior is not exact
    torch.testing.assert_close(log_mean_exp(logw), exact, atol=0.03, rtol=0)
