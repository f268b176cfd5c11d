"""Lab ``batchnorm-covariate-shift``: does batch norm help a DCGAN by holding its layers' input
distributions still?

Ioffe & Szegedy 2015 (arXiv:1502.03167) call the change of a layer's input distribution while
the layers below it train "internal covariate shift" and introduce batch norm (BN) to reduce
it. Santurkar, Tsipras, Ilyas & Madry 2018 (arXiv:1805.11604) argue that BN's benefit does not
come from that: a network trained with BN whose BN outputs are then shifted and rescaled by
random noise that changes at every step (a covariate shift injected on purpose, their Sec. 2.1)
trains about as well as with plain BN, and BN's layer inputs need not be any more stable.

A small DCGAN (the library's ``dcgan`` on 16x16 ``digits``) is trained in four variants:
``model.g_norm`` / ``model.d_norm`` = batch / batch (the DCGAN), none / none, batch / none with
``model.spectral_norm=true`` (SN-GAN's discriminator, Miyato et al. 2018, arXiv:1802.05957,
with DCGAN's loss), and the BN one with Santurkar et al.'s noise after every BN layer. Forward
hooks record, at checkpoints, each conv layer's output (what a BN layer normalises) and each
activation's output (the next layer's input) on a fixed latent batch for G and a fixed real
batch for D, in train mode (BN uses the batch's statistics, as in training). The drift of a
channel between consecutive checkpoints t-1 -> t is

    |mu_t - mu_{t-1}| / sigma_{t-1} + |log sigma_t - log sigma_{t-1}|

(a mean shift in units of the old spread plus a log change of scale), averaged over the
channels of a layer and summed over the checkpoints. Sample quality is the Frechet distance of
Gaussians fitted to the pixels (256-D) of 1,000 samples and of the training images.

Exact part: in train mode a BatchNorm2d layer outputs, per channel and before its affine,
(x - mean) / sqrt(var + eps) with the batch's mean and biased variance, so a mean of 0 and a
standard deviation of sqrt(var / (var + eps)), 1 up to eps / (2 var).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from genlab.core.config import build_config
from genlab.data.base import load_data
from genlab.data.pixels import to_model
from genlab.metrics import stats
from genlab.models.base import build_model
from genlab.models.sampling import pyplot
from genlab.tools.labs.base import LabContext, LabOutput, at_least, at_most, close, register_lab

VARIANTS = {
    "batch norm": {"model.g_norm": "batch", "model.d_norm": "batch"},
    "no norm": {"model.g_norm": "none", "model.d_norm": "none"},
    "spectral norm": {"model.g_norm": "batch", "model.d_norm": "none", "model.spectral_norm": True},
    "noisy batch norm": {"model.g_norm": "batch", "model.d_norm": "batch"},
}
CONV = (nn.Conv2d, nn.ConvTranspose2d)
ACT = (nn.ReLU, nn.LeakyReLU)
BN = nn.BatchNorm2d


# ----------------------------------------------------------------------------- exact part


def batchnorm_exact(seed: int) -> dict[str, float]:
    """A fresh BatchNorm2d with the identity affine in train mode on a random batch, against
    (x - mean) / sqrt(var + eps) computed directly (float32)."""
    g = torch.Generator().manual_seed(seed)
    x = 3.0 * torch.randn(64, 8, 5, 5, generator=g) + torch.randn(1, 8, 1, 1, generator=g) * 4
    bn = nn.BatchNorm2d(8).train()  # weight 1, bias 0
    with torch.no_grad():
        y = bn(x)
    return {"direct": (y - direct_normalise(x, bn.eps)).abs().max().item(), **channel_moments(y)}


def direct_normalise(x: torch.Tensor, eps: float) -> torch.Tensor:
    x = x.double()
    mean = x.mean((0, 2, 3), keepdim=True)
    var = x.var((0, 2, 3), keepdim=True, correction=0)
    return ((x - mean) / (var + eps).sqrt()).float()


def channel_moments(y: torch.Tensor) -> dict[str, float]:
    """Max |per-channel mean| and max |per-channel biased std - 1| of (B, C, H, W)."""
    y = y.double()
    return {
        "max_abs_mean": y.mean((0, 2, 3)).abs().max().item(),
        "max_abs_std_minus_1": (y.std((0, 2, 3), correction=0) - 1).abs().max().item(),
    }


def trained_bn_check(model, z: torch.Tensor) -> dict[str, float]:
    """The first BN layer of a trained generator, in train mode on the batch z: its output with
    the affine undone, (y - beta) / gamma, against the direct normalisation of its input."""
    bn = next(m for m in model.generator.modules() if isinstance(m, BN))
    seen = {}

    def grab(module, inputs, output):
        seen["x"], seen["y"] = inputs[0].detach().clone(), output.detach().clone()

    saved = snapshot_buffers(model)
    handle = bn.register_forward_hook(grab)
    try:
        with torch.no_grad():
            model.generator.train()(z)
    finally:
        handle.remove()
        restore_buffers(model, saved)
    w, b = bn.weight.detach()[None, :, None, None], bn.bias.detach()[None, :, None, None]
    unit = (seen["y"] - b) / w
    x = seen["x"].double()
    var = x.var((0, 2, 3), correction=0)
    expected_std = (var / (var + bn.eps)).sqrt()
    got_std = unit.double().std((0, 2, 3), correction=0)
    return {
        "direct": (unit - direct_normalise(seen["x"], bn.eps)).abs().max().item(),
        "max_abs_mean": unit.double().mean((0, 2, 3)).abs().max().item(),
        "max_abs_std_vs_expected": (got_std - expected_std).abs().max().item(),
        "min_input_var": var.min().item(),
    }


# ----------------------------------------------------------------------------- measuring


def snapshot_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """BN running statistics and spectral-norm power-iteration vectors change on every
    train-mode forward; a measurement saves and restores them."""
    return {k: v.clone() for k, v in model.named_buffers()}


def restore_buffers(model: nn.Module, saved: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for k, v in model.named_buffers():
            v.copy_(saved[k])


def hooked_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """(label, module) of every conv layer (pre-norm) and activation (next layer's input)."""
    out, conv_i, act_i = [], 0, 0
    for m in net.modules():
        if isinstance(m, CONV):
            conv_i += 1
            out.append((f"conv{conv_i} out", m))
        elif isinstance(m, ACT):
            act_i += 1
            out.append((f"act{act_i} out", m))
    return out


def channel_stats(net: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-channel (mean, std) (2, C) of every hooked layer's output on x, train mode. The stats
    are taken inside the hook: an in-place activation later overwrites a conv's output."""
    found: dict[str, torch.Tensor] = {}
    handles = []
    for label, m in hooked_layers(net):

        def hook(module, inputs, output, label=label):
            o = output.detach().double()
            dims = (0, 2, 3) if o.dim() == 4 else (0,)
            found[label] = torch.stack([o.mean(dims), o.std(dims, correction=0)])

        handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            net.train()(x)
    finally:
        for h in handles:
            h.remove()
    return found


def drift(history: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Per layer: the sum over consecutive checkpoints of the channel-mean drift (docstring)."""
    out = {}
    for label in history[0]:
        total = 0.0
        for a, b in itertools.pairwise(h[label] for h in history):
            sa, sb = a[1].clamp_min(1e-12), b[1].clamp_min(1e-12)
            total += float(((b[0] - a[0]).abs() / sa + (sb.log() - sa.log()).abs()).mean())
        out[label] = total
    return out


class BatchNormNoise:
    """Santurkar et al.'s noisy BN: after every BN layer, y -> s * y + m with per-channel
    s = exp(N(0, scale^2)) and m ~ N(0, shift^2), redrawn at every training step."""

    def __init__(self, model: nn.Module, shift: float, scale: float, seed: int) -> None:
        self.layers = [m for m in model.modules() if isinstance(m, BN)]
        self.shift, self.scale = shift, scale
        self.gen = torch.Generator().manual_seed(seed)
        self.noise: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for m in self.layers:
            m.register_forward_hook(self.apply)
        self.redraw()

    def redraw(self) -> None:
        for m in self.layers:
            c = m.num_features
            s = torch.exp(self.scale * torch.randn(c, generator=self.gen))
            self.noise[id(m)] = (s, self.shift * torch.randn(c, generator=self.gen))

    def apply(self, module, inputs, output):
        if not module.training:
            return output
        s, m = self.noise[id(module)]
        shape = (1, -1, 1, 1) if output.dim() == 4 else (1, -1)
        return output * s.view(shape) + m.view(shape)


def pixel_fd(model, real: torch.Tensor, n: int, seed: int) -> float:
    saved = snapshot_buffers(model)
    fake = model.sample(n, generator=torch.Generator().manual_seed(seed))
    restore_buffers(model, saved)
    return stats.fid(real.flatten(1), fake.flatten(1))


# ----------------------------------------------------------------------------- the lab


def variant_config(variant: str, ctx: LabContext):
    overrides = {
        "data.image_size": 16,
        "model.g_width": ctx["width"],
        "model.d_width": ctx["width"],
        "model.latent_dim": ctx["latent_dim"],
        "train.batch_size": ctx["batch"],
        "train.lr": ctx["lr"],
        **VARIANTS[variant],
    }
    return build_config(preset="dcgan", data="digits", overrides=overrides)


def train_variant(variant: str, ctx: LabContext, x, fixed_z, fixed_real, order) -> dict:
    cfg = variant_config(variant, ctx)
    torch.manual_seed(ctx.seed)
    model = build_model(cfg.model, load_data(cfg.data).spec).train()
    noise = None
    if variant == "noisy batch norm":
        noise = BatchNormNoise(model, ctx["noise_shift"], ctx["noise_scale"], ctx.seed + 7)
    opts = model.configure_optimizers(cfg.train)
    hist_g, hist_d, fd, losses = [], [], [], []

    def measure(step: int) -> None:
        saved = snapshot_buffers(model)
        hist_g.append(channel_stats(model.generator, fixed_z))
        hist_d.append(channel_stats(model.discriminator, fixed_real))
        restore_buffers(model, saved)
        fd.append((step, pixel_fd(model, x, ctx["fd_samples"], ctx.seed + 3)))
        model.train()

    measure(0)
    for step, index in enumerate(order):
        if noise is not None:
            noise.redraw()
        logs = model.train_step({"x": x[index]}, opts, step)
        losses.append((float(logs["d_loss"]), float(logs["g_loss"])))
        if (step + 1) % ctx["every"] == 0:
            measure(step + 1)
    return {"model": model, "hist_g": hist_g, "hist_d": hist_d, "fd": fd, "losses": losses}


def layer_summary(history) -> dict[str, float]:
    d = drift(history)
    pre = [v for k, v in d.items() if k.startswith("conv")]
    nxt = [v for k, v in d.items() if k.startswith("act")]
    return {"conv_out": sum(pre) / len(pre), "act_out": sum(nxt) / len(nxt), "layers": d}


@register_lab(
    "batchnorm-covariate-shift",
    claim="batch norm reduces internal covariate shift in a DCGAN, and that is why it helps "
    "(Ioffe & Szegedy 2015; disputed by Santurkar et al. 2018)",
    defaults={
        "variants": list(VARIANTS),
        "steps": 1200,
        "every": 100,
        "width": 16,
        "latent_dim": 16,
        "batch": 64,
        "lr": 2e-4,
        "probe": 256,
        "fd_samples": 1000,
        "noise_shift": 0.5,
        "noise_scale": 0.5,
    },
    # Quick: 40 steps at a 10x learning rate, enough for the BN variants to learn something
    # (the no-norm one diverges at this rate).
    quick={
        "steps": 40,
        "every": 20,
        "width": 8,
        "latent_dim": 8,
        "batch": 32,
        "lr": 2e-3,
        "probe": 128,
        "fd_samples": 400,
    },
)
def run(ctx: LabContext) -> LabOutput:
    variants = [v for v in VARIANTS if v in ctx["variants"]]
    checks = []
    ex = batchnorm_exact(ctx.seed)
    # float32 outputs of order 1: a max error of ~1e-6 is rounding; the input's variance is
    # about 9 or more, so the eps term moves the std from 1 by at most eps / 18 = 6e-7.
    checks += [
        close("fresh BN (identity affine) vs direct normalisation", ex["direct"], 0, 1e-5),
        close("fresh BN: max |per-channel mean|", ex["max_abs_mean"], 0, 1e-5),
        close("fresh BN: max |per-channel std - 1|", ex["max_abs_std_minus_1"], 0, 1e-5),
    ]
    cfg = variant_config(variants[0], ctx)
    x = to_model(load_data(cfg.data).train.x)
    g = torch.Generator().manual_seed(ctx.seed)
    fixed_z = torch.randn(ctx["probe"], ctx["latent_dim"], generator=g)
    fixed_real = x[torch.randperm(len(x), generator=g)[: ctx["probe"]]]
    order = [torch.randint(len(x), (ctx["batch"],), generator=g) for _ in range(ctx["steps"])]
    runs = {v: train_variant(v, ctx, x, fixed_z, fixed_real, order) for v in variants}

    summary = {}
    for v, r in runs.items():
        summary[v] = {
            "G": layer_summary(r["hist_g"]),
            "D": layer_summary(r["hist_d"]),
            "fd_init": r["fd"][0][1],
            "fd_final": r["fd"][-1][1],
            "fd_best": min(f for _, f in r["fd"]),
        }
    numbers = {
        "fresh_bn": ex,
        "summary": summary,
        "fd_curves": {v: r["fd"] for v, r in runs.items()},
    }
    if "batch norm" in runs:
        t = trained_bn_check(runs["batch norm"]["model"], fixed_z)
        numbers["trained_bn"] = t
        checks += [
            close("trained G's first BN, affine undone, vs direct", t["direct"], 0, 1e-5),
            close("trained G's first BN: max |per-channel mean|", t["max_abs_mean"], 0, 1e-5),
            close("... max |std - sqrt(var / (var + eps))|", t["max_abs_std_vs_expected"], 0, 1e-5),
        ]
    return LabOutput(
        checks + measured_checks(summary, not ctx.quick), figure(runs, summary, ctx), numbers
    )


def measured_checks(summary: dict, full: bool) -> list:
    """What the runs show; each comparison only where both variants were run."""
    out = []
    bn, none = summary.get("batch norm"), summary.get("no norm")
    noisy, sn = summary.get("noisy batch norm"), summary.get("spectral norm")
    if bn:
        # The DCGAN learned: without it the comparisons below say nothing.
        out.append(
            at_most("batch norm: final FD / FD at init", bn["fd_final"] / bn["fd_init"], 0.5)
        )
        # BN fixes the next layer's input only up to its learned affine: the conv outputs it
        # normalises are free to drift (the net is invariant to their scale), and do.
        out.append(
            at_least(
                "batch norm G: drift of conv outputs vs of activations",
                bn["G"]["conv_out"],
                bn["G"]["act_out"],
            )
        )
    if bn and none:
        # Ioffe & Szegedy's premise, measured as moment drift: it holds, by a wide margin.
        for net in ("G", "D"):
            out.append(
                at_most(
                    f"{net} activation drift, batch norm vs no norm",
                    bn[net]["act_out"],
                    none[net]["act_out"],
                )
            )
    if bn and noisy:
        # The premise of Santurkar et al.'s test: the injected noise does shift the inputs.
        out.append(
            at_least(
                "G activation drift, noisy BN vs 5 x batch norm",
                noisy["G"]["act_out"],
                5 * bn["G"]["act_out"],
            )
        )
        # ... and, trained long enough to tell them apart, the noisy network ends worse than
        # plain BN (partly against their finding that it trains about as well). After the
        # quick run's 40 steps the two are within a few FD units either way, so only the
        # default run asks it.
        if full:
            out.append(
                at_least("final FD, noisy BN vs batch norm", noisy["fd_final"], bn["fd_final"])
            )
    if noisy and none:
        # ... yet far better than no normalisation, at a drift as large or larger.
        out.append(at_most("final FD, noisy BN vs no norm", noisy["fd_final"], none["fd_final"]))
    if sn and none:
        out.append(
            at_most(
                "D activation drift, spectral norm vs no norm",
                sn["D"]["act_out"],
                none["D"]["act_out"],
            )
        )
        out.append(at_most("final FD, spectral norm vs no norm", sn["fd_final"], none["fd_final"]))
    return out


def figure(runs, summary, ctx):
    fig, axes = pyplot().subplots(2, 3, figsize=(15, 8.5))
    (ax1, ax2, ax3), (ax4, ax5, ax6) = axes
    colours = {v: f"C{i}" for i, v in enumerate(VARIANTS)}
    for v, r in runs.items():
        steps = [s for s, _ in r["fd"]]
        ax1.plot(steps, [f for _, f in r["fd"]], "o-", ms=3, color=colours[v], label=v)
        d_loss = torch.tensor([a for a, _ in r["losses"]])
        k = max(1, len(d_loss) // 30)
        smooth = d_loss.unfold(0, k, k).mean(1) if len(d_loss) >= k else d_loss
        ax2.plot((torch.arange(len(smooth)) + 0.5) * k, smooth, color=colours[v], label=v)
    ax1.set(
        xlabel="step",
        ylabel="pixel Frechet distance to the data",
        yscale="log",
        title="sample quality during training",
    )
    ax1.legend(fontsize=8)
    ax2.set(xlabel="step", ylabel="D loss (mean over windows)", title="discriminator loss")
    ax2.legend(fontsize=8)
    for ax, net in ((ax3, "G"), (ax4, "D")):
        names = list(runs)
        pos = torch.arange(len(names)).float()
        for j, (key, label) in enumerate(
            (
                ("conv_out", "conv outputs (pre-norm)"),
                ("act_out", "activations (next layer's input)"),
            )
        ):
            vals = [summary[v][net][key] for v in names]
            ax.bar(pos + (j - 0.5) * 0.38, vals, 0.38, label=label, color=f"C{j + 6}")
        ax.set_xticks(pos, [n.replace(" ", "\n") for n in names], fontsize=8)
        ax.set(
            ylabel="drift summed over checkpoints",
            yscale="log",
            title=f"{net}: per-layer drift of channel mean / std",
        )
        ax.legend(fontsize=8)
    for ax, net, key in ((ax5, "hist_g", "act1 out"), (ax6, "hist_d", "act2 out")):
        for v, r in runs.items():
            steps = [s for s, _ in r["fd"]]
            std = [h[key][1].mean().item() for h in r[net]]
            ax.semilogy(steps, std, "o-", ms=3, color=colours[v], label=v)
        which = "G" if net == "hist_g" else "D"
        ax.set(
            xlabel="step",
            ylabel="channel std, averaged over channels",
            title=f"{which} {key} on the fixed batch",
        )
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
