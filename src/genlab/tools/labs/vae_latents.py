"""Lab ``vae-latents``: what the KL term does to a VAE's latent space.

Three posterior families of ``genlab.models.vae`` (the ``vae``, ``vae_lognormal`` and
``vae_categorical`` presets: Normal, log-normal and Gumbel-Softmax categorical, Jang, Gu & Poole
2017, arXiv:1611.01144) are trained on 16x16 ``digits`` with the same MLP encoder and decoder;
the Normal VAE also over a sweep of beta, the weight of the KL term (beta-VAE, Higgins et al.
2017, ICLR, "beta-VAE: Learning Basic Visual Concepts with a Constrained Variational
Framework"). Each is scored with

- the test ELBO (the library's ``elbo`` metric: the mean of k log importance weights, which is
  the ELBO at beta = 1 whatever beta the model was trained with) and the mean KL term;
- active units (Burda, Grosse & Salakhutdinov 2016, arXiv:1509.00519, Sec. 5.2): unit u is
  active when A_u = Var_x(E_q[z_u | x]) > 0.01; for the categorical family a group is active
  when the summed variance of its class probabilities is;
- the aggregate posterior q(z) = E_x q(z|x) against the prior: the KL of its moment-matched
  Gaussian to N(0, I) (of log z for the log-normal family, which is the same KL as of z since
  exp is a bijection; per-group marginals against the uniform for the categorical one) and the
  library's unbiased polynomial-kernel MMD^2 (``genlab.metrics.stats.mmd2_unbiased``).

The adversarial autoencoder (``aae``, Makhzani et al. 2016, arXiv:1511.05644) on the same data
replaces the per-image KL by a GAN in latent space, a Jensen-Shannon-like divergence between
q(z) and p(z); its codes are compared with those of the beta = 0 VAE, an autoencoder whose
latent space nothing pulls towards the prior.

Two inequalities tie the numbers together. For a Gaussian p the moment-matched Gaussian q_G of
any q has KL(q || p) = KL(q_G || p) + H(q_G) - H(q) >= KL(q_G || p) (E_q log p depends on two
moments only; the Gaussian has the largest entropy for its covariance), and
E_x KL(q(z|x) || p) = I_q(x; z) + KL(q(z) || p) (Hoffman & Johnson 2016, "ELBO surgery"), so the
Gaussian-fit aggregate KL is at most the mean KL term. The same chain holds per group for the
categorical family (a product prior: the joint KL is the marginals' plus a total correlation).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import distributions as D

from genlab.core.config import build_config
from genlab.data.base import load_data
from genlab.data.pixels import to_model, to_unit
from genlab.losses.likelihood import bernoulli_nll
from genlab.metrics.base import EvalContext
from genlab.metrics.likelihood import elbo as elbo_metric
from genlab.metrics.stats import mmd2_unbiased
from genlab.models.base import build_model, evaluating
from genlab.models.sampling import pyplot
from genlab.tools.labs.base import LabContext, LabOutput, at_least, at_most, close, register_lab

ACTIVE = 0.01  # Burda et al.'s threshold on Var_x(E_q[z|x])
FAMILIES = {"lognormal": "vae_lognormal", "categorical": "vae_categorical"}


# ----------------------------------------------------------------------------- measures


def unit_activity(codes: torch.Tensor) -> torch.Tensor:
    """A_u = Var_x(E_q[z_u | x]) over the rows of ``codes`` (N, d), the population variance."""
    return codes.double().var(0, correction=0)


def active_units(codes: torch.Tensor, threshold: float = ACTIVE) -> int:
    return int((unit_activity(codes) > threshold).sum())


def gaussian_fit_kl(z: torch.Tensor) -> float:
    """KL(N(m, S) || N(0, I)) of the Gaussian fitted to the rows of z (N, d):
    1/2 (tr S + m.m - d - log det S), float64."""
    z = z.double()
    m, s = z.mean(0), torch.cov(z.T, correction=0).reshape(z.shape[1], z.shape[1])
    return 0.5 * float(torch.trace(s) + m @ m - z.shape[1] - torch.logdet(s))


def marginal_kl_uniform(probs: torch.Tensor) -> float:
    """sum_g KL(mean_x q_g || uniform) for class probabilities (N, G, K): the aggregate
    posterior's per-group marginals against the uniform prior."""
    q = probs.double().mean(0)
    return float((q * (q.clamp_min(1e-300).log() + math.log(q.shape[-1]))).sum())


def bernoulli_baseline(train_x: torch.Tensor, test_x: torch.Tensor) -> float:
    """Mean test log-likelihood, nats/image, of independent Bernoulli pixels with the training
    mean: the best a decoder that ignores z can do, so the ELBO of a fully collapsed VAE."""
    p = to_unit(train_x).mean(0, keepdim=True).clamp(1e-6, 1 - 1e-6)
    target = to_unit(test_x)
    nll = F.binary_cross_entropy(p.expand_as(target), target, reduction="none")
    return -float(nll.flatten(1).sum(1).mean())


def exact_checks(seed: int, spec) -> tuple[list, dict]:
    """The library's KL terms against torch.distributions (float64), the active-unit count of
    hand-built codes against their known variances, and the Gaussian-fit KL against torch."""
    g = torch.Generator().manual_seed(seed)
    mu = 2 * torch.randn(64, 8, generator=g, dtype=torch.float64)
    logvar = 3 * torch.randn(64, 8, generator=g, dtype=torch.float64)
    normal = D.Normal(mu, (0.5 * logvar).exp())
    ref = D.kl_divergence(normal, D.Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(1)
    closed = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
    from_model = {}  # the posterior families as the VAE builds them from its presets
    for name, preset in (("gaussian", "vae"), *FAMILIES.items()):
        cfg = build_config(preset=preset, data="digits", overrides={"model.arch": "mlp"})
        from_model[name] = build_model(cfg.model, spec).family
    err_g = (from_model["gaussian"].kl({"mu": mu, "logvar": logvar}) - ref).abs().max()
    err_closed = (closed - ref).abs().max()
    # KL is invariant under the bijection exp: the log-normal KL is the normals' KL.
    err_ln = (from_model["lognormal"].kl({"mu": mu, "logvar": logvar}) - ref).abs().max()
    cat = from_model["categorical"]
    logits = 3 * torch.randn(64, cat.groups, cat.k, generator=g, dtype=torch.float64)
    uniform = D.Categorical(probs=torch.full_like(logits, 1.0 / cat.k))
    ref_cat = D.kl_divergence(D.Categorical(logits=logits), uniform).sum(1)
    err_cat = (cat.kl({"logits": logits}) - ref_cat).abs().max()
    # Hand-built codes: column u is c_u + sqrt(v_u) * (+1, -1, +1, ...), population variance v_u
    # exactly; three of the six lie above the threshold, none near it.
    v = torch.tensor([1.0, 0.25, 0.04, 0.0025, 0.0, 1e-4], dtype=torch.float64)
    signs = torch.tensor([1.0, -1.0], dtype=torch.float64).repeat(500)[:, None]
    codes = torch.arange(6, dtype=torch.float64) + v.sqrt() * signs
    err_var = (unit_activity(codes) - v).abs().max()
    # The Gaussian-fit KL against torch's multivariate-normal KL of the same fit.
    z = torch.randn(2000, 4, generator=g, dtype=torch.float64) @ torch.randn(
        4, 4, generator=g, dtype=torch.float64
    )
    z = z + torch.randn(4, generator=g, dtype=torch.float64)
    m, s = z.mean(0), torch.cov(z.T, correction=0)
    eye = torch.eye(4, dtype=torch.float64)
    ref_fit = D.kl_divergence(D.MultivariateNormal(m, s), D.MultivariateNormal(0 * m, eye))
    err_fit = abs(gaussian_fit_kl(z) - float(ref_fit))
    # Every comparison is float64 of KLs up to ~1e4 nats (log s^2 up to ~10): float64 rounding
    # there is ~1e-12, so 1e-9 cannot be met by a wrong formula and is not missed by a right one.
    checks = [
        close("gaussian KL term vs torch.distributions (max abs)", err_g, 0.0, 1e-9),
        close("closed form 1/2 sum(mu^2+s^2-1-log s^2) vs torch (max abs)", err_closed, 0, 1e-9),
        close("lognormal KL term vs the normals' KL (max abs)", err_ln, 0.0, 1e-9),
        close("categorical KL term vs torch.distributions (max abs)", err_cat, 0.0, 1e-9),
        close("hand-built codes: Var_x per unit vs built (max abs)", err_var, 0.0, 1e-12),
        close("hand-built codes: active units", active_units(codes), 3, 0),
        close("Gaussian-fit KL vs torch MultivariateNormal KL", err_fit, 0.0, 1e-9),
    ]
    numbers = {
        "kl_max_abs_error": {
            "gaussian": float(err_g),
            "lognormal": float(err_ln),
            "categorical": float(err_cat),
        }
    }
    return checks, numbers


# ----------------------------------------------------------------------------- training


def config(preset: str, ctx: LabContext, extra: dict | None = None):
    overrides = {
        "data.image_size": 16,
        "model.arch": "mlp",
        "model.hidden": [ctx["hidden"]],
        "train.batch_size": ctx["batch"],
        "train.lr": ctx["lr"],
    }
    if preset == "vae_categorical":
        overrides["model.categorical_dims"] = ctx["groups"]
    else:
        overrides["model.latent_dim"] = ctx["latent_dim"]
    overrides.update(extra or {})
    return build_config(preset=preset, data="digits", overrides=overrides)


def train_model(cfg, bundle, x: torch.Tensor, ctx: LabContext):
    """The model of ``cfg`` after ``steps`` of its own ``train_step`` on shuffled batches of x;
    every model sees the same batches (one seed)."""
    torch.manual_seed(ctx.seed)
    model = build_model(cfg.model, bundle.spec).train()
    opts = model.configure_optimizers(cfg.train)
    g = torch.Generator().manual_seed(ctx.seed + 1)
    for step in range(ctx["steps"]):
        index = torch.randint(len(x), (ctx["batch"],), generator=g)
        model.train_step({"x": x[index]}, opts, step)
    return model.eval()


def score_vae(model, cfg, bundle, x_train: torch.Tensor, ctx: LabContext) -> dict:
    """Test ELBO (the library metric), KL term, active units and aggregate-posterior distances
    of a trained VAE."""
    ectx = EvalContext(
        Path("."),
        cfg,
        model,
        torch.device("cpu"),
        ctx["steps"],
        seed=ctx.seed,
        options={"k": ctx["k"]},
        progress=False,
        bundle=bundle,
    )
    (result,) = elbo_metric(ectx, None)
    test_x = to_model(bundle.test.x)
    g = torch.Generator().manual_seed(ctx.seed + 2)
    with evaluating(model):
        kl = float(model.family.kl(model.posterior(test_x)).mean())
        p = model.posterior(x_train)
        codes = model.family.code(p)
        z = model.family.sample(p, g)
    row = {"elbo": result.value, "elbo_se": result.stderr, "kl": kl, "recon": -result.value - kl}
    if cfg.model.posterior == "categorical":
        probs = codes.view(len(codes), model.family.groups, model.family.k)
        activity = probs.double().var(0, correction=0).sum(-1)  # per group
        row["aggregate_kl"] = marginal_kl_uniform(probs)
        u = None
    else:
        activity = unit_activity(codes)
        u = z.log() if cfg.model.posterior == "lognormal" else z  # N(0, I) under the prior
        row["aggregate_kl"] = gaussian_fit_kl(u)
        prior = torch.randn(len(u), u.shape[1], generator=g)
        row["mmd2"] = mmd2_unbiased(u, prior)
    row["activity"] = activity.tolist()
    row["active"] = int((activity > ACTIVE).sum())
    return row, u


def score_aae(model, x_train: torch.Tensor, x_test: torch.Tensor, ctx: LabContext) -> dict:
    g = torch.Generator().manual_seed(ctx.seed + 2)
    with evaluating(model):
        codes = model.encode(x_train)
        recon = float(bernoulli_nll(model.decoder(model.encode(x_test)), to_unit(x_test)).mean())
    prior = torch.randn(len(codes), codes.shape[1], generator=g)
    activity = unit_activity(codes)
    row = {
        "recon": recon,
        "aggregate_kl": gaussian_fit_kl(codes),
        "mmd2": mmd2_unbiased(codes, prior),
        "activity": activity.tolist(),
        "active": int((activity > ACTIVE).sum()),
    }
    return row, codes


# ----------------------------------------------------------------------------- the lab


@register_lab(
    "vae-latents",
    claim="raising beta trades ELBO for a latent space closer to the prior and collapses "
    "units; an adversarial regulariser matches the aggregate posterior instead",
    defaults={
        "steps": 1500,
        "betas": [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0],
        "hidden": 256,
        "latent_dim": 8,
        "batch": 64,
        "lr": 1e-3,
        "groups": 20,
        "k": 16,
    },
    # Quick: a few steps at a larger learning rate; the categorical code, slow to start, with
    # 10 groups instead of the preset's 20.
    quick={"steps": 100, "betas": [0.0, 1.0, 16.0], "lr": 3e-3, "groups": 10, "k": 4},
)
def run(ctx: LabContext) -> LabOutput:
    betas = sorted(float(b) for b in ctx["betas"])
    if 1.0 not in betas:
        betas = sorted({*betas, 1.0})
    base_cfg = config("vae", ctx)
    bundle = load_data(base_cfg.data)
    x_train, x_test = to_model(bundle.train.x), to_model(bundle.test.x)
    checks, numbers = exact_checks(ctx.seed, bundle.spec)
    baseline = bernoulli_baseline(x_train, x_test)

    sweep, samples = {}, {}
    for beta in betas:
        cfg = config("vae", ctx, {"model.beta": beta})
        model = train_model(cfg, bundle, x_train, ctx)
        sweep[beta], samples[f"VAE beta={beta:g}"] = score_vae(model, cfg, bundle, x_train, ctx)
        sweep[beta]["kl_train"] = kl_on(model, x_train)
    families = {"gaussian": sweep[1.0]}
    for name, preset in FAMILIES.items():
        extra = {}
        if name == "categorical":  # reach the temperature floor by the last step
            c = config(preset, ctx).model
            extra["model.anneal_rate"] = math.log(c.tau0 / c.tau_min) / ctx["steps"]
        cfg = config(preset, ctx, extra)
        model = train_model(cfg, bundle, x_train, ctx)
        families[name], _ = score_vae(model, cfg, bundle, x_train, ctx)
        families[name]["kl_train"] = kl_on(model, x_train)
    aae_cfg = config("aae", ctx, {"model.d_hidden": [ctx["hidden"] // 4] * 2})
    aae_model = train_model(aae_cfg, bundle, x_train, ctx)
    aae, samples["AAE"] = score_aae(aae_model, x_train, x_test, ctx)

    lo, one, hi = sweep[betas[0]], sweep[1.0], sweep[betas[-1]]
    tag_hi, tag_lo = f"beta={betas[-1]:g}", f"beta={betas[0]:g}"
    # The models learned: a decoder that ignored z would score the factorised-pixel baseline.
    checks.append(at_least("ELBO at beta=1 vs independent-pixel baseline", one["elbo"], baseline))
    for name in FAMILIES:
        checks.append(at_least(f"{name} ELBO vs baseline", families[name]["elbo"], baseline))
    checks.append(at_most("AAE reconstruction NLL vs baseline NLL", aae["recon"], -baseline))
    # The sweep: a larger beta pays for a smaller KL term with ELBO, and units fall inactive.
    checks += [
        at_most(f"mean KL term, {tag_hi} vs beta=1", hi["kl"], one["kl"]),
        at_most(f"active units, {tag_hi} vs beta=1", hi["active"], one["active"]),
        at_least(f"ELBO, beta=1 vs {tag_hi}", one["elbo"], hi["elbo"]),
        at_least(f"ELBO, beta=1 vs {tag_lo}", one["elbo"], lo["elbo"]),
        at_most(
            f"aggregate Gaussian-fit KL, {tag_hi} vs beta=1",
            hi["aggregate_kl"],
            one["aggregate_kl"],
        ),
    ]
    # KL(q_G || p) <= KL(q(z) || p) <= E_x KL(q(z|x) || p) (module docstring). The fit from
    # N = 1617 codes overstates the KL by about d(d+1) / 4N = 0.01 nats (the log-determinant
    # of a sample covariance is biased low); 0.05 nats covers it.
    models = {f"beta={b:g}": sweep[b] for b in betas}
    models.update({n: families[n] for n in FAMILIES})
    slack = max(r["aggregate_kl"] - r["kl_train"] for r in models.values())
    checks.append(at_most("max over VAEs of aggregate KL - mean KL term", slack, 0.0, 0.05))
    # The adversarial regulariser against none at all.
    checks += [
        at_most(
            f"aggregate Gaussian-fit KL, AAE vs VAE {tag_lo}",
            aae["aggregate_kl"],
            lo["aggregate_kl"],
        ),
        at_most(f"aggregate MMD^2 to N(0, I), AAE vs VAE {tag_lo}", aae["mmd2"], lo["mmd2"]),
        # Measured: the KL term at beta=1 leaves q(z) closer to N(0, I) than the AAE's GAN in
        # latent space does here (its deterministic codes are matched on two moments less
        # well); the notes' preference for the adversarial regulariser does not show in these
        # numbers.
        at_least(
            "aggregate Gaussian-fit KL, AAE vs VAE beta=1", aae["aggregate_kl"], one["aggregate_kl"]
        ),
    ]
    numbers.update(
        {
            "baseline_elbo": baseline,
            "sweep": {f"{b:g}": r for b, r in sweep.items()},
            "families": families,
            "aae": aae,
        }
    )
    return LabOutput(checks, figure(betas, sweep, families, aae, samples, baseline), numbers)


def kl_on(model, x: torch.Tensor) -> float:
    with evaluating(model):
        return float(model.family.kl(model.posterior(x)).mean())


def figure(betas, sweep, families, aae, samples, baseline):
    fig, axes = pyplot().subplots(2, 3, figsize=(15, 8.5))
    (ax1, ax2, ax3), row2 = axes
    pos = list(range(len(betas)))
    labels = [f"{b:g}" for b in betas]
    ax1.errorbar(
        pos,
        [sweep[b]["elbo"] for b in betas],
        [sweep[b]["elbo_se"] for b in betas],
        fmt="o-",
        color="C0",
        label="Normal VAE",
    )
    for i, (name, style) in enumerate((("lognormal", "s"), ("categorical", "D"))):
        ax1.plot(
            pos[betas.index(1.0)] + 0.15 * (i + 1),
            families[name]["elbo"],
            style,
            color=f"C{i + 1}",
            label=f"{name} (beta=1)",
        )
    ax1.axhline(baseline, color="0.5", ls=":", label="independent pixels (collapsed)")
    ax1.set(
        xticks=pos,
        xticklabels=labels,
        xlabel="beta",
        ylabel="test ELBO, nats/image",
        title="ELBO over the beta sweep",
    )
    top = max(r["elbo"] for r in sweep.values())
    bottom = baseline - 0.6 * (top - baseline) - 1.0
    ax1.set_ylim(bottom, top + 0.2 * (top - baseline) + 1.0)
    for i, b in enumerate(betas):  # points below the frame (beta = 0: a huge KL term)
        if sweep[b]["elbo"] < bottom:
            ax1.annotate(
                f"{sweep[b]['elbo']:.0f}",
                (pos[i], bottom),
                xytext=(pos[i], bottom + 2),
                ha="center",
                fontsize=8,
                arrowprops={"arrowstyle": "->"},
            )
    ax1.legend(fontsize=8, loc="lower right")
    ax2.plot(pos, [sweep[b]["kl_train"] for b in betas], "o-", label="mean KL(q(z|x) || p)")
    ax2.plot(
        pos, [sweep[b]["aggregate_kl"] for b in betas], "s-", label="KL(Gaussian fit of q(z) || p)"
    )
    ax2.axhline(aae["aggregate_kl"], color="C3", ls="--", label="AAE: KL(fit of q(z) || p)")
    ax2.set(
        xticks=pos,
        xticklabels=labels,
        xlabel="beta",
        ylabel="nats",
        yscale="log",
        title="per-image KL vs aggregate posterior's",
    )
    ax2.legend(fontsize=8)
    colours = pyplot().get_cmap("viridis")
    for i, b in enumerate(betas):
        a = sorted(sweep[b]["activity"], reverse=True)
        ax3.semilogy(
            range(1, len(a) + 1),
            [max(v, 1e-8) for v in a],
            "o-",
            ms=3,
            color=colours(i / max(1, len(betas) - 1)),
            label=f"beta={b:g}: {sweep[b]['active']} active",
        )
    ax3.axhline(ACTIVE, color="k", ls=":", lw=1)
    ax3.set(xlabel="unit (sorted)", ylabel="Var_x E[z_u | x]", title="active units (> 0.01)")
    ax3.legend(fontsize=7)
    shown = [k for k in samples if k != "AAE"]
    picks = [shown[0], "VAE beta=1", "AAE"]
    theta = torch.linspace(0, 2 * math.pi, 200)
    for ax, key in zip(row2, picks, strict=True):
        u = samples[key].double()
        # the two directions of largest variance of the aggregate posterior
        _, _, v = torch.linalg.svd(u - u.mean(0), full_matrices=False)
        pts = (u @ v[:2].T).numpy()
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.5)
        for r in (1, 2, 3):
            ax.plot(r * theta.cos(), r * theta.sin(), color="0.4", lw=0.8)
        kl = (
            aae["aggregate_kl"] if key == "AAE" else sweep[float(key.split("=")[1])]["aggregate_kl"]
        )
        ax.set(
            aspect="equal",
            title=f"{key}: q(z) on its top-2 axes (fit KL {kl:.2f})",
            xlabel="circles: 1, 2, 3 sd of N(0, I)",
        )
        lim = max(4.0, float(abs(pts).max()) * 1.05)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim))
    fig.tight_layout()
    return fig
