"""Implicit feedback (user x item clicks) as datasets, and ``clicks``: a procedural generator
with planted user groups and power-law item popularity, so tests and demos need no download.

A click dataset is a scipy.sparse CSR matrix, never densified whole: ``train.x`` holds the
training users' histories (U_train, I); ``test.x`` the fold-in part of the test users; the
rest of the protocol (validation users, held-out parts, original ids) is the
``genlab.data.recsys.Interactions`` in ``bundle.extras["interactions"]``. Models see float32 0/1
rows of one batch at a time.

The generator. Items get a Zipf popularity pop_i = rank_i^-alpha over a random order, and
each item belongs to one of G taste groups. A user has a primary and a secondary group; their
click distribution is

    p_u(i) ∝ pop_i * (1 + PRIMARY_BOOST [g_i = primary_u] + SECONDARY_BOOST [g_i = secondary_u])

so about half of a user's clicks fall in the primary group, a fifth in the secondary one and the
rest follow popularity alone. The number of clicks is log-normal around ``MEAN_DENSITY`` of the
items (at least 5); the clicks are drawn without replacement (Gumbel top-k). What a good
recommender must find is the groups; popularity alone explains about a quarter of the clicks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from genlab.core.config import DataConfig
from genlab.core.errors import DataError
from genlab.data.base import DataBundle, DataSpec, Split, register_dataset
from genlab.data.recsys import Interactions, split_users

DEFAULT_USERS, DEFAULT_ITEMS = 6000, 1000
ALPHA = 1.0  # Zipf exponent of item popularity
PRIMARY_BOOST, SECONDARY_BOOST = 30.0, 10.0
MEAN_DENSITY = 0.03  # median share of the items a user clicks
MIN_CLICKS = 5  # the paper keeps users with at least 5 interactions


def num_groups(num_items: int) -> int:
    """Taste groups: about sqrt(I) / 2 (16 for 1,000 items), at least 2."""
    return max(2, round(num_items**0.5 / 2))


def generate_clicks(
    num_users: int, num_items: int, seed: int, chunk: int = 1024
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """A click matrix (num_users, num_items) float32 0/1 CSR, deterministic in ``seed``, with
    the users' primary groups (U,) int64 and the items' groups (I,) int64 (the planted truth)."""
    rng = np.random.default_rng([seed, 1])  # a stream apart from the split's (seed)
    g = num_groups(num_items)
    log_pop = -ALPHA * np.log(rng.permutation(num_items) + 1.0)
    item_group = rng.integers(g, size=num_items)
    primary = rng.integers(g, size=num_users)
    secondary = (primary + rng.integers(1, g, size=num_users)) % g  # another group
    median = max(MIN_CLICKS, MEAN_DENSITY * num_items)
    counts = np.exp(np.log(median) + 0.6 * rng.standard_normal(num_users))
    counts = np.clip(counts.round(), MIN_CLICKS, num_items // 4).astype(np.int64)
    rows, cols = [], []
    for start in range(0, num_users, chunk):
        stop = min(start + chunk, num_users)
        taste = (
            1.0
            + PRIMARY_BOOST * (item_group[None, :] == primary[start:stop, None])
            + SECONDARY_BOOST * (item_group[None, :] == secondary[start:stop, None])
        )
        # Gumbel top-k: the k largest of log p + Gumbel noise are a draw of k items without
        # replacement, each step proportional to p among the items not yet drawn.
        keys = log_pop[None, :] + np.log(taste) + rng.gumbel(size=taste.shape)
        k_max = int(counts[start:stop].max())
        top = np.argpartition(-keys, k_max - 1, axis=1)[:, :k_max]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(keys, top, 1), 1), 1)
        take = np.arange(k_max)[None, :] < counts[start:stop, None]
        rows.append(np.nonzero(take)[0] + start)
        cols.append(top[take])
    r, c = np.concatenate(rows), np.concatenate(cols)
    m = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(num_users, num_items))
    m.sort_indices()
    return m, primary.astype(np.int64), item_group.astype(np.int64)


def interactions_bundle(
    name: str,
    m: sp.csr_matrix,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    cfg: DataConfig,
    extras: dict[str, Any] | None = None,
) -> DataBundle:
    """The paper's held-out protocol (``genlab.data.recsys.split_users``) as a DataBundle."""
    if m.nnz == 0:
        raise DataError(f"dataset {name!r} has no interactions")
    inter: Interactions = split_users(
        m,
        user_ids,
        item_ids,
        heldout_users=cfg.heldout_users,
        fraction=cfg.heldout_fraction,
        seed=cfg.split_seed,
    )
    num_items = inter.train.shape[1]
    spec = DataSpec("interactions", (num_items,))
    return DataBundle(
        name,
        spec,
        Split(inter.train),
        Split(inter.test.foldin),
        extras={"interactions": inter, **(extras or {})},
    )


_USES = ("heldout_users", "heldout_fraction", "split_seed")


@register_dataset(
    "clicks",
    uses=(*_USES, "num_users", "num_items"),
    help="procedural implicit feedback: planted user groups, power-law item popularity",
)
def load_clicks(cfg: DataConfig) -> DataBundle:
    num_users = cfg.num_users or DEFAULT_USERS
    num_items = cfg.num_items or DEFAULT_ITEMS
    m, primary, item_group = generate_clicks(num_users, num_items, cfg.split_seed)
    ids = np.arange(num_users, dtype=np.int64)
    extras = {"user_groups": primary, "item_groups": item_group}
    return interactions_bundle("clicks", m, ids, np.arange(num_items, dtype=np.int64), cfg, extras)
