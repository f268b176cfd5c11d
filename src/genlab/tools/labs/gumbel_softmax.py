"""Lab ``gumbel-softmax``: the gradient of an expectation over a categorical, exactly and by the
Gumbel-Softmax estimator (Jang, Gu & Poole 2017, arXiv:1611.01144; Maddison, Mnih & Teh 2017,
arXiv:1611.00712), using ``genlab.losses.latent.gumbel_softmax``.

For p = softmax(theta) over K categories and per-category values v, E[v] = sum_k p_k v_k and

    d E[v] / d theta_k = p_k (v_k - E[v])                         (softmax Jacobian)

The soft estimator differentiates v-of-the-relaxed-sample y = softmax((theta + g) / tau), g
standard Gumbel; the hard (straight-through) one uses the one-hot argmax forward and the soft
sample's gradient. Two downstream functions of the sample:

- linear, f . y: at a one-hot y it is f_k, so v = f. Its gradient in y is f wherever y is, so
  the straight-through and soft estimates are the same number for every noise draw.
- nonlinear, exp(f . y): at a one-hot y it is exp(f_k), so v = exp(f). Straight-through takes
  exp'(f . y) at the one-hot vertex, the soft estimator at the relaxed point.

Bias (the norm of the mean estimate minus the exact gradient) and variance (the trace of the
estimates' covariance) are measured over ``samples`` draws per temperature, with their Monte-Carlo
standard errors.
"""

from __future__ import annotations

import math

import torch
from scipy.stats import chi2

from genlab.losses.latent import gumbel_softmax
from genlab.models.sampling import pyplot
from genlab.tools.labs.base import LabContext, LabOutput, at_least, at_most, close, register_lab

DTYPE = torch.float64  # the checks compare at 1e-6 and below: float32 would blur them

DOWNSTREAM = {
    "linear": (lambda s: s, lambda f: f),  # (function of f . y, its values at the vertices)
    "exp": (torch.exp, torch.exp),
}


def exact_gradient(theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """d/dtheta sum_k softmax(theta)_k v_k = p_k (v_k - E[v]), in closed form."""
    p = theta.softmax(-1)
    return p * (v - (p * v).sum())


def autograd_gradient(theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    t = theta.detach().clone().requires_grad_(True)
    (t.softmax(-1) * v).sum().backward()
    return t.grad


def estimates(
    theta: torch.Tensor, f: torch.Tensor, fn, tau: float, hard: bool, n: int, seed: int
) -> torch.Tensor:
    """n per-sample gradient estimates (n, K) of d E[fn(f . y)] / d theta: each row of the
    batch is its own copy of theta, so its .grad row is that sample's estimate."""
    g = torch.Generator().manual_seed(seed)
    rows = theta.expand(n, -1).clone().requires_grad_(True)
    y = gumbel_softmax(rows, tau, hard=hard, generator=g)
    fn(y @ f).sum().backward()
    return rows.grad


def summarise(est: torch.Tensor, exact: torch.Tensor) -> dict[str, float]:
    """Bias norm, variance (trace of the covariance) and their Monte-Carlo standard errors.

    The mean of n estimates differs from their expectation by a vector of squared norm about
    trace(Cov) / n, so ``bias_se`` = sqrt(trace(Cov) / n) is the noise level of the bias norm
    (a bias below it is not resolved). The variance is the mean of d_i = |e_i - mean|^2, so its
    standard error is std(d) / sqrt(n)."""
    n = est.shape[0]
    mean = est.mean(0)
    dev = (est - mean).pow(2).sum(1)
    var = dev.mean().item()
    return {
        "bias": (mean - exact).norm().item(),
        "bias_se": math.sqrt(var / n),
        "variance": var,
        "variance_se": dev.std().item() / math.sqrt(n),
    }


@register_lab(
    "gumbel-softmax",
    claim="the soft Gumbel-Softmax gradient's bias shrinks as tau -> 0 while its variance "
    "grows; its one-hot samples follow softmax(theta)",
    defaults={
        "theta": [1.0, 0.5, 0.0, -0.5, -1.0],
        "f": [1.0, -1.0, 2.0, 0.0, -2.0],
        "taus": [0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0],
        "samples": 400_000,
    },
    quick={"taus": [0.1, 0.5, 2.0], "samples": 50_000},
)
def run(ctx: LabContext) -> LabOutput:
    theta = torch.tensor(ctx["theta"], dtype=DTYPE)
    f = torch.tensor(ctx["f"], dtype=DTYPE)
    taus = sorted(float(t) for t in ctx["taus"])
    n = ctx["samples"]
    k = theta.numel()
    checks = []
    # 1. The closed form against autograd of the expectation (float64: agreement to ~1e-16).
    for name, (_, at_vertex) in DOWNSTREAM.items():
        v = at_vertex(f)
        err = (exact_gradient(theta, v) - autograd_gradient(theta, v)).abs().max().item()
        checks.append(close(f"exact gradient vs autograd, {name} (max abs)", err, 0.0, 1e-6))

    rows: dict[str, list[dict[str, float]]] = {}
    same_draws = 0.0
    for name, (fn, at_vertex) in DOWNSTREAM.items():
        exact = exact_gradient(theta, at_vertex(f))
        for hard in (False, True):
            key = f"{'hard' if hard else 'soft'} {name}"
            rows[key] = []
            for i, tau in enumerate(taus):
                seed = ctx.seed * 1000 + i  # the same noise for soft and hard at each tau
                est = estimates(theta, f, fn, tau, hard, n, seed)
                rows[key].append({"tau": tau, **summarise(est, exact)})
                if name == "linear":
                    other = estimates(theta, f, fn, tau, not hard, n, seed)
                    same_draws = max(same_draws, (est - other).abs().max().item())
    # 2. Linear f: straight-through and soft are the same estimator (same noise, same graph
    # below y), so they agree to rounding; 1e-12 is ~1e4 float64 ulps of numbers of order 1.
    checks.append(
        close("hard vs soft estimate, linear f (max abs over draws)", same_draws, 0, 1e-12)
    )

    # 3. The soft estimator's bias shrinks and its variance grows as tau goes down: the lowest
    # tau against the highest, each side moved 3 standard errors against the claim, so a
    # Monte-Carlo fluctuation cannot make it hold.
    lo, hi = 0, len(taus) - 1
    for name in DOWNSTREAM:
        r = rows[f"soft {name}"]
        b_lo = r[lo]["bias"] + 3 * r[lo]["bias_se"]
        b_hi = r[hi]["bias"] - 3 * r[hi]["bias_se"]
        tag = f"tau={taus[lo]:g} vs {taus[hi]:g}, {name}"
        checks.append(at_most(f"soft bias, +3 SE at {tag} -3 SE", b_lo, b_hi))
        v_lo = r[lo]["variance"] - 3 * r[lo]["variance_se"]
        v_hi = r[hi]["variance"] + 3 * r[hi]["variance_se"]
        checks.append(at_least(f"soft variance, -3 SE at {tag} +3 SE", v_lo, v_hi))
    # 4. Where it does not hold: with a nonlinear downstream function straight-through's bias
    # does not vanish as tau -> 0 (it evaluates exp' at the vertex, not along the relaxation).
    st, soft = rows["hard exp"][lo], rows["soft exp"][lo]
    checks.append(
        at_least(
            f"hard-exp bias -3 SE vs soft-exp bias +3 SE at tau={taus[lo]:g}",
            st["bias"] - 3 * st["bias_se"],
            soft["bias"] + 3 * soft["bias_se"],
        )
    )

    # 5. The forward one-hot samples are Categorical(softmax(theta)) (the Gumbel-max trick).
    g = torch.Generator().manual_seed(ctx.seed * 1000 + 999)
    one_hot = gumbel_softmax(theta.expand(n, -1), 1.0, hard=True, generator=g).detach()
    counts = one_hot.sum(0)
    p = theta.softmax(-1)
    freq = counts / n
    stat = ((counts - n * p).pow(2) / (n * p)).sum().item()
    # Under the null the statistic is chi-square with K-1 dof: a deterministic seed fails this
    # with probability 1e-4 if the sampler is right.
    checks.append(
        at_most("one-hot frequencies: chi-square statistic", stat, chi2.ppf(1 - 1e-4, k - 1))
    )
    se = (p * (1 - p) / n).sqrt()
    # 4.5 standard errors per category: a two-sided normal tail of 7e-6, under 4e-5 over K.
    checks.append(
        at_most("one-hot frequencies: max |freq - p| / SE", ((freq - p).abs() / se).max(), 4.5)
    )

    fig, (ax1, ax2, ax3) = pyplot().subplots(1, 3, figsize=(15, 4.3))
    styles = {
        "soft linear": ("C0", "o-"),
        "hard linear": ("C0", "x--"),
        "soft exp": ("C1", "o-"),
        "hard exp": ("C3", "s--"),
    }
    for key, r in rows.items():
        color, style = styles[key]
        t = [x["tau"] for x in r]
        label = "hard (ST) linear = soft linear" if key == "hard linear" else key
        ax1.errorbar(t, [x["bias"] for x in r], [x["bias_se"] for x in r], fmt=style,
                     color=color, label=label, ms=4, capsize=2)  # fmt: skip
        ax2.errorbar(t, [x["variance"] for x in r], [x["variance_se"] for x in r], fmt=style,
                     color=color, label=label, ms=4, capsize=2)  # fmt: skip
    for name, (_, at_vertex) in DOWNSTREAM.items():
        norm = exact_gradient(theta, at_vertex(f)).norm().item()
        ax1.axhline(norm, color="C0" if name == "linear" else "C1", lw=0.8, ls=":")
    ax1.set(xscale="log", yscale="log", xlabel="temperature tau", ylabel="|mean estimate - exact|",
            title=f"bias ({n:,} draws per point; dotted: |exact|)")  # fmt: skip
    ax2.set(xscale="log", yscale="log", xlabel="temperature tau", ylabel="trace of covariance",
            title="variance of the estimate")  # fmt: skip
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    idx = torch.arange(k)
    ax3.bar(idx - 0.2, p, 0.4, label="softmax(theta)")
    ax3.bar(idx + 0.2, freq, 0.4, label="one-hot frequency")
    ax3.set(xlabel="category", ylabel="probability", xticks=idx.tolist(),
            title=f"hard samples, chi-square {stat:.2f} ({k - 1} dof)")  # fmt: skip
    ax3.legend(fontsize=8)
    fig.tight_layout()
    numbers = {
        "p": p.tolist(),
        "exact_gradient": {
            name: exact_gradient(theta, at(f)).tolist() for name, (_, at) in DOWNSTREAM.items()
        },
        "estimators": rows,
        "frequencies": freq.tolist(),
        "chi_square": stat,
    }
    return LabOutput(checks, fig, numbers)
