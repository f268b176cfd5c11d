"""Lab ``dying-relu``: dead units in a GAN discriminator with ReLU vs LeakyReLU(0.2) (the notes'
reason for LeakyReLU in D: Radford et al. 2016, arXiv:1511.06434; Maas, Hannun & Ng 2013,
"Rectifier Nonlinearities Improve Neural Network Acoustic Models").

The ``gan_ring8`` preset (MLP G and D, ring8 data) is trained briefly at its learning rate and
at a higher one; the ReLU variant is the same model with each LeakyReLU of D's trunk swapped
for a ReLU. A unit is dead on a batch when its activation is 0 for every input of the batch
(here: a fixed real batch and the current G's samples). Also measured: the norm of D's gradient
with respect to its input at G's samples, the signal G is trained with.

Exact parts. For pre-activations a = W x + b, ReLU'(a) = 0 where a < 0 and LeakyReLU'(a) =
slope there, so with every a < 0 the input-gradient of u . act(a) is 0 (ReLU) and
slope W^T u (LeakyReLU). And a unit dead on a batch has zero gradient for its incoming weights
and bias on that batch (each is a sum of ReLU'(a) times something over the batch): nothing in
that batch can revive it.
"""

from __future__ import annotations

import torch
from torch import nn

from genlab.core.config import build_config
from genlab.data.base import load_data
from genlab.models.base import build_model
from genlab.models.sampling import pyplot
from genlab.tools.labs.base import LabContext, LabOutput, at_least, at_most, close, register_lab

SLOPE = 0.2  # the discriminator's LeakyReLU slope (genlab.models.gan.mlp_trunk)


def hand_built_check(seed: int) -> dict[str, float]:
    """Input-gradients of u . act(W x + b) with every pre-activation negative, by autograd,
    against 0 (ReLU) and slope W^T u (LeakyReLU); float64."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(16, 4, generator=g, dtype=torch.float64)
    x = torch.randn(4, generator=g, dtype=torch.float64)
    b = -(w @ x).abs() - 1.0  # every pre-activation w_i . x + b_i = -1 or below
    u = torch.randn(16, generator=g, dtype=torch.float64)
    out = {}
    for name, act, expect in (
        ("relu", nn.ReLU(), torch.zeros(4, dtype=torch.float64)),
        ("leaky", nn.LeakyReLU(SLOPE), SLOPE * w.T @ u),
    ):
        xi = x.clone().requires_grad_(True)
        (u * act(w @ xi + b)).sum().backward()
        out[name] = (xi.grad - expect).abs().max().item()
    out["max_preactivation"] = (w @ x + b).max().item()
    return out


def make_model(ctx: LabContext, act: str, lr: float, seed: int):
    hidden = [ctx["hidden"]] * ctx["layers"]
    overrides = {"model.hidden": hidden, "train.lr": lr, "train.batch_size": ctx["batch"]}
    cfg = build_config(preset="gan_ring8", overrides=overrides)
    torch.manual_seed(seed)
    bundle = load_data(cfg.data)
    model = build_model(cfg.model, bundle.spec)
    trunk = model.discriminator.trunk
    if act == "relu":
        for i, m in enumerate(trunk):
            if isinstance(m, nn.LeakyReLU):
                trunk[i] = nn.ReLU()
    return cfg, bundle, model


def activations(model, x: torch.Tensor) -> list[torch.Tensor]:
    """D's hidden activations (B, width) per layer, on x."""
    acts = [m for m in model.discriminator.trunk if isinstance(m, nn.ReLU | nn.LeakyReLU)]
    outs: list[torch.Tensor] = []
    hooks = [a.register_forward_hook(lambda m, i, o: outs.append(o.detach())) for a in acts]
    try:
        with torch.no_grad():
            model.critic(x)
    finally:
        for h in hooks:
            h.remove()
    return outs


def dead_masks(model, x: torch.Tensor) -> list[torch.Tensor]:
    return [(o == 0).all(0) for o in activations(model, x)]


def input_gradient_norm(model, fake: torch.Tensor) -> tuple[float, float]:
    """Mean |dD/dx| over G's samples, and the share of samples where it is exactly 0."""
    f = fake.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.critic(f).sum(), f)
    norms = grad.norm(dim=1)
    return norms.mean().item(), (norms == 0).float().mean().item()


def dead_unit_gradient(model, x: torch.Tensor, fake: torch.Tensor, masks) -> float:
    """Largest |gradient| of D's loss w.r.t. the incoming weights and bias of the units dead on
    the batch (real x and ``fake``), over all layers; 0.0 when there are none."""
    linears = [m for m in model.discriminator.trunk if isinstance(m, nn.Linear)]
    model.discriminator.zero_grad(set_to_none=True)
    loss = model.d_loss(model.critic(x), model.critic(fake.detach()))
    loss.backward()
    worst = 0.0
    for lin, dead in zip(linears, masks, strict=True):
        if dead.any():
            worst = max(worst, lin.weight.grad[dead].abs().max().item())
            worst = max(worst, lin.bias.grad[dead].abs().max().item())
    model.discriminator.zero_grad(set_to_none=True)
    return worst


def train_and_measure(ctx: LabContext, act: str, lr: float, seed: int) -> dict:
    cfg, bundle, model = make_model(ctx, act, lr, seed)
    opts = model.configure_optimizers(cfg.train)
    x = bundle.train.x
    g = torch.Generator().manual_seed(seed + 1)
    probe = x[torch.randint(len(x), (ctx["probe"],), generator=g)]
    noise = torch.Generator().manual_seed(seed + 2)
    every = max(1, ctx["steps"] // ctx["points"])
    history = []
    for step in range(ctx["steps"] + 1):
        if step % every == 0 or step == ctx["steps"]:
            fake = model.sample(ctx["probe"], generator=torch.Generator().manual_seed(seed + 3))
            masks = dead_masks(model, torch.cat([probe, fake]))
            grad, zero = input_gradient_norm(model, fake)
            history.append({
                "step": step,
                "dead_share": [m.float().mean().item() for m in masks],
                "dead_all": torch.cat(masks).float().mean().item(),
                "input_grad": grad,
                "zero_grad_share": zero,
            })  # fmt: skip
        if step == ctx["steps"]:
            break
        index = torch.randint(len(x), (ctx["batch"],), generator=noise)
        model.train_step({"x": x[index]}, opts, step)
    fake = model.sample(ctx["probe"], generator=torch.Generator().manual_seed(seed + 3))
    both = torch.cat([probe, fake])
    dead_grad = dead_unit_gradient(model, probe, fake, dead_masks(model, both))
    return {"history": history, "dead_unit_gradient": dead_grad}


@register_lab(
    "dying-relu",
    claim="ReLU discriminator units die (zero on every input, so zero gradient) while "
    "LeakyReLU(0.2) ones cannot; LeakyReLU passes slope * W^T upstream where ReLU passes 0",
    defaults={
        "lrs": [1e-3, 5e-3],
        "steps": 600,
        "hidden": 64,
        "layers": 3,
        "batch": 256,
        "probe": 512,
        "points": 12,
    },
    quick={"steps": 30, "probe": 256, "points": 3},
)
def run(ctx: LabContext) -> LabOutput:
    checks = []
    hand = hand_built_check(ctx.seed)
    # float64, a few products of unit-size numbers: autograd agrees to ~1e-16.
    checks.append(
        close("all-negative layer: ReLU input-grad vs 0 (max abs)", hand["relu"], 0, 1e-6)
    )
    checks.append(
        close("all-negative layer: LeakyReLU input-grad vs 0.2 W^T u", hand["leaky"], 0, 1e-6)
    )

    lrs = [float(v) for v in ctx["lrs"]]
    runs = {}
    for i, lr in enumerate(lrs):
        for act in ("relu", "leaky"):
            runs[(act, lr)] = train_and_measure(ctx, act, lr, ctx.seed * 1000 + 10 * i)
    # LeakyReLU's activation is 0 only where its pre-activation is exactly 0, so no unit is
    # dead on a batch of distinct inputs: the bound is 0, at every measured step.
    leaky_dead = max(
        h["dead_all"] for (a, _), r in runs.items() if a == "leaky" for h in r["history"]
    )
    checks.append(at_most("LeakyReLU D: largest share of dead units, any step", leaky_dead, 0))
    # What a dead unit gets from the batch it is dead on: exactly nothing.
    dead_grad = max(r["dead_unit_gradient"] for (a, _), r in runs.items() if a == "relu")
    checks.append(close("ReLU D: |loss gradient| into its dead units (max)", dead_grad, 0, 0))
    # ReLU units are dead from the start (a unit whose weights on the non-negative outputs of
    # the layer below are mostly negative is off for every input); the measured share is
    # 15-45% of a layer. The bound claims that a twentieth of the units are dead at the end.
    for lr in lrs:
        final = runs[("relu", lr)]["history"][-1]["dead_all"]
        checks.append(at_least(f"ReLU D, lr={lr:g}: share of dead units at the end", final, 0.05))

    fig, axes = pyplot().subplots(1, 3, figsize=(15, 4.3))
    for i, lr in enumerate(lrs):
        for act, style in (("relu", "-"), ("leaky", "--")):
            h = runs[(act, lr)]["history"]
            steps = [p["step"] for p in h]
            label = f"{'ReLU' if act == 'relu' else 'LeakyReLU'} lr={lr:g}"
            if act == "relu":
                for layer in range(ctx["layers"]):
                    axes[0].plot(steps, [p["dead_share"][layer] for p in h], style,
                                 color=f"C{i}", alpha=0.35 + 0.25 * layer, lw=1)  # fmt: skip
            axes[1].plot(steps, [p["dead_all"] for p in h], style, color=f"C{i}", label=label)
            axes[2].plot(steps, [p["input_grad"] for p in h], style, color=f"C{i}", label=label)
    axes[0].set(xlabel="step", ylabel="share of dead units",
                title="ReLU D: dead units per layer (darker: deeper)")  # fmt: skip
    axes[1].set(xlabel="step", ylabel="share of dead units", title="all of D's hidden units")
    axes[2].set(xlabel="step", ylabel="mean |dD/dx| at G's samples", yscale="log",
                title="input-gradient G receives")  # fmt: skip
    axes[1].legend(fontsize=8)
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    numbers = {
        "hand_built": hand,
        "runs": {f"{act} lr={lr:g}": r for (act, lr), r in runs.items()},
        "final": {
            f"{act} lr={lr:g}": {
                "dead_share_per_layer": r["history"][-1]["dead_share"],
                "dead_all": r["history"][-1]["dead_all"],
                "dead_all_at_init": r["history"][0]["dead_all"],
                "input_grad": r["history"][-1]["input_grad"],
                "zero_grad_share": r["history"][-1]["zero_grad_share"],
            }
            for (act, lr), r in runs.items()
        },
    }
    return LabOutput(checks, fig, numbers)
