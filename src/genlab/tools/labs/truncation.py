"""Lab ``truncation``: the truncation trick trades diversity for fidelity (Brock et al. 2019,
arXiv:1809.11096, section 3.1: latents drawn from a normal truncated to [-b, b]; Karras et al.
2019, arXiv:1812.04948: psi-scaling towards the mean latent, whose psi = 0 sample is the
"mean" image). A GAN is trained on ``ring8`` with genlab's 2-D recipe (``gan_ring8``); its
samples are scored in the plane itself against held-out points with genlab's precision and
recall (k = 3, Kynkaanniemi et al. 2019) and the Frechet distance of Gaussians.

Checks: genlab's truncated-normal sampler stays in [-b, b] and has the truncated normal's
distribution (Kolmogorov-Smirnov against scipy's ``truncnorm``, at the 1 % critical value);
every psi = 0 sample is G(0); the GAN fits the ring; and the claim, measured: recall falls as
the bound tightens, and so does precision. On a ring of separate modes the fidelity half of the
claim fails: a continuous G maps the centre of the latent between modes (G(0) is neither a mode
nor the mean of the samples), so truncation concentrates samples there.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import torch
from scipy import stats as sps

from genlab.api import load, load_config, train
from genlab.data import load_data
from genlab.metrics import stats
from genlab.models.base import evaluating
from genlab.models.sampling import pyplot, sample_truncated, truncated_normal
from genlab.tools.labs.base import LabContext, LabOutput, at_least, at_most, quiet_run, register_lab

KS_CRITICAL_1PCT = 1.628  # sqrt(-log(0.005) / 2): the two-sided 1 % critical value times sqrt(N)
MIN_FIT = 0.25  # untruncated precision below this: the GAN has not found the modes yet


def train_ring8_gan(ctx: LabContext, folder: Path):
    """The trained GAN and its data, from a run in ``folder`` (a temporary one: a lab can be
    run again into the same output folder)."""
    steps = ctx["steps"]
    overrides = {
        **quiet_run(ctx, steps),
        "model.hidden": ctx["hidden"],
        "train.batch_size": ctx["batch_size"],
    }
    run_dir = train("gan", preset="gan_ring8", overrides=overrides, out=folder / "run")
    return load(run_dir), load_data(load_config(run_dir).data)


@register_lab(
    "truncation",
    claim="truncating the latent trades diversity (recall) for fidelity (precision); "
    "at psi = 0 every sample is G(0)",
    defaults={
        "steps": 3000,
        "hidden": [256, 256, 256],
        "batch_size": 256,
        "n": 2000,
        "bounds": [0.1, 0.25, 0.5, 1.0, 1.5, 2.0],
        "psis": [0.0, 0.25, 0.5, 0.75, 1.0],
    },
    quick={
        "steps": 1200,
        "hidden": [128, 128],
        "n": 400,
        "bounds": [0.1, 0.5, 2.0],
    },
)
def run(ctx: LabContext) -> LabOutput:
    g = torch.Generator().manual_seed(ctx.seed)
    # The sampler against scipy's truncated normal (an independent implementation).
    z = truncated_normal(20_000, 1, 1.0, g).view(-1).double()
    ks = sps.kstest(z.numpy(), sps.truncnorm(-1.0, 1.0).cdf).statistic
    checks = [
        at_most("max |z| of draws truncated at 1", z.abs().max().item(), 1.0),
        at_most("KS distance to scipy truncnorm(-1, 1)", ks, KS_CRITICAL_1PCT / math.sqrt(len(z))),
    ]
    with tempfile.TemporaryDirectory(prefix="genlab-lab-") as tmp:
        model, data = train_ring8_gan(ctx, Path(tmp))
    n = ctx["n"]
    real = data.test.x[:n].float()
    rows = []
    for bound in [*ctx["bounds"], None]:
        fake = sample_truncated(model, n, bound, generator=torch.Generator().manual_seed(1))
        scores = stats.prdc(real, fake.float(), 3, 5)
        rows.append({"bound": bound, **scores, "fid": stats.fid(real, fake.float())})
    with evaluating(model), torch.no_grad():
        z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(2))
        centre = model.generate(torch.zeros(1, model.latent_dim))
        psi_rows = []
        for psi in ctx["psis"]:
            fake = model.generate(psi * z)
            psi_rows.append({"psi": psi, **stats.prdc(real, fake.float(), 3, 5)})
            if psi == 0:
                spread = (fake - centre).norm(dim=1).max().item()
    tight, free = rows[0], rows[-1]
    sample_mean = sample_truncated(model, n, None, generator=torch.Generator().manual_seed(4))
    sample_mean = sample_mean.float().mean(0)
    checks += [
        at_most("psi = 0: max distance of a sample to G(0)", spread, 1e-6),
        # The GAN must have found the ring, or the comparison below says nothing.
        at_least("untruncated precision (the GAN fits ring8)", free["precision"], MIN_FIT),
        # Measured on a ring of separate modes, the claim's fidelity half fails: the centre of
        # the latent maps between modes, so precision falls with the bound instead of rising.
        at_most(
            f"precision at bound {tight['bound']} vs untruncated",
            tight["precision"],
            free["precision"],
        ),
        at_most(
            f"recall at bound {tight['bound']} vs untruncated", tight["recall"], free["recall"]
        ),
    ]
    fig, (ax1, ax2) = pyplot().subplots(1, 2, figsize=(11, 4.2))
    xs = [r["bound"] for r in rows[:-1]]
    for key, style in (("precision", "o-"), ("recall", "s-")):
        (line,) = ax1.plot(xs, [r[key] for r in rows[:-1]], style, label=f"{key} (bound b)")
        ax1.axhline(free[key], color=line.get_color(), ls=":", lw=1)
    ax1.set(xlabel="truncation bound b (dotted: untruncated)", ylabel="share", ylim=(0, 1.05),
            title="fidelity vs diversity on ring8")  # fmt: skip
    ax1.legend(fontsize=8)
    pts = data.test.x[:n]
    ax2.scatter(pts[:, 0], pts[:, 1], s=2, c="lightgrey", label="held-out data")
    for bound, colour in ((None, "tab:blue"), (ctx["bounds"][len(xs) // 2], "tab:orange"),
                          (ctx["bounds"][0], "tab:red")):  # fmt: skip
        fake = sample_truncated(model, 300, bound, generator=torch.Generator().manual_seed(3))
        ax2.scatter(fake[:, 0], fake[:, 1], s=3, c=colour, label=f"b = {bound or 'none'}")
    ax2.scatter(*centre[0].tolist(), marker="*", s=150, c="black", label="G(0), psi = 0")
    ax2.set(title="samples", aspect="equal")
    ax2.legend(fontsize=7, loc="upper right")
    numbers = {
        "bounds": rows,
        "psi": psi_rows,
        "ks": ks,
        "G(0)": centre[0].tolist(),
        "mean of G(z)": sample_mean.tolist(),
    }
    return LabOutput(checks, fig, numbers)
