"""Lab ``bce-saturation``: why GANs train G with -log D(G(z)) rather than log(1 - D(G(z)))
(Goodfellow et al. 2014, arXiv:1406.2661, Sec. 3; Goodfellow 2016, "NIPS 2016 Tutorial:
Generative Adversarial Networks", arXiv:1701.00160, Sec. 3.2.3).

With D = sigmoid(a) on a generated sample, a its logit, the two generator losses of
``genlab.losses.adversarial`` have

    minimax        log(1 - sigmoid(a))   d/da = -sigmoid(a)       -> 0 as D(G(z)) -> 0
    nonsaturating  -log sigmoid(a)       d/da = -(1 - sigmoid(a)) -> -1 as D(G(z)) -> 0

so where D confidently rejects the fakes (early in training) the minimax loss hands G almost no
gradient, while the non-saturating one hands it nearly the largest it can. The lab checks the
closed forms against autograd through the library's loss functions, then measures the
generator's gradient norm on ``ring8`` after D has been trained ahead of G, and trains both
losses for a few steps from that same start.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from genlab.core.config import DataConfig
from genlab.data.base import load_data
from genlab.losses.adversarial import ADVERSARIAL_LOSSES
from genlab.metrics.modes import mode_coverage
from genlab.models.sampling import pyplot
from genlab.nn.mlp import mlp
from genlab.tools.labs.base import LabContext, LabOutput, at_least, at_most, close, register_lab

LOSSES = ("minimax", "nonsaturating")


def logit_gradients(a: torch.Tensor) -> dict[str, torch.Tensor]:
    """d loss / d a_i of each generator loss at logits a (N,), times N (the losses average)."""
    out = {}
    for name in LOSSES:
        x = a.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(ADVERSARIAL_LOSSES[name].g(x), x)
        out[name] = grad * len(a)
    return out


def grad_norm(module: nn.Module) -> float:
    return float(torch.sqrt(sum(p.grad.pow(2).sum() for p in module.parameters())))


def d_step(d_net, g_net, opt, real, z) -> None:
    with torch.no_grad():
        fake = g_net(z)
    loss = ADVERSARIAL_LOSSES["minimax"].d(d_net(real).squeeze(1), d_net(fake).squeeze(1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def g_gradient(d_net, g_net, z, loss_name) -> dict[str, float]:
    """Backpropagate one generator loss into G's parameters; G's gradient norm and D(G(z))."""
    g_net.zero_grad(set_to_none=True)
    a = d_net(g_net(z)).squeeze(1)
    ADVERSARIAL_LOSSES[loss_name].g(a).backward()
    d_fake = torch.sigmoid(a.detach())
    return {
        "grad_norm": grad_norm(g_net),
        "d_fake": float(d_fake.mean()),
        # the per-sample weights of the two losses on these fakes (d loss / d a, sign dropped)
        "weight_minimax": float(d_fake.mean()),
        "weight_nonsaturating": float((1.0 - d_fake).mean()),
    }


def ring8(ctx: LabContext):
    return load_data(DataConfig(name="ring8", num_samples=ctx["num_samples"], split_seed=ctx.seed))


@register_lab(
    "bce-saturation",
    claim="the minimax generator loss log(1 - D(G(z))) saturates when D rejects the fakes; "
    "the non-saturating -log D(G(z)) keeps G's gradient large",
    defaults={
        "steps": 300,
        "early": 5,
        "d_pretrain": 300,
        "batch": 256,
        "width": 64,
        "z_dim": 2,
        "lr_d": 2e-3,
        "lr_g": 1e-3,
        "num_samples": 20_000,
    },
    quick={"steps": 25, "d_pretrain": 100, "num_samples": 5000},
)
def run(ctx: LabContext) -> LabOutput:
    a = torch.linspace(-12.0, 12.0, 241, dtype=torch.float64)
    grads = logit_gradients(a)
    sig = torch.sigmoid(a)
    err_mm = float((grads["minimax"] - (-sig)).abs().max())
    err_ns = float((grads["nonsaturating"] - (-(1.0 - sig))).abs().max())

    data = ring8(ctx)
    x = data.train.x
    centres = torch.tensor(data.spec.extra["centres"])
    sigma = data.spec.extra["sigma"]
    torch.manual_seed(ctx.seed)
    width, z_dim, batch = ctx["width"], ctx["z_dim"], ctx["batch"]
    g0 = mlp([z_dim, width, width, 2])
    d0 = mlp([2, width, width, 1], act=nn.LeakyReLU)
    gen = torch.Generator().manual_seed(ctx.seed)

    def real_batch() -> torch.Tensor:
        return x[torch.randint(len(x), (batch,), generator=gen)]

    def z_batch() -> torch.Tensor:
        return torch.randn(batch, z_dim, generator=gen)

    # A strong D: trained ahead against the untrained G, as when D wins early in training.
    opt_d0 = torch.optim.Adam(d0.parameters(), lr=ctx["lr_d"], betas=(0.5, 0.999))
    for _ in range(ctx["d_pretrain"]):
        d_step(d0, g0, opt_d0, real_batch(), z_batch())

    # The same G, D and z for both losses: the first gradients differ only by the loss.
    z0 = torch.randn(4096, z_dim, generator=gen)
    first = {name: g_gradient(d0, g0, z0, name) for name in LOSSES}
    ratio = first["nonsaturating"]["grad_norm"] / first["minimax"]["grad_norm"]
    weight_ratio = first["minimax"]["weight_nonsaturating"] / first["minimax"]["weight_minimax"]

    curves, coverage = {}, {}
    state = gen.get_state()
    for name in LOSSES:
        gen.set_state(state)  # both runs see the same batches
        g_net, d_net = copy.deepcopy(g0), copy.deepcopy(d0)
        opt_g = torch.optim.Adam(g_net.parameters(), lr=ctx["lr_g"], betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(d_net.parameters(), lr=ctx["lr_d"], betas=(0.5, 0.999))
        rows = []
        for _ in range(ctx["steps"]):
            d_step(d_net, g_net, opt_d, real_batch(), z_batch())
            rows.append(g_gradient(d_net, g_net, z_batch(), name))
            opt_g.step()
        curves[name] = rows
        with torch.no_grad():
            fakes = g_net(z0)
        cover = mode_coverage(fakes, centres, sigma)
        coverage[name] = {
            "modes": cover["modes"],
            "hq": cover["hq"],
            "mean_distance_to_nearest_mode": float(
                torch.cdist(fakes, centres).min(1).values.mean()
            ),
        }
    early = min(ctx["early"], ctx["steps"])
    early_norm = {n: float(np.mean([r["grad_norm"] for r in curves[n][:early]])) for n in LOSSES}
    early_ratio = early_norm["nonsaturating"] / early_norm["minimax"]
    late = {n: curves[n][-early:] for n in LOSSES}
    late_norm = {n: float(np.mean([r["grad_norm"] for r in late[n]])) for n in LOSSES}
    late_d_fake = {n: float(np.mean([r["d_fake"] for r in late[n]])) for n in LOSSES}

    d_fake0 = first["minimax"]["d_fake"]
    checks = [
        # Both sides are float64: autograd and the closed form agree to rounding (~1e-16).
        close("minimax d/da vs -sigmoid(a), max abs error", err_mm, 0.0, 1e-6),
        close("nonsaturating d/da vs -(1 - sigmoid(a)), max abs error", err_ns, 0.0, 1e-6),
        # The premise: the pretrained D rejects the fakes (mean D(G(z)) small).
        at_most("mean D(G(z)) after D's head start", d_fake0, 0.05),
        # Per sample the two gradients w.r.t. G are the same vector d a / d theta scaled by
        # sigmoid(a) and 1 - sigmoid(a); with mean D(G(z)) <= 0.05 the weights differ by a factor
        # of 19 or more. The sums over samples need not keep that factor exactly (directions
        # differ between samples), so the bound asked of the norms is half of it: 10.
        at_least("G gradient norm ratio nonsaturating / minimax, first step", ratio, 10.0),
        # In training D keeps learning but so does G: Adam divides each step by the gradient's
        # running size, so even minimax's tiny gradient moves G and D(G(z)) climbs, and the
        # ratio falls toward (1 - D) / D. Over the first few steps D still rejects the fakes.
        at_least(
            f"same ratio, mean norms over the first {early} training steps", early_ratio, 10.0
        ),
    ]
    numbers = {
        "mean_d_fake_first_step": d_fake0,
        "weight_ratio_first_step": weight_ratio,
        "grad_norm_first_step": {n: first[n]["grad_norm"] for n in LOSSES},
        "grad_norm_ratio_first_step": ratio,
        f"grad_norm_mean_first_{early}_steps": early_norm,
        "grad_norm_ratio_early": early_ratio,
        f"grad_norm_mean_last_{early}_steps": late_norm,
        "grad_norm_ratio_late": late_norm["nonsaturating"] / late_norm["minimax"],
        f"mean_d_fake_last_{early}_steps": late_d_fake,
        "coverage_after_training": coverage,
        "autograd_max_abs_error": {"minimax": err_mm, "nonsaturating": err_ns},
    }
    return LabOutput(checks, figure(a, grads, curves, ratio), numbers)


def figure(a, grads, curves, ratio):
    fig, (ax1, ax2, ax3) = pyplot().subplots(1, 3, figsize=(15, 4.2))
    x = a.numpy()
    d = torch.sigmoid(a).numpy()
    ax1.semilogy(x, d, color="C3", label="minimax: |d/da| = σ(a) = D(G(z))")
    ax1.semilogy(x, 1 - d, color="C0", label="non-saturating: |d/da| = 1 − D(G(z))")
    every = slice(None, None, 8)
    mm, ns = grads["minimax"].abs().numpy(), grads["nonsaturating"].abs().numpy()
    ax1.semilogy(x[every], mm[every], "o", color="C3", ms=3, label="autograd through the losses")
    ax1.semilogy(x[every], ns[every], "o", color="C0", ms=3)
    edge = float(np.log(0.05 / 0.95))
    ax1.axvspan(x[0], edge, color="0.9")
    ax1.text(x[0] + 0.5, 0.3, "D(G(z)) < 0.05:\nD rejects the fakes", fontsize=8, va="top")
    ax1.set(xlabel="D's logit a on a fake (D = σ(a))", ylabel="|d loss / d a|", ylim=(1e-6, 3))
    ax1.set_title("gradient of the generator loss w.r.t. D's logit")
    ax1.legend(fontsize=8, loc="lower right")
    colour = {"minimax": "C3", "nonsaturating": "C0"}
    for name, rows in curves.items():
        steps = np.arange(1, len(rows) + 1)
        ax2.loglog(steps, [r["grad_norm"] for r in rows], color=colour[name], label=name)
        ax3.loglog(steps, [r["d_fake"] for r in rows], color=colour[name], label=name)
    ax2.set(
        xlabel="training step (log scale)",
        ylabel="‖∇_θ G loss‖",
        title=f"G's gradient norm (first step: ×{ratio:.0f})",
    )
    ax3.set(
        xlabel="training step (log scale)",
        ylabel="mean D(G(z))",
        title="how strongly D rejects the fakes",
    )
    ax2.legend(fontsize=8)
    ax3.legend(fontsize=8)
    return fig
