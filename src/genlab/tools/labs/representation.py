"""Lab ``representation``: how much class information unsupervised features hold, read two ways.
Radford et al. 2016 (DCGAN, arXiv:1511.06434, section 5.1) classify CIFAR-10 with a linear
model on a trained discriminator's features; the claim of the course notes is that features
learned without labels (a GAN's discriminator, a VAE's encoder) hold the classes more usefully
than raw pixels do.

A DCGAN and a conv VAE are trained on ``digits`` (16x16, 1,617 / 180 images); each feature set
(D's penultimate features, the VAE's posterior mean, raw pixels, and as controls the same two
networks at their initialisation) is read by ``genlab.tools.probe``'s linear probe (labels used,
scored on the test split) and by K-means with K = 10 on the training split (labels used only to
score: the Hungarian-matched accuracy and the purity of the clusters).

Exact checks of the clustering score: clusters of well-separated blobs found by ``fit_kmeans``
score 1; renaming labels or clusters changes nothing; the Hungarian matching equals a brute
force over all K! matchings (K = 6) and beats a greedy one where greedy is wrong. Measured
checks: both models learned something (G's samples nearer to the data than at initialisation,
the VAE's reconstructions better than the mean image), every feature set beats chance, and
which features beat pixels, under each reading, in these runs.
"""

from __future__ import annotations

import itertools
import math
import tempfile
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from threadpoolctl import threadpool_limits
from torch import Tensor

from genlab.api import load, load_config, train
from genlab.data import load_data
from genlab.metrics import stats
from genlab.models.base import build_model
from genlab.models.sampling import pyplot
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
from genlab.tools.probe import fit_kmeans, linear_probe, model_features, pixels

EXACT = 1e-12  # the scores are ratios of integer counts: equal up to rounding


# ----------------------------------------------------------------------------- clustering score


def contingency(clusters: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """(k, C) counts: images of cluster i with label j."""
    table = np.zeros((k, int(labels.max()) + 1), dtype=np.int64)
    np.add.at(table, (clusters, labels), 1)
    return table


def matched_accuracy(clusters: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of images whose cluster, mapped one-to-one to a label by the Hungarian algorithm
    (the mapping with the most agreements; scipy's ``linear_sum_assignment``), is their label."""
    table = contingency(clusters, labels, k)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / len(labels))


def purity(clusters: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of images in their cluster's most frequent label (clusters may share a label)."""
    return float(contingency(clusters, labels, k).max(1).sum() / len(labels))


def brute_force_accuracy(table: np.ndarray) -> float:
    """The best one-to-one matching of a square table by trying all k! permutations."""
    k = len(table)
    best = max(table[np.arange(k), list(p)].sum() for p in itertools.permutations(range(k)))
    return float(best / table.sum())


def kmeans_clusters(x: Tensor, k: int, seed: int) -> np.ndarray:
    """Cluster of each row of x (N, D) under ``fit_kmeans``'s centroids (the nearest one)."""
    centroids = fit_kmeans(x, k, seed)
    return torch.cdist(x.double(), centroids).argmin(1).numpy()


def exact_checks(seed: int) -> list:
    rng = np.random.default_rng(seed)
    # Six blobs of 50 points, std 0.1, centres 10 apart: K-means must find them exactly.
    centres = 10.0 * np.stack([np.arange(6), rng.permutation(6)], 1)
    truth = np.repeat(np.arange(6), 50)
    pts = torch.from_numpy(centres[truth] + 0.1 * rng.standard_normal((300, 2)))
    found = kmeans_clusters(pts, 6, seed)
    # A random clustering of random labels: renaming either side must not change the score.
    c, y = rng.integers(0, 6, 500), rng.integers(0, 6, 500)
    base = matched_accuracy(c, y, 6)
    renamed = max(
        abs(matched_accuracy(rng.permutation(6)[c], rng.permutation(6)[y], 6) - base)
        for _ in range(20)
    )
    brute = max(
        abs(matched_accuracy(c, y, 6) - brute_force_accuracy(contingency(c, y, 6)))
        for c, y in ((rng.integers(0, 6, 200), rng.integers(0, 6, 200)) for _ in range(10))
    )
    # Greedy (cluster 0 takes its best label first) scores (3 + 0) / 7; the best matching 4 / 7.
    c2 = np.array([0, 0, 0, 0, 0, 1, 1])
    y2 = np.array([0, 0, 0, 1, 1, 0, 0])
    return [
        close(
            "K-means on 6 separated blobs: matched accuracy",
            matched_accuracy(found, truth, 6),
            1.0,
            EXACT,
        ),
        close("same clusters: purity", purity(found, truth, 6), 1.0, EXACT),
        close("max change under renamed labels and clusters", renamed, 0.0, EXACT),
        close("max |Hungarian - brute force over 720 matchings|", brute, 0.0, EXACT),
        close(
            "table [[3, 2], [2, 0]]: matched accuracy (greedy 3/7)",
            matched_accuracy(c2, y2, 2),
            4 / 7,
            EXACT,
        ),
        at_least("purity - matched accuracy (random clustering)", purity(c, y, 6) - base, 0.0),
    ]


# ----------------------------------------------------------------------------- runs


def train_run(ctx: LabContext, name: str, folder: Path, overrides: dict):
    """(trained model, the same network at its initialisation, data) of a tiny run."""
    steps = ctx[f"{name}_steps"]
    overrides = {
        **quiet_run(ctx, steps),
        "train.batch_size": ctx["batch_size"],
        "data.image_size": 16,
        "model.latent_dim": ctx["latent_dim"],
        **overrides,
    }
    # The family's recipe preset (its optimiser settings), on 16x16 digits.
    run_dir = train(name, preset=name, data="digits", overrides=overrides, out=folder / name)
    cfg = load_config(run_dir)
    data = load_data(cfg.data)
    torch.manual_seed(cfg.seed)  # the trainer seeds torch like this before building the model
    init = build_model(cfg.model, data.spec).eval()
    return load(run_dir), init, data


def null_accuracy(clusters: np.ndarray, labels: np.ndarray, k: int, n: int, seed: int) -> float:
    """The largest matched accuracy of the clusters against n shufflings of the labels: what a
    clustering unrelated to the classes scores (matching alone lifts it above 1 / C)."""
    rng = np.random.default_rng(seed)
    return max(matched_accuracy(clusters, rng.permutation(labels), k) for _ in range(n))


@register_lab(
    "representation",
    claim="features learned without labels (a DCGAN discriminator, a VAE encoder) hold the "
    "classes better than raw pixels, for a linear probe and for K-means",
    defaults={
        "dcgan_steps": 1000,
        "vae_steps": 1000,
        "dcgan_width": 16,
        "vae_width": 16,
        "latent_dim": 16,
        "batch_size": 64,
        "k": 10,
        "shuffles": 20,
    },
    quick={"dcgan_steps": 100, "vae_steps": 150, "dcgan_width": 8, "shuffles": 10},
)
def run(ctx: LabContext) -> LabOutput:
    # scikit-learn's BLAS on one thread too: on a shared machine its default threads make the
    # probe 20-30x slower.
    with threadpool_limits(1):
        return _run(ctx)


def _run(ctx: LabContext) -> LabOutput:
    checks = exact_checks(ctx.seed)
    width = ctx["dcgan_width"]
    with tempfile.TemporaryDirectory(prefix="genlab-lab-") as tmp:
        gan, gan0, data = train_run(
            ctx, "dcgan", Path(tmp), {"model.d_width": width, "model.g_width": width}
        )
        vae, vae0, _ = train_run(ctx, "vae", Path(tmp), {"model.width": ctx["vae_width"]})
    train_split, test_split = data.train, data.test
    x_train, x_test = pixels(train_split), pixels(test_split)
    y_train, y_test = train_split.y, test_split.y

    # The models learned: G's samples are nearer the data (Frechet distance of pixel Gaussians)
    # than the initial G's, and the VAE's reconstructions beat the mean training image.
    g = torch.Generator().manual_seed(ctx.seed + 1)
    fid = {
        m: stats.fid(x_train, m.sample(len(x_train), generator=g).flatten(1).float())
        for m in (gan, gan0)
    }
    recon = latent.decode(vae, latent.encode(vae, test_split.x)).flatten(1)
    mse_vae = (recon - x_test).pow(2).mean().item()
    mse_mean = (x_train.mean(0) - x_test).pow(2).mean().item()

    sets = {
        "pixels": (x_train, x_test),
        "DCGAN D": tuple(
            model_features(gan, s, "discriminator") for s in (train_split, test_split)
        ),
        "D at init": tuple(
            model_features(gan0, s, "discriminator") for s in (train_split, test_split)
        ),
        "VAE encoder": tuple(model_features(vae, s, "encoder") for s in (train_split, test_split)),
        "encoder at init": tuple(
            model_features(vae0, s, "encoder") for s in (train_split, test_split)
        ),
    }
    k, labels = ctx["k"], y_train.numpy()
    rows = {}
    for name, (f_train, f_test) in sets.items():
        acc, converged = linear_probe(f_train, y_train, f_test, y_test)
        clusters = kmeans_clusters(f_train, k, ctx.seed)
        rows[name] = {
            "dim": f_train.shape[1],
            "probe": acc,
            "converged": converged,
            "kmeans": matched_accuracy(clusters, labels, k),
            "purity": purity(clusters, labels, k),
            "null": null_accuracy(clusters, labels, k, ctx["shuffles"], ctx.seed),
            "table": contingency(clusters, labels, k),
        }
    chance = (y_test == int(np.bincount(labels).argmax())).float().mean().item()
    se = math.sqrt(0.9 * 0.1 / len(y_test))  # binomial std of a 10 % classifier on the test set
    lowest_probe = min(rows, key=lambda n: rows[n]["probe"])
    lowest_km = min(rows, key=lambda n: rows[n]["kmeans"] - rows[n]["null"])
    pix, d, e = rows["pixels"], rows["DCGAN D"], rows["VAE encoder"]
    checks += [
        # G moved towards the data: its pixel FID at least a quarter below the initial G's.
        at_most("DCGAN: pixel FID of G's samples / the initial G's", fid[gan] / fid[gan0], 0.75),
        # A code that carried nothing could at best decode the mean image (ratio 1).
        at_most("VAE: test reconstruction MSE / MSE of the mean image", mse_vae / mse_mean, 0.75),
        # chance + 5 binomial standard errors of a chance-level classifier on 180 test images.
        at_least(
            f"lowest probe accuracy ({lowest_probe})", rows[lowest_probe]["probe"], chance + 5 * se
        ),
        # K-means: above the best of the label shufflings, plus 0.1 (10 % of the images).
        at_least(
            f"lowest K-means accuracy - shuffled-label null ({lowest_km})",
            rows[lowest_km]["kmeans"] - rows[lowest_km]["null"],
            0.1,
        ),
        # Measured in these runs: for the probe D's features beat pixels, but so does the same
        # network untrained (its gain from training is small), and the VAE's 16 numbers do not.
        at_least("probe: DCGAN D - pixels", d["probe"] - pix["probe"], 0.0),
        at_most("probe: DCGAN D - D at init", d["probe"] - rows["D at init"]["probe"], 0.05),
        # (not above pixels by more than one standard error: closer is not resolvable)
        at_most("probe: VAE encoder - pixels", e["probe"] - pix["probe"], 0.0, se),
        # For K-means, neither learned feature set beats pixels by more than 3 points (about
        # 2.5 binomial standard errors of an 80 % accuracy on the 1,617 training images).
        at_most(
            "K-means: best learned features - pixels",
            max(d["kmeans"], e["kmeans"]) - pix["kmeans"],
            0.0,
            0.03,
        ),
    ]
    fig = figure(rows, chance, k)
    numbers = {
        "rows": {n: {**r, "table": r["table"].tolist()} for n, r in rows.items()},
        "chance": chance,
        "fid_trained": fid[gan],
        "fid_init": fid[gan0],
        "mse_vae": mse_vae,
        "mse_mean_image": mse_mean,
        "n_train": len(y_train),
        "n_test": len(y_test),
    }
    return LabOutput(checks, fig, numbers)


def figure(rows: dict, chance: float, k: int):
    fig, (ax1, ax2) = pyplot().subplots(
        1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [1.6, 1]}
    )
    names = list(rows)
    xs = np.arange(len(names))
    ax1.bar(xs - 0.2, [rows[n]["probe"] for n in names], 0.4, label="linear probe (test)")
    ax1.bar(
        xs + 0.2,
        [rows[n]["kmeans"] for n in names],
        0.4,
        label=f"K-means, K={k}, matched accuracy (train)",
    )
    ax1.scatter(
        xs + 0.2,
        [rows[n]["null"] for n in names],
        marker="_",
        s=300,
        c="black",
        label="K-means vs shuffled labels (max)",
        zorder=3,
    )
    ax1.axhline(chance, color="grey", ls=":", label="chance (largest class)")
    for x, n in zip(xs, names, strict=True):
        for dx, key in ((-0.2, "probe"), (0.2, "kmeans")):
            ax1.text(x + dx, rows[n][key] + 0.01, f"{rows[n][key]:.2f}", ha="center", fontsize=8)
    ax1.set_xticks(xs, [f"{n}\n({rows[n]['dim']} dims)" for n in names], fontsize=8)
    ax1.set(ylim=(0, 1.3), ylabel="accuracy", title="class information in each feature set")
    ax1.legend(fontsize=7, loc="upper center", ncol=2)
    best = max(names, key=lambda n: rows[n]["kmeans"])
    table = rows[best]["table"]
    order = linear_sum_assignment(table, maximize=True)[1]  # cluster i shown against its label
    ax2.imshow(table[np.argsort(order)] if len(order) == len(table) else table, cmap="Blues")
    ax2.set(
        xlabel="digit",
        ylabel="cluster (ordered by its matched digit)",
        title=f"K-means clusters of {best} (train)",
    )
    ax2.set_xticks(range(table.shape[1]))
    return fig
