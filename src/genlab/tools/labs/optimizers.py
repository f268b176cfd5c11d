"""Lab ``optimizers``: adaptive optimizers (Adam, Kingma & Ba 2015, arXiv:1412.6980; RMSprop,
Tieleman & Hinton 2012, lecture 6.5) train generative models in far fewer steps than SGD at
the same learning rate, because their step is the gradient divided by a running estimate of
its size, so every weight moves by about lr whatever its gradient's scale. The recipes of the
notes: Adam 1e-3 with betas (0.9, 0.999) for the VAE (Kingma & Welling 2014), Adam 2e-4 with
beta1 = 0.5 for DCGAN-style GANs (Radford et al. 2016, arXiv:1511.06434), RMSprop 5e-5 for
the clipped WGAN critic (Arjovsky et al. 2017, arXiv:1701.07875, Algorithm 1: momentum made
its training unstable).

Every optimizer is built by the library from a ``TrainConfig`` (``genlab.models.optim.
make_optimizer``: ``train.optimizer``, ``train.lr``, ``train.betas``; SGD carries momentum 0.9).

Checks: three steps of each optimizer on the scalar quadratic f(t) = a t^2 / 2 against its
update rule written out by hand (Adam with bias correction, RMSprop, SGD with momentum); the
VAE (``vae``, MLP, ``digits`` at 16 px) learns under Adam (test ELBO); and the comparisons,
measured: the VAE's test ELBO after the same number of steps under each optimizer, SGD also at
a larger lr, and the 2-D GAN (``gan_ring8``'s networks) under the DCGAN recipe vs SGD.
"""

from __future__ import annotations

import math

import torch

from genlab.core.config import TrainConfig, build_config
from genlab.data.base import load_data
from genlab.data.pixels import to_model
from genlab.metrics.modes import mode_coverage, scored_samples
from genlab.models.base import build_model
from genlab.models.optim import make_optimizer
from genlab.models.sampling import pyplot
from genlab.tools.labs.base import LabContext, LabOutput, at_least, close, register_lab

EPS = 1e-8  # PyTorch's eps of Adam and RMSprop (make_optimizer keeps the default)
RMS_ALPHA = 0.99  # PyTorch's RMSprop smoothing constant
MOMENTUM = 0.9  # make_optimizer's SGD momentum


def by_hand(kind: str, a: float, t0: float, lr: float, betas: tuple[float, float], n: int):
    """The iterates t_1..t_n of one optimizer on f(t) = a t^2 / 2 (gradient a t), float64."""
    t, m, v, out = t0, 0.0, 0.0, []
    for k in range(1, n + 1):
        g = a * t
        if kind == "adam":
            b1, b2 = betas
            m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
            m_hat, v_hat = m / (1 - b1**k), v / (1 - b2**k)
            t -= lr * m_hat / (math.sqrt(v_hat) + EPS)
        elif kind == "rmsprop":
            v = RMS_ALPHA * v + (1 - RMS_ALPHA) * g * g
            t -= lr * g / (math.sqrt(v) + EPS)
        else:  # sgd: PyTorch's momentum buffer b = mu b + g (no dampening), t -= lr b
            m = MOMENTUM * m + g if k > 1 else g
            t -= lr * m
        out.append(t)
    return out


def by_library(kind: str, a: float, t0: float, lr: float, betas, n: int) -> list[float]:
    t = torch.tensor([t0], dtype=torch.float64, requires_grad=True)
    opt = make_optimizer([t], TrainConfig(optimizer=kind, lr=lr, betas=betas))
    out = []
    for _ in range(n):
        opt.zero_grad()
        (0.5 * a * t**2).sum().backward()
        opt.step()
        out.append(t.item())
    return out


def vae_run(ctx: LabContext, optimizer: str, lr: float) -> dict:
    """Train the MLP VAE on 16 px digits; the training loss (negative ELBO per image, nats)
    at every step and the test ELBO (one posterior sample per image) at the end."""
    overrides = {
        "model.arch": "mlp", "model.hidden": ctx["vae_hidden"], "model.latent_dim": 8,
        "data.image_size": 16, "train.optimizer": optimizer, "train.lr": lr,
        "train.batch_size": ctx["batch"], "seed": ctx.seed,
    }  # fmt: skip
    cfg = build_config("vae", data="digits", preset="vae", overrides=overrides)
    torch.manual_seed(ctx.seed)
    bundle = load_data(cfg.data)
    model = build_model(cfg.model, bundle.spec)
    opts = model.configure_optimizers(cfg.train)
    x, test = to_model(bundle.train.x), to_model(bundle.test.x)
    order = torch.Generator().manual_seed(ctx.seed + 1)
    before = test_elbo(model, test, ctx.seed)
    losses = []
    for step in range(ctx["vae_steps"]):
        index = torch.randint(len(x), (ctx["batch"],), generator=order)
        losses.append(float(model.train_step({"x": x[index]}, opts, step)["loss"]))
    return {"losses": losses, "before": before, "after": test_elbo(model, test, ctx.seed)}


def test_elbo(model, test: torch.Tensor, seed: int) -> float:
    """Mean ELBO (nats per image) over the test images: the mean of the library's log
    importance weights for one posterior sample, a fixed noise seed."""
    gen = torch.Generator().manual_seed(seed + 7)
    return model.log_importance_weights(test, 1, generator=gen).mean().item()


def gan_run(ctx: LabContext, optimizer: str, lr: float, betas) -> dict:
    """``gan_ring8``'s model (narrower) on a ring of wider modes, with a given optimizer."""
    overrides = {
        "model.hidden": ctx["gan_hidden"], "train.optimizer": optimizer, "train.lr": lr,
        "train.betas": list(betas), "train.lr_decay": "none", "data.sigma": ctx["gan_sigma"],
        "seed": ctx.seed,
    }  # fmt: skip
    cfg = build_config(preset="gan_ring8", overrides=overrides)
    torch.manual_seed(ctx.seed)
    bundle = load_data(cfg.data)
    model = build_model(cfg.model, bundle.spec)
    opts = model.configure_optimizers(cfg.train)
    x, b = bundle.train.x, cfg.train.batch_size
    order = torch.Generator().manual_seed(ctx.seed + 1)
    centres = torch.tensor(bundle.spec.extra["centres"])
    sigma = float(bundle.spec.extra["sigma"])
    logs = []
    for step in range(ctx["gan_steps"]):
        index = torch.randint(len(x), (b,), generator=order)
        out = model.train_step({"x": x[index]}, opts, step)
        logs.append({k: float(out[k]) for k in ("d_loss", "g_loss")})
    got = mode_coverage(scored_samples(model, ctx["n"], ctx.seed), centres, sigma)
    return {"logs": logs, **got}


def smooth(xs: list[float], w: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(xs):
        acc += v
        if i >= w:
            acc -= xs[i - w]
        out.append(acc / min(i + 1, w))
    return out


@register_lab(
    "optimizers",
    claim="Adam (and RMSprop) train a VAE and a GAN far faster than SGD at the same learning "
    "rate: their step is normalised by the gradient's running size",
    defaults={
        "vae_steps": 800,
        "vae_hidden": [256, 128],
        "batch": 128,
        "lr": 1e-3,  # the VAE preset's Adam lr, given to every optimizer
        "sgd_lr": 0.05,  # SGD again at a larger lr
        "gan_steps": 600,
        "gan_hidden": [64, 64],
        "gan_sigma": 0.1,
        "gan_lr": 2e-4,  # DCGAN's Adam lr (beta1 0.5), given to SGD too
        "n": 2000,
    },
    quick={"vae_steps": 80, "vae_hidden": [64], "gan_steps": 40, "n": 500},
)
def run(ctx: LabContext) -> LabOutput:
    checks = []
    a, t0, lr, n = 3.0, 2.0, 0.1, 3
    for kind, betas in (("adam", (0.5, 0.999)), ("rmsprop", (0.5, 0.999)), ("sgd", (0.5, 0.999))):
        ours = by_library(kind, a, t0, lr, betas, n)
        ref = by_hand(kind, a, t0, lr, betas, n)
        # float64 scalars, a few operations per step: agreement to rounding (~1e-16).
        err = max(abs(p - q) for p, q in zip(ours, ref, strict=True))
        checks.append(close(f"{kind}: 3 steps on a t^2/2 vs the update rule (max abs)", err, 0,
                            1e-12))  # fmt: skip

    vae = {
        "adam": vae_run(ctx, "adam", ctx["lr"]),
        "rmsprop": vae_run(ctx, "rmsprop", ctx["lr"]),
        "sgd": vae_run(ctx, "sgd", ctx["lr"]),
        "sgd_high": vae_run(ctx, "sgd", ctx["sgd_lr"]),
    }
    adam = vae["adam"]
    # Sanity: Adam's VAE learned (the ELBO of 16 px digits starts near -180 nats per image).
    checks.append(at_least("VAE, Adam: test ELBO gain over training (nats per image)",
                           adam["after"] - adam["before"], 20))  # fmt: skip
    numbers: dict = {"vae": {k: {"test_elbo_before": r["before"], "test_elbo_after": r["after"],
                                 "train_loss_last50": sum(r["losses"][-50:]) / 50}
                             for k, r in vae.items()}}  # fmt: skip
    if not ctx.quick:
        # Measured in the default run: the ELBO after the same number of steps.
        checks += [
            at_least("VAE test ELBO: Adam minus SGD, both at lr",
                     adam["after"] - vae["sgd"]["after"], 5),
            at_least("VAE test ELBO: RMSprop minus SGD, both at lr",
                     vae["rmsprop"]["after"] - vae["sgd"]["after"], 5),
            # Adam and RMSprop end within a nat of each other.
            close("VAE test ELBO: Adam minus RMSprop", adam["after"] - vae["rmsprop"]["after"], 0,
                  1),
            at_least("VAE test ELBO: Adam minus SGD at sgd_lr",
                     adam["after"] - vae["sgd_high"]["after"], 0),
        ]  # fmt: skip

    gans = {
        "adam": gan_run(ctx, "adam", ctx["gan_lr"], (0.5, 0.999)),
        "sgd": gan_run(ctx, "sgd", ctx["gan_lr"], (0.5, 0.999)),
    }
    numbers["gan"] = {k: {m: r[m] for m in ("modes", "hq", "kl")} for k, r in gans.items()}
    if not ctx.quick:
        checks += [
            # Sanity: Adam's GAN has started to find the ring (an untrained G covers no mode);
            # it is not converged at this length.
            at_least("GAN, Adam(2e-4, 0.5): modes covered", gans["adam"]["modes"], 4),
            at_least("GAN: modes covered, Adam minus SGD (same lr)",
                     gans["adam"]["modes"] - gans["sgd"]["modes"], 3),
            at_least("GAN: HQ share Adam minus SGD (same lr)",
                     gans["adam"]["hq"] - gans["sgd"]["hq"], 0.05),
        ]  # fmt: skip

    fig, axes = pyplot().subplots(1, 3, figsize=(15, 4.3))
    w = max(1, ctx["vae_steps"] // 40)
    labels = {
        "adam": f"Adam lr {ctx['lr']:g}",
        "rmsprop": f"RMSprop lr {ctx['lr']:g}",
        "sgd": f"SGD (mom. 0.9) lr {ctx['lr']:g}",
        "sgd_high": f"SGD lr {ctx['sgd_lr']:g}",
    }
    for k, r in vae.items():
        axes[0].plot(smooth(r["losses"], w), label=f"{labels[k]}: test ELBO {r['after']:.1f}")
    axes[0].set(xlabel="step", ylabel="nats per image",
                title="VAE on 16 px digits: training loss (-ELBO)")  # fmt: skip
    axes[0].legend(fontsize=7)
    wg = max(1, ctx["gan_steps"] // 30)
    for k, r in gans.items():
        name = "Adam(2e-4, 0.5, 0.999)" if k == "adam" else f"SGD lr {ctx['gan_lr']:g}"
        for key, ax in (("d_loss", axes[1]), ("g_loss", axes[2])):
            ax.plot(smooth([e[key] for e in r["logs"]], wg),
                    label=f"{name}: {r['modes']:g} modes, {100 * r['hq']:.0f}% HQ")  # fmt: skip
    axes[1].set(xlabel="generator step", ylabel="loss", title="2-D GAN on ring8: D loss")
    axes[2].set(xlabel="generator step", ylabel="loss", title="2-D GAN on ring8: G loss")
    axes[1].axhline(2 * math.log(2), color="grey", ls=":", lw=1)
    axes[2].axhline(math.log(2), color="grey", ls=":", lw=1)
    axes[1].legend(fontsize=7)
    axes[2].legend(fontsize=7)
    return LabOutput(checks, fig, numbers)
