"""Linear probes: how much class information a model's representation holds, measured as the
test accuracy of a linear classifier fitted on the labelled training split (docs/probe.md).

Three feature sets, each scored by the same probe (scikit-learn ``LogisticRegression`` on
features standardised with the training split's mean and std):

- the model's: the encoder's deterministic code (``encode``, the encoder contract of
  ``genlab.models.base``; the posterior mean for VAEs) when the model has an encoder, else the
  discriminator's penultimate features (``model.features``, GANs);
- K-means "triangle" features (Coates, Lee & Ng 2011, "An Analysis of Single-Layer Networks in
  Unsupervised Feature Learning", AISTATS, PMLR 15:215-223): K centroids c_k fitted by k-means
  on the training images, and f_k(x) = max(0, mean_j d_j - d_k) with d_k = |x - c_k|_2. Here on
  whole images in [-1, 1], without the paper's patches, whitening and pooling;
- raw pixels in [-1, 1] (coordinates for 2-D points).

Radford et al. 2016 (arXiv:1511.06434, section 5.1) compare DCGAN discriminator features with
K-means features in the same way on CIFAR-10 (with an L2-SVM on pooled features of all layers).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genlab.api import check_split, load, load_config
from genlab.core.errors import ConfigError, DataError
from genlab.data import load_data
from genlab.data.base import DataBundle, Split
from genlab.data.pixels import to_model
from genlab.models.base import evaluating, has_encoder

BATCH = 256  # images per forward pass


# ----------------------------------------------------------------------------- features


def triangle_features(x: Tensor, centroids: Tensor) -> Tensor:
    """K-means triangle encoding: x (N, D), centroids (K, D) -> (N, K) float64,
    f_k = max(0, mu - d_k), d_k = |x - c_k|_2 and mu the mean of d over the K centroids."""
    d = torch.cdist(x.double(), centroids.double())  # (N, K)
    return (d.mean(1, keepdim=True) - d).clamp_min(0)


def fit_kmeans(x: Tensor, k: int, seed: int = 0) -> Tensor:
    """(K, D) centroids of k-means (scikit-learn, k-means++ start) on rows x (N, D)."""
    from sklearn.cluster import KMeans

    if not 1 <= k <= len(x):
        raise ConfigError(f"--k {k}: give between 1 and the {len(x)} training images")
    km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(x.double().numpy())
    return torch.from_numpy(km.cluster_centers_)


def pixels(split: Split) -> Tensor:
    """(N, D) float32 rows: images in [-1, 1] flattened, or the points themselves."""
    x = split.x
    if x.dtype == torch.uint8:
        x = to_model(x)
    return x.float().flatten(1)


def feature_source(model: torch.nn.Module) -> str:
    """Which representation of ``model`` is probed: "encoder" or "discriminator"."""
    if getattr(model, "num_classes", None) or getattr(model, "num_attrs", None):
        raise ConfigError(
            "genlab probe measures what a model learned without labels; this model is "
            "conditioned on labels or attributes, which would leak into its features"
        )
    if has_encoder(model):
        return "encoder"
    if callable(getattr(model, "features", None)):
        return "discriminator"
    name = getattr(getattr(model, "cfg", None), "name", type(model).__name__)
    raise ConfigError(
        f"genlab probe needs a model with an encoder (vae, ae, aae, ...) or a discriminator's "
        f"features (GANs); {name!r} has neither"
    )


def model_features(model: torch.nn.Module, split: Split, source: str) -> Tensor:
    """(N, F) float32 features on the CPU of every row of ``split``, in eval mode, batched."""
    device = next(model.parameters()).device
    fn = model.encode if source == "encoder" else model.features
    out = []
    with evaluating(model):
        for i in range(0, len(split), BATCH):
            x = split.x[i : i + BATCH].to(device)
            x = to_model(x) if x.dtype == torch.uint8 else x.float()
            out.append(fn(x).float().flatten(1).cpu())
    return torch.cat(out)


# ----------------------------------------------------------------------------- the probe


def linear_probe(
    f_train: Tensor, y_train: Tensor, f_test: Tensor, y_test: Tensor, max_iter: int = 1000
) -> tuple[float, bool]:
    """(test accuracy in [0, 1], converged) of a logistic regression (L2, C = 1, lbfgs) on
    features standardised by the training split."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(f_train.double().numpy(), y_train.numpy())
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return float(clf.score(f_test.double().numpy(), y_test.numpy())), converged


@dataclass
class ProbeRow:
    name: str  # "model", "kmeans", "pixels"
    description: str
    dim: int
    accuracy: float
    converged: bool


@dataclass
class ProbeResult:
    rows: list[ProbeRow]
    chance: float  # share of the scored split in the training split's most frequent class
    n_train: int
    n_test: int
    num_classes: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "rows": [r.__dict__ for r in self.rows],
            "chance": self.chance,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "num_classes": self.num_classes,
        }


def subset(split: Split, n: int | None, seed: int) -> Split:
    """At most n rows of ``split``, picked without replacement with ``seed`` (all if None)."""
    if n is None or n >= len(split):
        return split
    idx = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:n]
    return split.take(idx.sort().values)


def check_data(data: DataBundle) -> None:
    if data.spec.kind not in ("image", "points"):
        raise ConfigError(
            f"genlab probe needs image or point data; {data.name!r} is {data.spec.kind}"
        )
    if data.train.y is None or data.test.y is None or not data.spec.num_classes:
        raise ConfigError(
            f"genlab probe scores class labels, but dataset {data.name!r} has none; use "
            "labelled data (digits, shapes, class sub-folders for imagefolder)"
        )


def probe_features(
    model: torch.nn.Module | None,
    data: DataBundle,
    split: str = "test",
    n: int | None = 10_000,
    k: int = 100,
    seed: int = 0,
) -> ProbeResult:
    """Linear-probe accuracies on ``split`` of the model's features (skipped when ``model`` is
    None), K-means triangle features and raw pixels; each fitted on at most n training rows
    and scored on at most n rows of ``split``."""
    check_data(data)
    source = None if model is None else feature_source(model)
    train = subset(data.train, n, seed)
    test = subset(getattr(data, split), n, seed + 1)
    x_train, x_test = pixels(train), pixels(test)
    rows = []
    if model is not None:
        f_tr, f_te = model_features(model, train, source), model_features(model, test, source)
        what = "encoder code" if source == "encoder" else "discriminator penultimate features"
        rows.append(ProbeRow("model", f"model: {what}", f_tr.shape[1], *linear_probe(
            f_tr, train.y, f_te, test.y)))  # fmt: skip
    centroids = fit_kmeans(x_train, k, seed)
    t_tr, t_te = triangle_features(x_train, centroids), triangle_features(x_test, centroids)
    rows.append(ProbeRow("kmeans", f"k-means triangle (K={k})", k, *linear_probe(
        t_tr, train.y, t_te, test.y)))  # fmt: skip
    rows.append(ProbeRow("pixels", "raw pixels", x_train.shape[1], *linear_probe(
        x_train, train.y, x_test, test.y)))  # fmt: skip
    majority = int(np.bincount(train.y.numpy()).argmax())
    chance = (test.y == majority).float().mean().item()
    return ProbeResult(rows, chance, len(train), len(test), data.spec.num_classes)


# ----------------------------------------------------------------------------- a run


def probe(
    run_dir: str | Path,
    *,
    split: str = "test",
    n: int = 10_000,
    k: int = 100,
    seed: int = 0,
    step: int | None = None,
    ema: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    """Linear probes (``probe_features``) of a run's checkpoint on its own labelled data: fitted
    on at most ``n`` training images, scored on at most ``n`` images of ``split``, with ``k``
    k-means centroids. Returns ``{"run", "model", "data", "split", "rows", "chance", "n_train",
    "n_test", "num_classes"}``; each row has name, description, dim, accuracy in [0, 1] and
    converged."""
    check_split(split)
    if n < 2:
        raise ConfigError(f"--n {n}: give at least 2 images per split")
    if k < 1:
        raise ConfigError(f"--k {k}: give at least 1 centroid")
    cfg = load_config(run_dir)
    model = load(run_dir, step=step, ema=ema, device=device)
    feature_source(model)  # the model's errors before the data is loaded
    data = load_data(cfg.data)
    check_data(data)
    if tuple(data.spec.shape) != tuple(model.spec.shape):
        raise DataError(
            f"dataset {cfg.data.name!r} now gives {data.spec.shape} but {run_dir} was "
            f"trained on {model.spec.shape}; restore the data it was trained on"
        )
    if k > min(n, len(data.train)):
        raise ConfigError(f"--k {k}: more centroids than training images used")
    result = probe_features(model, data, split, n, k, seed)
    head = {"run": str(run_dir), "model": cfg.model.name, "data": cfg.data.name, "split": split}
    return {**head, **result.to_dict()}


def table(record: dict[str, Any]) -> str:
    """The probe of a run (``probe``) for people: one line per feature set, then chance."""
    lines = [
        f"linear probe of {record['run']} ({record['model']}) on {record['data']} class labels: "
        f"fitted on {record['n_train']} train images, scored on {record['n_test']} "
        f"{record['split']} images",
        f"{'features':<44} {'dim':>6}  {'accuracy':>8}",
    ]
    for row in record["rows"]:
        mark = "" if row["converged"] else "  (did not converge)"
        lines.append(f"{row['description']:<44} {row['dim']:>6}  {row['accuracy']:>8.3f}{mark}")
    lines.append(f"{'chance (the most frequent class)':<44} {'':>6}  {record['chance']:>8.3f}")
    return "\n".join(lines)
