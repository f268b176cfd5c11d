"""Ranking metrics of recommendation runs (Liang et al. 2018, arXiv:1802.05814): ``recall@K``
and ``ndcg@K`` over the held-out test users, as defined in ``genlab.data.recsys``.

Each call also reports two baselines on exactly the same users, so a reader sees whether the
model earns its keep: ``popularity`` (every user gets the most clicked items) and ``ease``
(Steck 2019, arXiv:1905.03375). Both are fit on the training users plus the fold-in part of the
evaluated users: what a deployed system would know. The model ranks from the fold-in part alone
(it was trained on the training users). Rankings are computed once per run evaluation and
shared between ``recall@20,recall@50,ndcg@100`` through the context cache.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from genlab.core.errors import ConfigError
from genlab.data.recsys import (
    EASE_TUNE_MAX_ITEMS,
    HeldOut,
    Interactions,
    Scorer,
    evaluable,
    fit_ease,
    hits,
    ndcg_at_k,
    popularity_scorer,
    rank_users,
    recall_at_k,
)
from genlab.metrics.base import EvalContext, MetricResult, register_metric

MIN_RANKED = 100  # rank this many items at least, so recall@20/50 and ndcg@100 share one pass


def _check(ctx: EvalContext, what: str) -> None:
    if ctx.model.spec.kind != "interactions" or not hasattr(ctx.model, "scores"):
        raise ConfigError(
            f"metric {what!r} needs a recommendation model trained on clicks (multvae, multdae); "
            f"this run's model is {ctx.cfg.model.name!r}"
        )
    if ctx.split != "test":
        raise ConfigError(
            f"--split {ctx.split}: recommendation metrics rank items for the held-out test users; "
            "use --split test"
        )


def _users(ctx: EvalContext) -> HeldOut:
    """The test users with at least one held-out item, the first ``ctx.n`` of them if set."""
    if "recsys_users" not in ctx.cache:
        users = evaluable(ctx.data.extras["interactions"].test)
        if ctx.n is not None:
            users = users.take(np.arange(min(ctx.n, len(users))))
        ctx.cache["recsys_users"] = users
    return ctx.cache["recsys_users"]


def _scorers(ctx: EvalContext) -> dict[str, tuple[Scorer, str]]:
    """system -> (scorer of dense fold-in rows, note), built once."""
    if "recsys_scorers" in ctx.cache:
        return ctx.cache["recsys_scorers"]
    inter: Interactions = ctx.data.extras["interactions"]
    users = _users(ctx)
    fit_x = sp.vstack([inter.train, users.foldin]).tocsr()
    ease, lam = fit_ease(inter.train, inter.validation, users.foldin)
    how = (
        "chosen on the validation users by NDCG@100"
        if inter.train.shape[1] <= EASE_TUNE_MAX_ITEMS
        else f"not tuned (> {EASE_TUNE_MAX_ITEMS} items)"
    )
    model = ctx.model
    fraction = ctx.cfg.data.heldout_fraction
    scorers = {
        "model": (
            lambda rows: model.scores(rows.to(ctx.device)),
            f"{fraction:.0%} of each test user's items held out; fold-in items not ranked",
        ),
        "popularity": (popularity_scorer(fit_x), "click counts of training users + fold-in"),
        "ease": (ease, f"EASE, lambda={lam:g} {how}; fit on training users + fold-in"),
    }
    ctx.cache["recsys_scorers"] = scorers
    return scorers


def _hits(ctx: EvalContext, system: str, k: int) -> np.ndarray:
    """(U, >= k) bool hits of ``system``'s ranking, ranked once for the largest k asked."""
    cache = ctx.cache.setdefault("recsys_hits", {})
    if system not in cache or cache[system].shape[1] < k:
        score, _ = _scorers(ctx)[system]
        users = _users(ctx)
        ranked = rank_users(score, users.foldin, max(k, MIN_RANKED), ctx.batch_size)
        cache[system] = hits(ranked, users.heldout)
    return cache[system]


Measure = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def _results(ctx: EvalContext, name: str, k: int | None, measure: Measure) -> list[MetricResult]:
    _check(ctx, name)
    assert k is not None  # registered with takes_param: parse_metrics insists on @K
    users = _users(ctx)
    if len(users) == 0:
        raise ConfigError("no test user has a held-out item; raise data.heldout_users")
    n_heldout = np.diff(users.heldout.indptr)
    out = []
    for system, (_, note) in _scorers(ctx).items():
        values = measure(_hits(ctx, system, k), n_heldout, k)
        se = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
        out.append(
            MetricResult(
                f"{name}@{k}", float(values.mean()), float(se), "", len(values), note, system
            )
        )
    return out


@register_metric(
    "recall",
    help="Recall@K of held-out items, normalised by min(K, #held out) (Liang et al. 2018)",
    takes_param=True,
)
def recall(ctx: EvalContext, param: int | None) -> list[MetricResult]:
    return _results(ctx, "recall", param, recall_at_k)


@register_metric(
    "ndcg", help="NDCG@K of held-out items, binary relevance (Liang et al. 2018)", takes_param=True
)
def ndcg(ctx: EvalContext, param: int | None) -> list[MetricResult]:
    return _results(ctx, "ndcg", param, ndcg_at_k)
