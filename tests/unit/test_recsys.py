"""Recommendation math against independent references: ranking metrics against plain-Python
loops over sets, EASE against per-item ridge regressions, the multinomial likelihood against
torch.distributions, and the held-out protocol's bookkeeping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from genlab.core.errors import ConfigError
from genlab.data.recsys import (
    clicks_matrix,
    ease_weights,
    evaluate_ranking,
    heldout_count,
    hits,
    ndcg_at_k,
    popularity_scorer,
    rank_users,
    recall_at_k,
    split_items,
    split_users,
    top_k,
)
from genlab.models.multvae import kl_weight, multinomial_nll


def random_clicks(users: int, items: int, density: float, seed: int) -> sp.csr_matrix:
    m = sp.random(users, items, density=density, format="csr", random_state=seed)
    m.data[:] = 1.0
    return m.astype(np.float32)


# ----------------------------------------------------------------------------- metrics


def brute_recall(ranked: list[int], relevant: set[int], k: int) -> float:
    found = sum(1 for item in ranked[:k] if item in relevant)
    return found / min(k, len(relevant))


def brute_ndcg(ranked: list[int], relevant: set[int], k: int) -> float:
    dcg = sum(1 / math.log2(r + 2) for r, item in enumerate(ranked[:k]) if item in relevant)
    idcg = sum(1 / math.log2(r + 2) for r in range(min(k, len(relevant))))
    return dcg / idcg


def test_hand_computed_case():
    # Ranked [3, 0, 2, 1]; held out {0, 1}. Recall@2 = 1 / min(2, 2); NDCG@2 = (1/log2 3) /
    # (1 + 1/log2 3); recall@3 = 1/2; with only item 1 held out, recall@1 = 0.
    ranked = np.array([[3, 0, 2, 1], [3, 0, 2, 1]])
    held = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 0, 0]], dtype=np.float32))
    h = hits(ranked, held)
    n = np.array([2, 1])
    assert recall_at_k(h, n, 2)[0] == pytest.approx(0.5)
    assert recall_at_k(h, n, 1)[1] == 0.0 and recall_at_k(h, n, 4)[1] == 1.0
    inv3 = 1 / math.log2(3)
    assert ndcg_at_k(h, n, 2)[0] == pytest.approx(inv3 / (1 + inv3))
    assert ndcg_at_k(h, n, 4)[1] == pytest.approx(1 / math.log2(5))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    users, items = 30, 40
    held = random_clicks(users, items, 0.15, seed)
    held = held[np.diff(held.indptr) > 0]
    ranked = np.stack([rng.permutation(items)[:25] for _ in range(held.shape[0])])
    h, n = hits(ranked, held), np.diff(held.indptr)
    for k in (1, 5, 20, 25):
        for u in range(held.shape[0]):
            relevant = set(held[u].indices.tolist())
            want_r = brute_recall(ranked[u].tolist(), relevant, k)
            want_n = brute_ndcg(ranked[u].tolist(), relevant, k)
            assert recall_at_k(h, n, k)[u] == pytest.approx(want_r)
            assert ndcg_at_k(h, n, k)[u] == pytest.approx(want_n)


def test_top_k_excludes_fold_in_and_orders_best_first():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7, 0.3]])
    exclude = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0]])
    assert top_k(scores, exclude, 3).tolist() == [[3, 2, 4]]


def test_rank_users_never_ranks_fold_in_items():
    foldin = random_clicks(50, 30, 0.2, 3)
    ranked = rank_users(popularity_scorer(foldin), foldin, 10, batch_size=7)
    assert ranked.shape == (50, 10)
    for u in range(50):
        assert not set(ranked[u]) & set(foldin[u].indices)


def test_popularity_ranks_by_click_counts():
    x = sp.csr_matrix(np.array([[1, 0, 1, 0], [1, 0, 1, 1], [1, 0, 0, 0]], dtype=np.float32))
    empty = sp.csr_matrix((1, 4), dtype=np.float32)
    assert rank_users(popularity_scorer(x), empty, 3).tolist() == [[0, 2, 3]]


# ----------------------------------------------------------------------------- EASE


def test_ease_matches_per_item_ridge_regressions():
    # EASE's closed form (Steck 2019) solves, for each item j, the ridge regression of column j
    # on the other columns: B[-j, j] = (X_-j^T X_-j + lam I)^-1 X_-j^T x_j, B[j, j] = 0.
    x = random_clicks(60, 12, 0.3, 5)
    lam = 3.0
    b = ease_weights(x, lam)
    dense = x.toarray().astype(np.float64)
    for j in range(12):
        others = [i for i in range(12) if i != j]
        a = dense[:, others]
        want = np.linalg.solve(a.T @ a + lam * np.eye(11), a.T @ dense[:, j])
        np.testing.assert_allclose(b[others, j], want, rtol=1e-8, atol=1e-10)
        assert b[j, j] == 0.0


def test_ease_recovers_duplicated_items():
    # Items 0 and 1 are always clicked together: each predicts the other.
    rows = np.array([[1, 1, 0, 0], [1, 1, 0, 1], [0, 0, 1, 0], [1, 1, 1, 0]] * 5, dtype=np.float32)
    b = ease_weights(sp.csr_matrix(rows), 0.5)
    assert b[0, 1] > 0.4 and b[1, 0] > 0.4 and abs(b[2, 0]) < b[0, 1]


# ----------------------------------------------------------------------------- protocol


def test_split_items_partitions_each_history():
    m = random_clicks(200, 50, 0.12, 7)
    foldin, held = split_items(m, 0.2, np.random.default_rng(0))
    np.testing.assert_array_equal((foldin + held).toarray(), m.toarray())
    assert foldin.multiply(held).nnz == 0
    n = np.diff(m.indptr)
    want = np.where(n >= 5, np.maximum(1, np.floor(0.2 * n)), 0)
    np.testing.assert_array_equal(np.diff(held.indptr), want)
    again, _ = split_items(m, 0.2, np.random.default_rng(0))
    assert (again != foldin).nnz == 0


def test_split_users_partitions_users_and_keeps_training_items():
    dense = random_clicks(100, 30, 0.1, 2).toarray()
    dense[:, 29] = 0  # no one clicks item 29 ...
    dense[99, 29] = 1  # ... but one user, who may be held out
    m = sp.csr_matrix(dense)
    ids, items = np.arange(100) * 10, np.arange(30) + 1000
    inter = split_users(m, ids, items, heldout_users=10, fraction=0.2, seed=0)
    seen = [inter.train_user_ids, inter.validation.user_ids, inter.test.user_ids]
    assert [len(s) for s in seen] == [80, 10, 10]
    assert sorted(np.concatenate(seen).tolist()) == ids.tolist()
    trained = np.asarray(m[np.searchsorted(ids, inter.train_user_ids)].sum(0)).ravel() > 0
    assert inter.item_ids.tolist() == items[trained].tolist()
    assert inter.train.shape[1] == inter.test.foldin.shape[1] == len(inter.item_ids)


def test_heldout_count_rules():
    assert heldout_count(None, 136_677) == 10_000  # ML-20M: the paper's 10k
    assert heldout_count(None, 943) == 94  # ML-100K: 10%
    assert heldout_count(0.25, 100) == 25 and heldout_count(7, 100) == 7
    with pytest.raises(ConfigError, match="only 100 users"):
        heldout_count(50, 100)
    with pytest.raises(ConfigError, match="whole count"):
        heldout_count(2.5, 100)


def test_clicks_matrix_counts_duplicates_once():
    m, users, items = clicks_matrix(np.array([5, 5, 5, 9]), np.array([30, 30, 10, 10]))
    assert users.tolist() == [5, 9] and items.tolist() == [10, 30]
    assert m.toarray().tolist() == [[1, 1], [1, 0]]


def test_evaluate_ranking_perfect_scorer():
    held = sp.csr_matrix(np.array([[0, 1, 0, 1, 0, 0]], dtype=np.float32))
    foldin = sp.csr_matrix(np.array([[1, 0, 0, 0, 0, 0]], dtype=np.float32))
    users = type("U", (), {"foldin": foldin, "heldout": held})()
    oracle = lambda x: torch.from_numpy(held.toarray())  # noqa: E731
    got = evaluate_ranking(oracle, users, [1, 2])
    assert got["recall@1"][0] == 1.0 and got["recall@2"][0] == 1.0 and got["ndcg@2"][0] == 1.0


# ----------------------------------------------------------------------------- model math


def test_multinomial_nll_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 9, generator=gen, dtype=torch.float64)
    x = (torch.rand(4, 9, generator=gen) < 0.4).double()
    x[:, 0] = 1.0  # at least one click each
    n = x.sum(1)
    want = torch.stack(
        [
            -torch.distributions.Multinomial(int(n[i]), logits=logits[i]).log_prob(x[i])
            + torch.lgamma(n[i] + 1)  # the log multinomial coefficient, log N! for 0/1 clicks
            for i in range(4)
        ]
    )
    torch.testing.assert_close(multinomial_nll(logits, x), want)


def test_kl_weight_schedule():
    assert kl_weight(0, 0.2, 200_000) == 0.0
    assert kl_weight(20_000, 0.2, 200_000) == pytest.approx(0.1)
    assert kl_weight(40_000, 0.2, 200_000) == pytest.approx(0.2)
    assert kl_weight(10**6, 0.2, 200_000) == 0.2
    assert kl_weight(3, 0.7, 0) == 0.7
