"""Recommendation from implicit feedback: the held-out-user protocol, ranking metrics and two
baselines, as pure functions over scipy.sparse click matrices (users x items, 1 = clicked).

Protocol (Liang et al. 2018, "Variational Autoencoders for Collaborative Filtering",
arXiv:1802.05814, section 4.2): users are split into training, validation and test users. Models
are fit on the training users' whole histories. For a held-out user a random ``fraction`` of
the items is hidden (the *held-out* part) and the rest is given (the *fold-in* part); a model
ranks every item not in the fold-in part, and the metrics ask how many hidden items it ranks
near the top. Only items some training user clicked are kept as columns.

Metrics (the paper's definitions, eqs. 12-13): with ``hits[r] = 1`` when the item ranked r+1 is
held out and n the number of held-out items,

    Recall@K = sum_{r<K} hits[r] / min(K, n)
    NDCG@K   = DCG@K / IDCG@K,  DCG@K = sum_{r<K} hits[r] / log2(r + 2),
               IDCG@K = sum_{r<min(K, n)} 1 / log2(r + 2)

Baselines: item popularity, and EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for
Sparse Data", arXiv:1905.03375): B = I - P diag(1 / diag(P)) with P = (X^T X + lambda I)^-1,
so diag(B) = 0 and the scores of a user x are x B.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from genlab.core.errors import ConfigError

# A user with fewer items than this keeps them all in the fold-in part (as in the paper's code).
MIN_ITEMS_TO_HOLD_OUT = 5
EASE_LAMBDAS = (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)
EASE_DEFAULT_LAMBDA = 500.0  # Steck 2019's value for ML-20M; used where tuning is too costly
EASE_TUNE_MAX_ITEMS = 5000  # above this, one (I, I) inverse per grid value costs minutes


@dataclass
class HeldOut:
    """Users held out of training: per user, the given items and the hidden ones."""

    foldin: sp.csr_matrix  # (U, I) float32 0/1: the model sees these
    heldout: sp.csr_matrix  # (U, I) float32 0/1: the model must rank these high
    user_ids: np.ndarray  # (U,) int64 ids as in the source file

    def __len__(self) -> int:
        return self.foldin.shape[0]

    def take(self, rows: np.ndarray) -> HeldOut:
        return HeldOut(self.foldin[rows], self.heldout[rows], self.user_ids[rows])


@dataclass
class Interactions:
    """A click matrix split by the protocol above."""

    train: sp.csr_matrix  # (U_train, I) whole histories of the training users
    train_user_ids: np.ndarray  # (U_train,)
    validation: HeldOut
    test: HeldOut
    item_ids: np.ndarray  # (I,) item ids as in the source file, one per column


# ----------------------------------------------------------------------------- protocol


def clicks_matrix(
    users: np.ndarray, items: np.ndarray
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Interaction pairs (N,) -> (CSR (U, I) float32 0/1, user ids (U,), item ids (I,)); ids are
    sorted, duplicate pairs count once."""
    user_ids, rows = np.unique(users, return_inverse=True)
    item_ids, cols = np.unique(items, return_inverse=True)
    data = np.ones(len(rows), dtype=np.float32)
    m = sp.csr_matrix((data, (rows, cols)), shape=(len(user_ids), len(item_ids)))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m, user_ids.astype(np.int64), item_ids.astype(np.int64)


def heldout_count(heldout_users: float | None, num_users: int) -> int:
    """Validation (and test) users from ``data.heldout_users``: a count, a share if < 1, or by
    default 10% of the users capped at the paper's 10,000."""
    if heldout_users is None:
        n = min(10_000, max(1, round(0.1 * num_users)))
    elif heldout_users < 1:
        n = max(1, round(heldout_users * num_users))
    elif float(heldout_users).is_integer():
        n = int(heldout_users)
    else:
        raise ConfigError(f"data.heldout_users={heldout_users}: give a whole count or a share < 1")
    if num_users - 2 * n < 1:
        raise ConfigError(
            f"data.heldout_users={heldout_users} holds out {n} validation and {n} test users "
            f"but there are only {num_users} users; lower it"
        )
    return n


def split_items(
    m: sp.csr_matrix, fraction: float, rng: np.random.Generator
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Hide a random ``fraction`` of each user's items: (fold-in, held-out), both (U, I).
    A user with n >= 5 items hides max(1, floor(fraction * n)) of them; fewer, none."""
    m = m.tocsr()
    counts = np.diff(m.indptr)
    rows = np.repeat(np.arange(m.shape[0]), counts)
    # Rank each row's entries by a random key: the lowest ``hide`` ranks are held out.
    order = np.lexsort((rng.random(m.nnz), rows))
    rank = np.empty(m.nnz, dtype=np.int64)
    rank[order] = np.arange(m.nnz) - m.indptr[rows[order]]
    hide = np.where(
        counts >= MIN_ITEMS_TO_HOLD_OUT, np.maximum(1, (fraction * counts).astype(int)), 0
    )
    held = rank < hide[rows]
    shape = m.shape
    part = lambda mask: sp.csr_matrix(  # noqa: E731
        (m.data[mask], (rows[mask], m.indices[mask])), shape=shape, dtype=np.float32
    )
    return part(~held), part(held)


def split_users(
    m: sp.csr_matrix,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    *,
    heldout_users: float | None,
    fraction: float,
    seed: int,
) -> Interactions:
    """The paper's protocol on a click matrix (U, I): a seeded permutation of the users gives
    training, validation and test users; columns no training user clicked are dropped; each
    held-out user's items are split by ``split_items``."""
    rng = np.random.default_rng(seed)
    n = heldout_count(heldout_users, m.shape[0])
    perm = rng.permutation(m.shape[0])
    train_rows, val_rows, test_rows = perm[: -2 * n], perm[-2 * n : -n], perm[-n:]
    train = m[np.sort(train_rows)]
    keep = np.flatnonzero(np.diff(train.tocsc().indptr) > 0)  # items of the training users
    train = train[:, keep]

    def held(rows: np.ndarray) -> HeldOut:
        rows = np.sort(rows)
        foldin, hidden = split_items(m[rows][:, keep], fraction, rng)
        return HeldOut(foldin, hidden, user_ids[rows])

    return Interactions(
        train.astype(np.float32),
        user_ids[np.sort(train_rows)],
        held(val_rows),
        held(test_rows),
        item_ids[keep],
    )


# ----------------------------------------------------------------------------- metrics


def top_k(scores: torch.Tensor, exclude: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, k) of the k best items per row of ``scores`` (B, I), best first; items where
    ``exclude`` (B, I) is nonzero (the fold-in items) are never ranked."""
    masked = scores.float().masked_fill(exclude > 0, float("-inf"))
    return masked.topk(min(k, scores.shape[1]), dim=1).indices


def hits(ranked: np.ndarray, heldout: sp.csr_matrix) -> np.ndarray:
    """(U, K) bool: whether the item at each rank of ``ranked`` (U, K) is held out for its user."""
    rows = np.arange(ranked.shape[0])[:, None]
    return heldout[rows, ranked].toarray() > 0


def _discount(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))  # rank r (0-based) -> 1 / log2(r + 2)


def recall_at_k(hit: np.ndarray, n_heldout: np.ndarray, k: int) -> np.ndarray:
    """Recall@k per user (U,) in [0, 1] from ``hits`` (U, >= k) and held-out counts (U,) >= 1."""
    return hit[:, :k].sum(1) / np.minimum(k, n_heldout)


def ndcg_at_k(hit: np.ndarray, n_heldout: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k per user (U,) in [0, 1] from ``hits`` (U, >= k) and held-out counts (U,) >= 1."""
    disc = _discount(k)
    dcg = (hit[:, :k] * disc[: hit[:, :k].shape[1]]).sum(1)
    idcg = np.cumsum(disc)[np.minimum(k, n_heldout) - 1]
    return dcg / idcg


# ----------------------------------------------------------------------------- rankers

Scorer = Callable[[torch.Tensor], torch.Tensor]  # dense fold-in rows (B, I) -> scores (B, I)


def rank_users(score: Scorer, foldin: sp.csr_matrix, k: int, batch_size: int = 256) -> np.ndarray:
    """(U, k) item indices, best first, of ``score`` on each user's fold-in row; fold-in items
    excluded. Only ``batch_size`` rows are dense at a time."""
    out = []
    for start in range(0, foldin.shape[0], batch_size):
        x = torch.from_numpy(foldin[start : start + batch_size].toarray())
        out.append(top_k(score(x).cpu(), x, k).numpy())
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


def popularity_scorer(x: sp.csr_matrix) -> Scorer:
    """Every user gets the same scores: the item click counts of ``x`` (U, I)."""
    counts = torch.from_numpy(np.asarray(x.sum(0), dtype=np.float32).ravel())
    return lambda rows: counts.expand(rows.shape[0], -1)


def ease_weights(x: sp.csr_matrix, lam: float) -> np.ndarray:
    """EASE item-item weights B (I, I) float64 with zero diagonal, fit on clicks ``x`` (U, I)."""
    gram = (x.T @ x).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += lam
    b = np.linalg.inv(gram)
    del gram  # (I, I) float64 each: 3.2 GB for ML-20M's 20k items, so one at a time
    b /= -np.diag(b).copy()[None, :]  # B_ij = -P_ij / P_jj
    np.fill_diagonal(b, 0.0)
    return b


def ease_scorer(b: np.ndarray) -> Scorer:
    weights = torch.from_numpy(b.astype(np.float32))
    return lambda rows: rows @ weights


def evaluate_ranking(score: Scorer, users: HeldOut, ks: list[int]) -> dict[str, np.ndarray]:
    """Per-user ``recall@k`` and ``ndcg@k`` (U,) for each k of ``ks``."""
    ranked = rank_users(score, users.foldin, max(ks))
    hit = hits(ranked, users.heldout)
    n = np.diff(users.heldout.indptr)
    out = {f"recall@{k}": recall_at_k(hit, n, k) for k in ks}
    out.update({f"ndcg@{k}": ndcg_at_k(hit, n, k) for k in ks})
    return out


def fit_ease(
    train: sp.csr_matrix, validation: HeldOut, foldin: sp.csr_matrix
) -> tuple[Scorer, float]:
    """EASE fit on the training users plus ``foldin`` (the given part of the evaluated users),
    lambda chosen from ``EASE_LAMBDAS`` by the validation users' NDCG@100 where the item count
    makes that cheap (else Steck's ML-20M value). Returns (scorer, lambda)."""
    lam, validation = EASE_DEFAULT_LAMBDA, evaluable(validation)
    if train.shape[1] <= EASE_TUNE_MAX_ITEMS and len(validation):
        fit_x = sp.vstack([train, validation.foldin]).tocsr()
        best = -1.0
        for candidate in EASE_LAMBDAS:
            scorer = ease_scorer(ease_weights(fit_x, candidate))
            ndcg = evaluate_ranking(scorer, validation, [100])["ndcg@100"].mean()
            if ndcg > best:
                lam, best = candidate, ndcg
    b = ease_weights(sp.vstack([train, foldin]).tocsr(), lam)
    return ease_scorer(b), lam


def evaluable(users: HeldOut) -> HeldOut:
    """The users with at least one held-out item (the metrics are undefined for the others)."""
    return users.take(np.flatnonzero(np.diff(users.heldout.indptr) > 0))


# ----------------------------------------------------------------------------- recommending


def user_history(inter: Interactions, user_id: int) -> sp.csr_matrix | None:
    """(1, I) every known click of ``user_id`` (for a held-out user, both parts), or None."""
    groups = (
        (inter.train_user_ids, inter.train),
        (inter.validation.user_ids, inter.validation.foldin + inter.validation.heldout),
        (inter.test.user_ids, inter.test.foldin + inter.test.heldout),
    )
    for ids, rows in groups:
        found = np.flatnonzero(ids == user_id)
        if found.size:
            return rows[found[0]]
    return None


def recommend(score: Scorer, history: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` items the user of ``history`` (1, I) has not clicked: (column indices (k',),
    probabilities (k',) under softmax of the scores over all items), best first; k' = k unless
    fewer items are unseen."""
    x = torch.from_numpy(history.toarray().astype(np.float32))
    logits = score(x).cpu().float()
    k = min(k, int((x == 0).sum()))
    items = top_k(logits, x, k)[0]
    probs = torch.softmax(logits[0], dim=0)[items]
    return items.numpy(), probs.numpy()
