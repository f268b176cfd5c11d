"""The sample-quality statistics (genlab.metrics.stats) against independent references: scipy,
closed forms, and brute-force loops that follow the papers' definitions line by line."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch

from genlab.metrics import stats


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def random_cov(r: np.random.Generator, d: int) -> np.ndarray:
    a = r.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# ------------------------------------------------------------------ Frechet distance
def scipy_frechet(mu1, s1, mu2, s2) -> float:
    """The usual reference implementation, with scipy's general matrix square root."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_frechet_matches_scipy_sqrtm():
    r = rng(1)
    for d in (1, 3, 16):
        mu1, mu2 = r.normal(size=d), r.normal(size=d)
        s1, s2 = random_cov(r, d), random_cov(r, d)
        got = stats.frechet_distance(mu1, s1, mu2, s2)
        assert got == pytest.approx(scipy_frechet(mu1, s1, mu2, s2), rel=1e-8, abs=1e-10)


def test_frechet_closed_form_for_diagonal_covariances():
    # Diagonal: the trace term is sum_i (sqrt(a_i) - sqrt(b_i))^2.
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([3.0, 1.0, 0.0])
    expected = 9 + 0 + 4 + (1 - 3) ** 2 + (2 - 1) ** 2 + 0
    got = stats.frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-12)


def test_fid_of_a_set_with_itself_is_zero_and_symmetric():
    r = rng(2)
    x, y = r.normal(size=(300, 8)), r.normal(size=(200, 8)) + 0.5
    assert stats.fid(x, x) == pytest.approx(0.0, abs=1e-8)
    assert stats.fid(x, y) == pytest.approx(stats.fid(y, x), rel=1e-9)
    assert stats.fid(x, y) > 8 * 0.25 * 0.8  # about ||mu1 - mu2||^2 = 2


def test_fid_with_fewer_points_than_dimensions_is_finite():
    # Singular covariances (rank 9 in 32 dimensions): no complex parts, no NaN.
    r = rng(3)
    x, y = r.normal(size=(10, 32)), r.normal(size=(10, 32))
    got = stats.fid(x, y)
    assert math.isfinite(got) and got > 0
    assert stats.fid(x, x) == pytest.approx(0.0, abs=1e-7)


def test_gaussian_stats_match_numpy():
    x = rng(4).normal(size=(50, 5))
    mu, cov = stats.gaussian_stats(x)
    np.testing.assert_allclose(mu.numpy(), x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov.numpy(), np.cov(x, rowvar=False), rtol=1e-12)


# ------------------------------------------------------------------ KID
def brute_force_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Gretton et al.'s unbiased MMD^2_u, with the kernel written out for each pair."""
    d, m, n = x.shape[1], len(x), len(y)

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_mmd2_matches_a_double_loop():
    r = rng(5)
    x, y = r.normal(size=(12, 4)), r.normal(size=(12, 4)) * 1.5 + 0.3
    assert stats.mmd2_unbiased(x, y) == pytest.approx(brute_force_mmd2(x, y), rel=1e-10)


def test_kid_over_subsets_matches_brute_force_on_the_same_subsets():
    r = rng(6)
    x, y = r.normal(size=(20, 3)), r.normal(size=(15, 3)) + 0.7
    mean, std = stats.kid(
        x, y, subsets=4, subset_size=6, generator=torch.Generator().manual_seed(9)
    )
    g = torch.Generator().manual_seed(9)
    values = []
    for _ in range(4):  # the subsets kid draws: 6 of x, then 6 of y, without replacement
        i = torch.randperm(20, generator=g)[:6].numpy()
        j = torch.randperm(15, generator=g)[:6].numpy()
        values.append(brute_force_mmd2(x[i], y[j]))
    assert mean == pytest.approx(np.mean(values), rel=1e-10)
    assert std == pytest.approx(np.std(values), rel=1e-8)
    assert len(set(np.round(values, 12))) > 1  # the subsets differ


def test_kid_with_whole_sets_has_no_spread_and_is_unbiased_near_zero():
    r = rng(7)
    x, y = r.normal(size=(10, 3)), r.normal(size=(10, 3))
    mean, std = stats.kid(x, y, subsets=3, subset_size=1000)
    assert mean == pytest.approx(brute_force_mmd2(x, y), rel=1e-10) and std < 1e-12
    # Same distribution: the unbiased estimate averages to about 0 (it can be negative).
    a, b = r.normal(size=(400, 8)), r.normal(size=(400, 8))
    same, _ = stats.kid(a, b, subsets=20, subset_size=200, generator=torch.Generator())
    shifted, _ = stats.kid(a, b + 0.5, subsets=20, subset_size=200, generator=torch.Generator())
    assert abs(same) < 0.01 < shifted


# ------------------------------------------------------------------ Inception score
def scipy_inception_score(
    logits: np.ndarray, splits: int, parts: str = "reference"
) -> tuple[float, float]:
    """The score with scipy's KL; ``parts="reference"`` slices as openai/improved-gan does
    (rows i N // splits to (i + 1) N // splits), ``"array_split"`` as numpy's array_split."""
    p = scipy.special.softmax(logits, axis=1)
    n = len(p)
    if parts == "reference":
        chunks = [p[i * n // splits : (i + 1) * n // splits] for i in range(splits)]
    else:
        chunks = np.array_split(p, splits)
    scores = []
    for part in chunks:
        py = part.mean(0)
        kl = [scipy.stats.entropy(row, py) for row in part]
        scores.append(math.exp(np.mean(kl)))
    return float(np.mean(scores)), float(np.std(scores))


def test_inception_score_matches_scipy_entropy():
    logits = rng(8).normal(size=(103, 10)) * 3
    for splits in (1, 4, 10):
        mean, std = stats.inception_score(logits, splits)
        ref_mean, ref_std = scipy_inception_score(logits, splits)
        assert mean == pytest.approx(ref_mean, rel=1e-10)
        assert std == pytest.approx(ref_std, rel=1e-8, abs=1e-12)


def test_inception_score_splits_as_the_published_code():
    # At N = 1003 the two ways of cutting 10 splits differ (array_split gives the first three
    # parts the extra rows; the reference gives them to other parts), so this tells them apart.
    logits = rng(9).normal(size=(1003, 10)) * 3
    ours = stats.inception_score(logits, 10)
    reference = scipy_inception_score(logits, 10)
    other = scipy_inception_score(logits, 10, parts="array_split")
    assert ours[0] == pytest.approx(reference[0], rel=1e-12)
    assert ours[1] == pytest.approx(reference[1], rel=1e-9)
    assert abs(other[0] - reference[0]) / reference[0] > 1e-6


def test_inception_score_bounds():
    # Confident and evenly spread over K classes: K. Uninformative: 1.
    k = 5
    confident = torch.eye(k).repeat(4, 1) * 200.0
    assert stats.inception_score(confident, 1)[0] == pytest.approx(k, rel=1e-9)
    assert stats.inception_score(torch.zeros(20, k), 2) == pytest.approx((1.0, 0.0))


# ---------------------------------------------------------- precision, recall, density, coverage
def brute_prdc(
    real: np.ndarray, fake: np.ndarray, k_pr: int, k_dc: int, strict: bool = False
) -> dict[str, float]:
    """Kynkaanniemi et al. 2019 and Naeem et al. 2020, one loop per definition; closed balls
    (a point on the edge is inside, as torch-fidelity), or open ones with ``strict`` (as the
    ``prdc`` package's ``<``)."""

    def within(d, radius):
        return d < radius if strict else d <= radius

    def dist(a, b):
        return math.sqrt(sum((float(u) - float(v)) ** 2 for u, v in zip(a, b, strict=True)))

    def nnd(points, i, k):  # distance of points[i] to its k-th nearest other point
        return sorted(dist(points[i], p) for j, p in enumerate(points) if j != i)[k - 1]

    r_pr = [nnd(real, i, k_pr) for i in range(len(real))]
    f_pr = [nnd(fake, j, k_pr) for j in range(len(fake))]
    r_dc = [nnd(real, i, k_dc) for i in range(len(real))]
    precision = np.mean(
        [any(within(dist(f, r), r_pr[i]) for i, r in enumerate(real)) for f in fake]
    )
    recall = np.mean([any(within(dist(r, f), f_pr[j]) for j, f in enumerate(fake)) for r in real])
    density = sum(sum(within(dist(f, r), r_dc[i]) for i, r in enumerate(real)) for f in fake) / (
        k_dc * len(fake)
    )
    coverage = np.mean([any(within(dist(r, f), r_dc[i]) for f in fake) for i, r in enumerate(real)])
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


def test_prdc_counts_a_point_on_a_balls_edge_as_inside():
    # fake = real: every fake sits exactly on the edge of the k-NN balls of its own k nearest
    # neighbours, so closed balls (ours, torch-fidelity) and open ones (prdc's <) differ.
    real = rng(11).normal(size=(25, 3))
    got = stats.prdc(real, real.copy())
    closed = brute_prdc(real, real.copy(), 3, 5)
    open_balls = brute_prdc(real, real.copy(), 3, 5, strict=True)
    assert got == pytest.approx(closed, rel=1e-12)
    assert got["density"] > open_balls["density"]


def test_prdc_matches_brute_force_on_random_sets():
    r = rng(9)
    real = r.normal(size=(40, 3))
    fake = r.normal(size=(30, 3)) * 0.5 + np.array([1.5, 0.0, 0.0])
    fake[:10] += np.array([3.0, 0.0, 0.0])  # a third of the fakes far from the data
    got = stats.prdc(real, fake, chunk=7)  # blocks of 7 rows: the chunking is exercised too
    expected = brute_prdc(real, fake, 3, 5)
    assert got == pytest.approx(expected, rel=1e-12)
    assert all(0 < got[m] < 1 for m in ("precision", "recall", "coverage"))  # a case that tells


def test_prdc_hand_made_case():
    # real 0, 1, 2, 10 (1st-NN radii 1, 1, 1, 8); fake 0.5, 5, 30 (radii 4.5, 4.5, 25).
    real = np.array([[0.0], [1.0], [2.0], [10.0]])
    fake = np.array([[0.5], [5.0], [30.0]])
    got = stats.prdc(real, fake, k_pr=1, k_dc=1)
    # precision: 0.5 (in the balls of 0 and 1) and 5 (ball of 10) but not 30 -> 2/3.
    # recall: every real point lies in a fake ball (10 in the ball of 30) -> 1.
    # density: 0.5 is in 2 balls, 5 in 1, 30 in 0 -> 3 / (1 * 3) = 1.
    # coverage: the balls of 0, 1 and 10 hold a fake point, that of 2 does not -> 3/4.
    assert got == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "density": 1.0, "coverage": 0.75}
    )


def test_identical_sets_are_perfect():
    x = rng(10).normal(size=(50, 4))
    got = stats.prdc(x, x)
    assert got["precision"] == got["recall"] == got["coverage"] == 1.0
    # Each point's ball holds itself and its 5 neighbours: density = (5 + 1) / 5 on average.
    assert got["density"] == pytest.approx(6 / 5)


def test_neighbour_distances_match_brute_force_and_chunking():
    x = rng(11).normal(size=(25, 2))
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    np.fill_diagonal(d, np.inf)
    for k in (1, 3):
        got = stats.kth_neighbour_distances(x, k, chunk=4).numpy()
        np.testing.assert_allclose(got, np.sort(d, axis=1)[:, k - 1], rtol=1e-12)
    q = rng(12).normal(size=(9, 2))
    np.testing.assert_allclose(
        stats.nearest_distances(q, x, chunk=2).numpy(),
        np.linalg.norm(q[:, None] - x[None], axis=2).min(1),
        rtol=1e-12,
    )
    # Above EXACT_DIM dimensions the matrix-product form: the same distances up to rounding.
    wide = rng(15).normal(size=(30, stats.EXACT_DIM + 88))
    d = np.linalg.norm(wide[:, None] - wide[None], axis=2)
    np.fill_diagonal(d, np.inf)
    got = stats.kth_neighbour_distances(wide, 3, chunk=8).numpy()
    np.testing.assert_allclose(got, np.sort(d, axis=1)[:, 2], rtol=1e-9)
    with pytest.raises(ValueError, match="more than k points"):
        stats.kth_neighbour_distances(x[:3], 3)


# ------------------------------------------------------------------ memorisation
def test_memorisation_against_brute_force():
    r = rng(13)
    train, test, gen = r.normal(size=(60, 3)), r.normal(size=(30, 3)), r.normal(size=(20, 3))
    got = stats.memorisation(gen, train, test)
    d_gen = [min(np.linalg.norm(g - t) for t in train) for g in gen]
    d_test = [min(np.linalg.norm(s - t) for t in train) for s in test]
    threshold = np.quantile(d_test, 0.05)
    assert got["threshold"] == pytest.approx(threshold)
    assert got["ratio"] == pytest.approx(np.median(d_gen) / np.median(d_test))
    assert got["close"] == pytest.approx(np.mean(np.array(d_gen) < threshold))


def test_memorisation_tells_a_copier_from_fresh_data():
    r = rng(14)
    train, test = r.normal(size=(500, 4)), r.normal(size=(200, 4))
    copier = stats.memorisation(train[:200] + 1e-6, train, test)
    assert copier["ratio"] < 1e-3 and copier["close"] == 1.0
    fresh = stats.memorisation(r.normal(size=(200, 4)), train, test)
    assert 0.8 < fresh["ratio"] < 1.25 and fresh["close"] < 0.15
