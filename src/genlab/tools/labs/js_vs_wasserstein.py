"""Lab ``js-vs-wasserstein``: Example 1 of Arjovsky, Chintala & Bottou 2017 ("Wasserstein GAN",
arXiv:1701.07875). P is uniform on the segment {0} x [0, 1] and Q_theta uniform on
{theta} x [0, 1]. For theta != 0 the supports are disjoint, so

    JS(P, Q_theta) = log 2  (0 at theta = 0),      W1(P, Q_theta) = |theta|.

JS is flat in theta away from 0, so a generator that moves theta gets no gradient from it; W1
gives d/dtheta = sign(theta) everywhere. Both are then estimated by the networks a GAN trains:

- a WGAN-GP critic f (``genlab.nn.mlp.mlp``, the ``wasserstein`` loss and
  ``genlab.losses.penalties.gradient_penalty``) estimates W1 as E_P[f] - E_Q[f];
- a discriminator D trained with the BCE loss (``minimax`` / ``nonsaturating`` share it)
  estimates JS as (V(D) + log 4) / 2, V(D) = E_P[log D] + E_Q[log(1 - D)] (Goodfellow et al.
  2014, Thm. 1).

The generator's gradient is d/dtheta of each estimate at the trained network (the envelope
theorem: the optimum's own dependence on theta does not enter), taken by autograd through
samples (theta, u).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from genlab.losses.adversarial import ADVERSARIAL_LOSSES
from genlab.losses.penalties import gradient_penalty
from genlab.models.sampling import pyplot
from genlab.nn.mlp import mlp
from genlab.tools.labs.base import LabContext, LabOutput, at_least, at_most, close, register_lab

LOG2 = math.log(2.0)


def segment(theta: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """n points uniform on {theta} x [0, 1], (n, 2); differentiable in theta."""
    u = torch.rand(n, 1, generator=gen)
    return torch.cat([theta.expand(n, 1), u], dim=1)


def network(width: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return mlp([2, width, width, 1], act=nn.LeakyReLU)


def train_critic(theta: float, ctx: LabContext, seed: int) -> nn.Module:
    """A WGAN-GP critic for P vs Q_theta: minimise the ``wasserstein`` d loss + lambda GP."""
    f = network(ctx["width"], seed)
    opt = torch.optim.Adam(f.parameters(), lr=ctx["lr"], betas=(0.5, 0.9))
    gen = torch.Generator().manual_seed(seed)
    loss = ADVERSARIAL_LOSSES["wasserstein"].d
    t = torch.tensor(float(theta))
    for _ in range(ctx["steps"]):
        real = segment(torch.tensor(0.0), ctx["batch"], gen)
        fake = segment(t, ctx["batch"], gen)
        eps = torch.rand(ctx["batch"], generator=gen)
        critic = lambda x: f(x).squeeze(1)  # noqa: E731
        d = loss(critic(real), critic(fake)) + ctx["gp_weight"] * gradient_penalty(
            critic, real, fake, eps
        )
        opt.zero_grad(set_to_none=True)
        d.backward()
        opt.step()
    return f


def train_discriminator(theta: float, ctx: LabContext, seed: int) -> nn.Module:
    """A GAN discriminator for P vs Q_theta: minimise the BCE d loss of ``minimax``."""
    d_net = network(ctx["width"], seed)
    opt = torch.optim.Adam(d_net.parameters(), lr=ctx["lr"], betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(seed)
    loss = ADVERSARIAL_LOSSES["minimax"].d
    t = torch.tensor(float(theta))
    for _ in range(ctx["steps"]):
        real = segment(torch.tensor(0.0), ctx["batch"], gen)
        fake = segment(t, ctx["batch"], gen)
        d = loss(d_net(real).squeeze(1), d_net(fake).squeeze(1))
        opt.zero_grad(set_to_none=True)
        d.backward()
        opt.step()
    return d_net


def estimate(net: nn.Module, theta: float, kind: str, n: int, seed: int) -> tuple[float, float]:
    """(estimate, d estimate / d theta) at a trained net on n fresh samples of each side."""
    gen = torch.Generator().manual_seed(seed + 7919)
    t = torch.tensor(float(theta), requires_grad=True)
    real = net(segment(torch.tensor(0.0), n, gen)).squeeze(1)
    fake = net(segment(t, n, gen)).squeeze(1)
    if kind == "w":
        value = -ADVERSARIAL_LOSSES["wasserstein"].d(real, fake)  # E_P f - E_Q f
    else:
        value = (-ADVERSARIAL_LOSSES["minimax"].d(real, fake) + math.log(4.0)) / 2
    (grad,) = torch.autograd.grad(value, t)
    return value.item(), grad.item()


@register_lab(
    "js-vs-wasserstein",
    claim="for disjoint segments JS is log 2 with zero gradient in theta, W1 = |theta| "
    "with gradient sign(theta); a WGAN-GP critic and a BCE discriminator estimate both",
    defaults={
        "thetas": [-1.0, -0.5, 0.25, 0.5, 1.0],
        "steps": 1000,
        "batch": 128,
        "width": 32,
        "lr": 3e-3,
        "gp_weight": 10.0,
        "eval_n": 8192,
    },
    quick={"thetas": [-1.0, 0.5], "steps": 150, "eval_n": 4096},
)
def run(ctx: LabContext) -> LabOutput:
    thetas = [float(t) for t in ctx["thetas"]]
    rows = []
    for i, theta in enumerate(thetas):
        seed = ctx.seed * 1000 + i
        w, w_grad = estimate(train_critic(theta, ctx, seed), theta, "w", ctx["eval_n"], seed)
        js, js_grad = estimate(
            train_discriminator(theta, ctx, seed), theta, "js", ctx["eval_n"], seed
        )
        rows.append({"theta": theta, "w": w, "w_grad": w_grad, "js": js, "js_grad": js_grad})

    checks = []
    for r in rows:
        th = r["theta"]
        # The penalty holds the critic's slope near 1 only softly and only on the interpolates,
        # so the trained ramp's slope comes out a few per cent off 1 (over seeds 0-3 and these
        # thetas: 1.00 to 1.06), and the estimate carries Monte Carlo noise of about
        # 0.3 / sqrt(eval_n) < 0.005. 15 % relative leaves room for that and fails a critic
        # that has not found the ramp (early in training the estimate is near 0 or negative).
        checks.append(
            close(f"W estimate at theta={th:g} (|theta|)", r["w"], abs(th), 0.15 * abs(th))
        )
        # dW/dtheta = sign(theta) is that same slope, read at Q's segment: the same 15 %.
        checks.append(
            close(f"dW/dtheta at theta={th:g}", r["w_grad"], math.copysign(1.0, th), 0.15)
        )
        # V(D) <= 0, so the estimate is at most log 2; a discriminator that separates the
        # segments gets within a few thousandths of it (0.690 to 0.693 in the runs tried). 0.03
        # nats (4 % of log 2) fails a D that has not separated them.
        checks.append(close(f"JS estimate at theta={th:g} (log 2)", r["js"], LOG2, 0.03))
    # JS's gradient is 0 for theta != 0; the saturated D leaves a residue of order D(fake) times
    # its slope. "Tiny" means: under 5 % of W's gradient, whose size is 1.
    worst_js = max(abs(r["js_grad"]) for r in rows)
    least_w = min(abs(r["w_grad"]) for r in rows)
    checks.append(at_most("largest |dJS/dtheta| (vs W's ~1)", worst_js, 0.05))
    checks.append(
        at_least(
            "smallest |dW/dtheta| / largest |dJS/dtheta|", least_w / max(worst_js, 1e-12), 20.0
        )
    )

    fig = figure(rows)
    numbers = {"rows": rows, "log2": LOG2}
    return LabOutput(checks, fig, numbers)


def figure(rows: list[dict]):
    fig, (ax1, ax2) = pyplot().subplots(1, 2, figsize=(11, 4.2))
    grid = np.linspace(-1.2, 1.2, 481)
    ax1.plot(grid, np.abs(grid), color="C0", label="W1 = |θ| (closed form)")
    js = np.where(grid == 0.0, 0.0, LOG2)
    ax1.plot(grid[grid < 0], js[grid < 0], color="C1", label="JS = log 2, 0 at θ = 0 (closed form)")
    ax1.plot(grid[grid > 0], js[grid > 0], color="C1")
    ax1.plot([0.0], [LOG2], "o", color="C1", mfc="white", ms=6)
    ax1.plot([0.0], [0.0], "o", color="C1", ms=6)
    th = [r["theta"] for r in rows]
    ax1.plot(
        th, [r["w"] for r in rows], "s", color="C0", ms=7, label="WGAN-GP critic: E_P f − E_Q f"
    )
    ax1.plot(
        th, [r["js"] for r in rows], "^", color="C1", ms=7, label="BCE discriminator: (V + log 4)/2"
    )
    ax1.set(
        xlabel="θ (position of Q's segment)",
        ylabel="distance (nats for JS)",
        title="distance between P and Q_θ",
    )
    ax1.legend(fontsize=8, loc="upper center")
    ax2.axhline(0.0, color="C1", lw=1)
    ax2.plot(grid[grid < 0], -np.ones((grid < 0).sum()), color="C0", label="dW1/dθ = sign(θ)")
    ax2.plot(grid[grid > 0], np.ones((grid > 0).sum()), color="C0")
    ax2.plot(th, [r["w_grad"] for r in rows], "s", color="C0", ms=7, label="critic's gradient")
    ax2.plot(
        th,
        [r["js_grad"] for r in rows],
        "^",
        color="C1",
        ms=7,
        label="discriminator's gradient (JS)",
    )
    for r in rows:
        ax2.annotate(
            f"{r['js_grad']:.1e}",
            (r["theta"], r["js_grad"]),
            textcoords="offset points",
            xytext=(0, -14),
            ha="center",
            fontsize=7,
            color="C1",
        )
    ax2.set(
        xlabel="θ",
        ylabel="d estimate / dθ",
        title="the gradient a generator moving θ gets",
        ylim=(-1.5, 1.5),
    )
    ax2.legend(fontsize=8, loc="upper left")
    return fig
