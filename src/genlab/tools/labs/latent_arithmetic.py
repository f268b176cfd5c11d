"""Lab ``latent-arithmetic``: an attribute is a direction in a VAE's code space (White 2016,
arXiv:1609.04468; Larsen et al. 2016, arXiv:1512.09300): v = mean code of images with the
attribute minus the mean code of those without, and decoding z + t v moves the attribute's
factor in proportion to t. For codes drawn from N(0, I) in d dimensions, spherical
interpolation (slerp) keeps the norm near sqrt(d) while linear interpolation (lerp) passes
through codes of norm near sqrt(d / 2), which the prior almost never draws (White 2016).

A conv VAE is trained on ``shapes`` (32x32 grey, whose factors are known). The factor of a
decoded image is read by a measurement independent of the model: the column of the intensity
centroid (for ``x``) and the square root of the summed intensity (for ``scale``), each mapped
to the factor by a line fitted on real training images, whose factors are known. For test
images WITHOUT the attribute (``left``, ``small``), codes z + t v, t in [0, 1], are decoded and
measured. If the codes were linear in the factor, the slope would be the difference of the
factor's means between the two groups, E[f | attr] - E[f | no attr] (0.3 for x: the means of
U[0.5, 0.8] and U[0.2, 0.5]).

Checks: the library's slerp and lerp against closed forms (the mean norm of (1 - t) a + t b
for independent N(0, I) draws is sqrt((1 - t)^2 + t^2) E[chi_d]; slerp between equal norms
keeps the norm and turns by t W); the VAE learned the position; the measurements are
calibrated on held-out real images; and, measured, the sign, size and per-image correlation
of the factor's response to t.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import torch
from scipy import special
from scipy import stats as sps
from torch import Tensor

from genlab.api import load, load_config, train
from genlab.data import load_data
from genlab.data.pixels import to_model
from genlab.models.interpolation import lerp, slerp
from genlab.models.sampling import make_grid, pyplot
from genlab.tools import latent
from genlab.tools.labs.base import (
    LabContext,
    LabOutput,
    at_least,
    at_most,
    close,
    quiet_run,
    register_lab,
)

SIGMAS = 4.0  # tolerance of a sample mean: 4 standard errors (two-sided p about 6e-5)
FLOAT32 = 1e-5  # relative rounding of float32 arithmetic on norms of order sqrt(d)
# attribute -> (factor it is about, index in Split.factors, the attribute it is edited from)
EDITS = {"right": ("x", 2, "left"), "large": ("scale", 0, "small")}


# ----------------------------------------------------------------------------- measurements


def measure(images: Tensor) -> dict[str, np.ndarray]:
    """Model-free readings of grey images (N, 1, H, W) in [-1, 1]: intensity in [0, 1] above
    the image's median (its background: a shape covers under a fifth of the pixels, and a
    decoder's background is not exactly black, which would pull the centroid to the middle)
    summed ("mass", an area that blurring preserves) and the centroid's column / row as
    fractions of the side (0 = left / top), the convention of the factors x, y."""
    a = np.clip((images.double().numpy()[:, 0] + 1) / 2, 0, 1)
    a = np.clip(a - np.median(a, axis=(1, 2), keepdims=True), 0, None)
    side = a.shape[-1]
    mass = a.sum((1, 2))
    pos = (np.arange(side) + 0.5) / side
    safe = np.maximum(mass, 1e-9)
    return {
        "sqrt_mass": np.sqrt(mass),
        "x": (a.sum(1) * pos).sum(1) / safe,
        "y": (a.sum(2) * pos).sum(1) / safe,
    }


READING = {"x": "x", "scale": "sqrt_mass", "y": "y"}  # factor -> the reading it is fitted on


def calibrate(images: Tensor, factors: Tensor) -> dict[str, tuple[float, float]]:
    """Per factor (x, y, scale): (slope, intercept) of the least-squares line factor ~ reading
    on real images with known factors."""
    m = measure(images)
    index = {"scale": 0, "x": 2, "y": 3}
    return {f: tuple(np.polyfit(m[READING[f]], factors[:, i].numpy(), 1)) for f, i in index.items()}


def read_factor(images: Tensor, lines: dict, factor: str) -> np.ndarray:
    slope, intercept = lines[factor]
    return slope * measure(images)[READING[factor]] + intercept


# ----------------------------------------------------------------------------- norms


def chi_mean(d: int) -> float:
    """E|z| for z ~ N(0, I_d): sqrt(2) Gamma((d + 1) / 2) / Gamma(d / 2)."""
    return math.sqrt(2) * math.exp(special.gammaln((d + 1) / 2) - special.gammaln(d / 2))


def angle_between(a: Tensor, b: Tensor) -> Tensor:
    """Angle (rad) between the last-axis vectors of a and b, as atan2(|a x b|, a . b): accurate
    also near 0, where arccos of the cosine loses half the digits."""
    dot = (a * b).sum(-1)
    cross = (b - (dot / (a * a).sum(-1))[..., None] * a).norm(dim=-1) * a.norm(dim=-1)
    return torch.atan2(cross, dot)


def norm_checks(d: int, n: int, ts: Tensor, g: torch.Generator) -> tuple[list, dict]:
    a, b = torch.randn(n, d, generator=g).double(), torch.randn(n, d, generator=g).double()
    mean_chi = chi_mean(d)
    sd_chi = math.sqrt(d - mean_chi**2)  # E|z|^2 = d
    lerp_norms = lerp(a, b, ts).norm(dim=2)  # (n, T)
    slerp_norms = slerp(a, b, ts).norm(dim=2)
    # (1 - t) a + t b ~ N(0, ((1 - t)^2 + t^2) I): its norm is that std times a chi_d.
    scale = torch.sqrt((1 - ts) ** 2 + ts**2).double()
    lerp_dev = (lerp_norms.mean(0) - scale * mean_chi).abs().max().item()
    mid = len(ts) // 2  # ts holds t = 1/2 in the middle
    ends = torch.cat([a.norm(dim=1), b.norm(dim=1)])
    # Equal-norm endpoints: slerp keeps the norm exactly and its angle to a grows as t W.
    ua = a / a.norm(dim=1, keepdim=True) * math.sqrt(d)
    ub = b / b.norm(dim=1, keepdim=True) * math.sqrt(d)
    path = slerp(ua.float(), ub.float(), ts).double()  # in float32, as codes are
    w = angle_between(ua, ub)  # (n,)
    angle = angle_between(ua[:, None].expand_as(path), path)  # (n, T)
    norm_err = (path.norm(dim=2) / math.sqrt(d) - 1).abs().max().item()
    angle_err = (angle - ts.double()[None, :] * w[:, None]).abs().max().item()
    se = sd_chi / math.sqrt(n)
    checks = [
        close(
            f"lerp: max |mean norm - sqrt((1-t)^2 + t^2) E chi_{d}| over t",
            lerp_dev,
            0.0,
            SIGMAS * se,
        ),
        close(
            f"lerp midpoint mean norm vs sqrt(1/2) E chi_{d} = {mean_chi / math.sqrt(2):.3f}",
            lerp_norms[:, mid].mean().item(),
            mean_chi / math.sqrt(2),
            SIGMAS * se / math.sqrt(2),
        ),
        close(
            f"endpoint mean norm vs E chi_{d} = {mean_chi:.3f}",
            ends.mean().item(),
            mean_chi,
            SIGMAS * sd_chi / math.sqrt(2 * n),
        ),
        # Unequal norms r_a, r_b: the slerp midpoint has norm sqrt(r_a^2 + r_b^2 + 2 r_a r_b
        # cos W) / (2 cos(W / 2)), r_a when r_a = r_b; its mean sits within the spread of the
        # endpoint norms, so it is compared with E chi_d at the tolerance of one norm, sd_chi.
        close(
            f"slerp midpoint mean norm vs E chi_{d}",
            slerp_norms[:, mid].mean().item(),
            mean_chi,
            sd_chi,
        ),
        close(
            "slerp, equal norms: max relative norm change along the path",
            norm_err,
            0.0,
            FLOAT32 * 10,
        ),
        # float32 paths: an angle is resolved to about 1e-7 rad relative to |path|
        close("slerp, equal norms: max |angle to a - t W| (rad)", angle_err, 0.0, FLOAT32),
    ]
    numbers = {
        "d": d,
        "E chi_d": mean_chi,
        "sd chi_d": sd_chi,
        "t": ts.tolist(),
        "lerp mean norm": lerp_norms.mean(0).tolist(),
        "slerp mean norm": slerp_norms.mean(0).tolist(),
        "lerp sd norm": lerp_norms.std(0).tolist(),
        "slerp sd norm": slerp_norms.std(0).tolist(),
    }
    return checks, numbers


# ----------------------------------------------------------------------------- the VAE


def train_vae(ctx: LabContext, folder: Path):
    steps = ctx["steps"]
    overrides = {
        **quiet_run(ctx, steps),
        "train.batch_size": ctx["batch_size"],
        "data.num_samples": ctx["num_samples"],
        "model.latent_dim": ctx["latent_dim"],
        "model.width": ctx["width"],
        # A Gaussian likelihood of fixed std, as in docs/latent.md: with the Bernoulli default
        # the decodings stay round blobs this early.
        "model.likelihood": "gaussian",
        "model.sigma": 0.1,
    }
    run_dir = train("vae", preset="vae", data="shapes", overrides=overrides, out=folder / "vae")
    return load(run_dir), load_data(load_config(run_dir).data)


def critical_r(points: int, p: float = 0.01) -> float:
    """One-sided critical Pearson r at level p for ``points`` pairs under no correlation."""
    t = sps.t.ppf(1 - p, points - 2)
    return float(t / math.sqrt(points - 2 + t * t))


@register_lab(
    "latent-arithmetic",
    claim="adding an attribute vector (mean code with minus without) to a VAE code moves the "
    "attribute's true factor in proportion; slerp keeps the prior's norm, lerp shrinks it",
    defaults={
        "steps": 1500,
        "width": 16,
        "latent_dim": 10,
        "batch_size": 64,
        "num_samples": 20_000,
        "n_vector": 5000,
        "n_edit": 100,
        "t_steps": 9,
        "n_pairs": 5000,
    },
    quick={"steps": 150, "width": 8, "num_samples": 3000, "n_vector": 2000, "n_edit": 40},
)
def run(ctx: LabContext) -> LabOutput:
    g = torch.Generator().manual_seed(ctx.seed)
    d = ctx["latent_dim"]
    ts = torch.linspace(0, 1, ctx["t_steps"])
    checks, norms = norm_checks(d, ctx["n_pairs"], ts, g)
    with tempfile.TemporaryDirectory(prefix="genlab-lab-") as tmp:
        model, data = train_vae(ctx, Path(tmp))
    spec, train_split, test = data.spec, data.train, data.test
    n_vec = min(ctx["n_vector"], len(train_split))
    lines = calibrate(to_model(train_split.x[:n_vec]), train_split.factors[:n_vec])
    test_x = to_model(test.x)
    real_r = {
        f: np.corrcoef(read_factor(test_x, lines, f), test.factors[:, i].numpy())[0, 1]
        for f, i in (("x", 2), ("scale", 0))
    }
    codes = latent.encode(model, train_split.x[:n_vec])
    recon = latent.decode(model, latent.encode(model, test.x))
    recon_r = np.corrcoef(read_factor(recon, lines, "x"), test.factors[:, 2].numpy())[0, 1]
    # How much of a change of the true factor survives encoding and decoding: the slope of the
    # reading of the reconstructions on the inputs' factor (1: all of it).
    recon_gain = {
        f: float(np.polyfit(test.factors[:, i].numpy(), read_factor(recon, lines, f), 1)[0])
        for f, i in (("x", 2), ("scale", 0))
    }
    checks += [
        # Anti-aliased shapes: the centroid column is the centre up to rounding.
        at_least("calibration on real test images: r(centroid reading, x)", real_r["x"], 0.99),
        # sqrt(mass) is scale times sqrt(area constant), which differs by shape (square 2,
        # triangle 3 sqrt(3) / 4: a factor 1.3 in sqrt), so it reads scale only roughly.
        at_least(
            "calibration on real test images: r(sqrt mass reading, scale)", real_r["scale"], 0.8
        ),
        # The VAE learned the position: its reconstructions' x follows the inputs'.
        at_least("VAE learned: r(x of reconstructions, true x)", recon_r, 0.9),
    ]
    r_crit = critical_r(len(ts))
    edits, panels = {}, {}
    for attr, (factor, index, opposite) in EDITS.items():
        mask = latent.attribute_mask(train_split, spec, attr)[:n_vec]
        v = latent.attribute_vector(codes, mask)
        f_true = train_split.factors[:n_vec, index]
        predicted = (f_true[mask].mean() - f_true[~mask].mean()).item()
        without = latent.attribute_mask(test, spec, opposite).nonzero().squeeze(1)
        targets = test.x[without[: ctx["n_edit"]]]
        z = latent.encode(model, targets)
        path = (z[:, None] + ts[None, :, None] * v).reshape(-1, d)
        decoded = latent.decode(model, path)
        values = read_factor(decoded, lines, factor).reshape(len(z), len(ts))
        other = "y" if factor == "x" else "x"
        off = read_factor(decoded, lines, other).reshape(len(z), len(ts))
        tt = ts.numpy()
        slopes = np.array([np.polyfit(tt, row, 1)[0] for row in values])
        off_slopes = np.array([np.polyfit(tt, row, 1)[0] for row in off])
        rs = np.array([np.corrcoef(tt, row)[0, 1] for row in values])
        slope_se = slopes.std(ddof=1) / math.sqrt(len(slopes))
        edits[attr] = {
            "factor": factor,
            "vector_norm": v.norm().item(),
            "linear prediction": predicted,
            "mean slope": float(slopes.mean()),
            "slope se": float(slope_se),
            "slope / prediction": float(slopes.mean() / predicted),
            "median r": float(np.median(rs)),
            "share r above critical": float((rs > r_crit).mean()),
            f"mean slope of {other}": float(off_slopes.mean()),
            "n": len(z),
        }
        panels[attr] = (values, decoded.view(len(z), len(ts), *decoded.shape[1:]), predicted)
        checks += [
            # The expected sign, significantly: the mean slope over the images at least
            # SIGMAS standard errors above 0.
            at_least(
                f"{attr}: mean slope d{factor}/dt / its standard error (sign +)",
                slopes.mean() / slope_se,
                SIGMAS,
            ),
            # Measured: the response falls short of what a code linear in the factor would give.
            at_most(
                f"{attr}: slope / linear-code prediction {predicted:.3f}",
                slopes.mean() / predicted,
                1.0,
            ),
            # the one-sided 1 % critical r of a Pearson correlation over the t_steps points
            at_least(
                f"{attr}: median per-image r(t, {factor}) vs critical r {r_crit:.2f}",
                float(np.median(rs)),
                r_crit,
            ),
        ]
    numbers = {
        "norms": norms,
        "edits": edits,
        "calibration": {f: list(map(float, ln)) for f, ln in lines.items()},
        "calibration r": real_r,
        "reconstruction r(x)": recon_r,
        "reconstruction gain": recon_gain,
        "critical r": r_crit,
        "mean norm of the VAE's codes": codes.norm(dim=1).mean().item(),
    }
    fig = figure(ts, panels, norms, edits, recon_gain)
    return LabOutput(checks, fig, numbers)


def figure(ts: Tensor, panels: dict, norms: dict, edits: dict, gain: dict):
    fig, axes = pyplot().subplots(2, 3, figsize=(14, 8.2))
    for col, (attr, (values, decoded, predicted)) in enumerate(panels.items()):
        factor = edits[attr]["factor"]
        ax = axes[0, col]
        ax.imshow(
            make_grid(decoded[:6].reshape(-1, *decoded.shape[2:]), nrow=len(ts))[..., 0],
            cmap="gray",
        )
        ax.set(title=f"z + t v_{attr}, t = 0 .. 1 (columns)", xticks=[], yticks=[])
        ax = axes[1, col]
        for row in values[:30]:
            ax.plot(ts, row, color="tab:blue", alpha=0.2, lw=0.8)
        mean = values.mean(0)
        ax.plot(
            ts, mean, "o-", color="tab:blue", label=f"mean, slope {edits[attr]['mean slope']:.3f}"
        )
        ax.plot(
            ts,
            mean[0] + predicted * ts.numpy(),
            "k--",
            label=f"linear-code prediction, slope {predicted:.3f}",
        )
        ax.set(
            xlabel="t",
            ylabel=f"measured {factor} of the decoding",
            title=f"{factor} along z + t v_{attr} ({edits[attr]['n']} test images)",
        )
        ax.legend(fontsize=8)
    ax = axes[0, 2]
    t = np.array(norms["t"])
    chi = norms["E chi_d"]
    ax.plot(t, norms["lerp mean norm"], "o", color="tab:orange", label="lerp, measured")
    ax.plot(
        t,
        np.sqrt((1 - t) ** 2 + t**2) * chi,
        "-",
        color="tab:orange",
        label="sqrt((1-t)^2 + t^2) E chi_d",
    )
    ax.plot(t, norms["slerp mean norm"], "s", color="tab:green", label="slerp, measured")
    ax.axhline(chi, color="tab:green", lw=1, label=f"E chi_d = {chi:.2f}")
    ax.axhline(chi / math.sqrt(2), color="grey", ls=":", lw=1, label="E chi_d / sqrt 2")
    ax.set(
        xlabel="t",
        ylabel="mean norm",
        ylim=(0, chi * 1.25),
        title=f"mean norm between N(0, I) draws, d = {norms['d']}",
    )
    ax.legend(fontsize=8, loc="lower left")
    ax = axes[1, 2]
    ax.axis("off")
    lines = ["measured slope per unit t", "vs a code linear in the factor", ""]
    for a, e in edits.items():
        f = e["factor"]
        lines += [
            f"v_{a} (|v| = {e['vector_norm']:.2f}), {f}:",
            f"  slope {e['mean slope']:.3f} +- {e['slope se']:.3f}",
            f"  linear-code prediction {e['linear prediction']:.3f}",
            f"  ratio {e['slope / prediction']:.2f}; reconstruction gain {gain[f]:.2f}",
            f"  median per-image r {e['median r']:.3f}",
            "",
        ]
    ax.text(0, 1, "\n".join(lines), va="top", fontsize=9.5, family="monospace")
    fig.tight_layout()
    return fig
