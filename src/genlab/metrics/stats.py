"""Sample-quality statistics on feature matrices: pure functions, float64, no model in sight.

Every function takes features as (N, D) arrays (numpy or torch; computed in float64 torch on the
CPU) and returns plain floats. Pairwise distances are computed in row chunks, so two sets of
10,000 points never hold a 10,000 x 10,000 matrix at once.

- ``frechet_distance``: FID (Heusel et al. 2017, arXiv:1706.08500) between two Gaussians.
- ``kid``: the kernel inception distance (Binkowski et al. 2018, arXiv:1801.01401), unbiased
  MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3 averaged over random subsets.
- ``inception_score``: exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016, arXiv:1606.03498).
- ``prdc``: precision and recall (Kynkaanniemi et al. 2019, arXiv:1904.06991), density and
  coverage (Naeem et al. 2020, arXiv:2002.09797) from k-nearest-neighbour balls.
- ``memorisation``: distances of generated samples to their nearest training sample, against
  the same distances of held-out data (the three samples of Meehan et al. 2020,
  arXiv:2004.05675, summarised by a median ratio and a tail share).

The metrics are module functions so they can be checked against independent references
(scipy, brute-force loops) in tests/unit/test_stats.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

# Rows of the left set per block of a distance matrix: 1024 x 10,000 float64 is 80 MB.
CHUNK = 1024
# Up to this many dimensions distances are computed from coordinate differences: exact ties stay
# ties (d(a, b) == d(b, a) bit for bit, 0 for copies), which the closed k-NN balls of
# precision/recall count on. Above it the matrix-product form is about 7x faster (2048-d
# Inception features) at the price of ~1e-8 relative rounding that may break such ties.
EXACT_DIM = 512


def as_float64(x) -> torch.Tensor:
    """numpy array or tensor (N, D) -> a contiguous float64 CPU tensor."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    return t.detach().to("cpu", torch.float64).contiguous()


def distance_blocks(a, b, chunk: int = CHUNK) -> Iterator[tuple[slice, torch.Tensor]]:
    """Euclidean distances between rows of a (N, D) and b (M, D), as (rows of a, (r, M) block)."""
    a, b = as_float64(a), as_float64(b)
    mode = "donot_use_mm_for_euclid_dist" if a.shape[1] <= EXACT_DIM else "use_mm_for_euclid_dist"
    for start in range(0, len(a), chunk):
        rows = slice(start, min(start + chunk, len(a)))
        yield rows, torch.cdist(a[rows], b, compute_mode=mode)


# ------------------------------------------------------------------ Frechet distance
def gaussian_stats(features) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) -> mean (D,) and unbiased covariance (D, D), float64 (N >= 2)."""
    x = as_float64(features)
    mu = x.mean(0)
    centred = x - mu
    return mu, centred.T @ centred / (len(x) - 1)


def _psd_sqrt(s: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a PSD matrix; eigenvalues below 0 (rounding) are set to 0."""
    vals, vecs = torch.linalg.eigh((s + s.T) / 2)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Squared Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2):

        ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}).

    (S1 S2)^{1/2} is not symmetric, but it is similar to (S1^{1/2} S2 S1^{1/2})^{1/2}, which is
    symmetric PSD: the trace is the sum of the square roots of that matrix's eigenvalues, with
    no complex parts and no singular-matrix fix-ups (covariances of fewer points than
    dimensions are singular)."""
    mu1, mu2 = as_float64(mu1), as_float64(mu2)
    s1, s2 = as_float64(sigma1), as_float64(sigma2)
    root1 = _psd_sqrt(s1)
    middle = root1 @ s2 @ root1
    eig = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0)
    value = (mu1 - mu2).pow(2).sum() + s1.trace() + s2.trace() - 2 * eig.sqrt().sum()
    return max(float(value), 0.0)


def fid(real, fake) -> float:
    """FID between two feature sets (N, D) and (M, D), each summarised by a Gaussian."""
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))


# ------------------------------------------------------------------ KID
def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N, D), (M, D) -> (N, M) kernel (x.y / D + 1)^3."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def mmd2_unbiased(x, y) -> float:
    """Unbiased MMD^2 of two equal-size sets (m, D) with the cubic polynomial kernel:
    mean of k over pairs i != j within each set, minus twice the mean over all cross pairs."""
    x, y = as_float64(x), as_float64(y)
    m = len(x)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(within - 2 * kxy.mean())


def kid(
    real,
    fake,
    subsets: int = 100,
    subset_size: int = 1000,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """KID: the unbiased MMD^2 averaged over ``subsets`` random pairs of subsets of
    min(subset_size, N, M) points each (drawn without replacement within a subset).
    Returns (mean, standard deviation over subsets); the mean may be slightly negative. When
    both sets are no larger than a subset, every subset is a permutation of the whole sets, on
    which the estimate does not depend: one value, standard deviation 0."""
    real, fake = as_float64(real), as_float64(fake)
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError("KID needs at least 2 points in each set")
    if m == len(real) == len(fake):
        subsets = 1
    values = []
    for _ in range(subsets):
        i = torch.randperm(len(real), generator=generator)[:m]
        j = torch.randperm(len(fake), generator=generator)[:m]
        values.append(mmd2_unbiased(real[i], fake[j]))
    v = np.asarray(values)
    return float(v.mean()), float(v.std())


# ------------------------------------------------------------------ Inception score
def inception_score(logits, splits: int = 10) -> tuple[float, float]:
    """exp(mean_x KL(p(y|x) || p(y))) with p(y|x) = softmax(logits) (N, K) and p(y) the mean
    of p(y|x) within each of ``splits`` parts, part i being rows [i N // splits, (i + 1) N //
    splits) as in the published score's code (openai/improved-gan). Returns (mean, standard
    deviation over the parts: a spread, not a standard error); the score lies in [1, K]."""
    log_p = torch.log_softmax(as_float64(logits), dim=1)  # (N, K)
    n = len(log_p)
    scores = []
    for i in range(splits):
        part = log_p[i * n // splits : (i + 1) * n // splits]
        log_py = torch.logsumexp(part, dim=0) - math.log(len(part))  # log of the mean p(y|x)
        kl = (part.exp() * (part - log_py)).sum(1)  # (n,), 0 log 0 = 0 by exp(-inf) = 0
        scores.append(math.exp(float(kl.mean())))
    s = np.asarray(scores)
    return float(s.mean()), float(s.std())


# ------------------------------------------------------------------ nearest neighbours
def kth_neighbour_distances(x, k: int, chunk: int = CHUNK) -> torch.Tensor:
    """(N, D) -> (N,) distance of each point to its k-th nearest *other* point of the set."""
    x = as_float64(x)
    if not 1 <= k < len(x):
        raise ValueError(f"k={k} nearest neighbours need more than k points (got {len(x)})")
    out = torch.empty(len(x), dtype=torch.float64)
    for rows, d in distance_blocks(x, x, chunk):
        # The k+1 smallest include the point itself (distance 0).
        out[rows] = d.topk(k + 1, dim=1, largest=False).values[:, k]
    return out


def nearest_distances(query, reference, chunk: int = CHUNK) -> torch.Tensor:
    """(N, D), (M, D) -> (N,) distance of each query point to its nearest reference point."""
    out = torch.empty(len(query), dtype=torch.float64)
    for rows, d in distance_blocks(query, reference, chunk):
        out[rows] = d.min(dim=1).values
    return out


def _ball_counts(points, centres, radii: torch.Tensor, chunk: int) -> torch.Tensor:
    """(N,) number of balls B(centre_i, radius_i) that contain each point (closed balls)."""
    out = torch.empty(len(points), dtype=torch.float64)
    for rows, d in distance_blocks(points, centres, chunk):
        out[rows] = (d <= radii).sum(1).double()
    return out


def prdc(real, fake, k_pr: int = 3, k_dc: int = 5, chunk: int = CHUNK) -> dict[str, float]:
    """Precision, recall (k = ``k_pr``), density and coverage (k = ``k_dc``), each in [0, 1]
    except density (its mean is 1 when fake and real come from one distribution):

    - precision: share of fake points inside at least one real k-NN ball B(r, NND_k(r));
    - recall: share of real points inside at least one fake k-NN ball;
    - density: (1 / kM) sum over fakes of the number of real k-NN balls containing each;
    - coverage: share of real points whose k-NN ball contains at least one fake point.
    """
    real, fake = as_float64(real), as_float64(fake)
    r_pr = kth_neighbour_distances(real, k_pr, chunk)
    f_pr = kth_neighbour_distances(fake, k_pr, chunk)
    r_dc = kth_neighbour_distances(real, k_dc, chunk) if k_dc != k_pr else r_pr
    in_real = _ball_counts(fake, real, r_pr, chunk)
    in_fake = _ball_counts(real, fake, f_pr, chunk)
    density = _ball_counts(fake, real, r_dc, chunk) if k_dc != k_pr else in_real
    covered = nearest_distances(real, fake, chunk) <= r_dc
    return {
        "precision": float((in_real > 0).double().mean()),
        "recall": float((in_fake > 0).double().mean()),
        "density": float(density.sum() / (k_dc * len(fake))),
        "coverage": float(covered.double().mean()),
    }


def memorisation(gen, train, test, quantile: float = 0.05) -> dict[str, float]:
    """Nearest-training-neighbour distances of generated samples (M, D) against those of
    held-out test samples (N, D), both to the training set (T, D):

    - ``ratio``: median gen->train / median test->train distance; about 1 for a model whose
      samples are as novel as fresh data, towards 0 when it reproduces training samples;
    - ``close``: share of generated samples nearer to a training sample than the ``quantile``
      of the test->train distances; about ``quantile`` for fresh data, 1 for a copier;
    - ``gen_median``, ``test_median``, ``threshold``: the distances behind them.
    """
    d_gen, d_test = nearest_distances(gen, train), nearest_distances(test, train)
    return memorisation_summary(d_gen, d_test, quantile)


def memorisation_summary(d_gen, d_test, quantile: float = 0.05) -> dict[str, float]:
    """``memorisation`` from the nearest-training-neighbour distances themselves: generated
    (M,) and test (N,), in any metric (feature space, pixels)."""
    d_gen, d_test = as_float64(d_gen), as_float64(d_test)
    threshold = float(torch.quantile(d_test, quantile))
    gen_median, test_median = float(d_gen.quantile(0.5)), float(d_test.quantile(0.5))
    return {
        "ratio": gen_median / test_median if test_median > 0 else float("nan"),
        "close": float((d_gen < threshold).double().mean()),
        "gen_median": gen_median,
        "test_median": test_median,
        "threshold": threshold,
    }
