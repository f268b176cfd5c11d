"""Recommendations of a click-data run (``genlab recommend``): the top-k items a user has not
clicked, ranked by the run's model (multvae, multdae; ``genlab.data.recsys``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genlab.api import load, load_config
from genlab.core.errors import ConfigError
from genlab.data import load_data, recsys


def recommend(
    run_dir: str | Path,
    user: int | str,
    k: int = 10,
    *,
    step: int | None = None,
    ema: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    """The ``k`` best items ``user`` (an id as in the source file, MovieLens userId) has not
    clicked, by the run's model. Returns ``{"run", "user", "clicked", "items"}``: the number of
    items the user clicked, and per item its rank (1 = best), item id, score (its probability
    under the softmax over all items, in [0, 1]) and title (None when the data has none)."""
    if k < 1:
        raise ConfigError(f"-k {k}: give a positive number of items")
    try:
        uid = int(user)
    except ValueError:
        raise ConfigError(f"--user {user!r}: user ids are whole numbers") from None
    model = load(run_dir, step=step, ema=ema, device=device)
    cfg = load_config(run_dir)
    if model.spec.kind != "interactions" or not hasattr(model, "scores"):
        raise ConfigError(
            f"{run_dir} is a {cfg.model.name!r} run; recommend needs multvae or multdae"
        )
    data = load_data(cfg.data)
    inter = data.extras["interactions"]
    history = recsys.user_history(inter, uid)
    if history is None:
        raise ConfigError(f"--user {uid}: no such user in this run's {data.name!r} data")
    items, probs = recsys.recommend(lambda x: model.scores(x.to(model.device)), history, k)
    titles = data.extras.get("titles") or {}
    rows = [
        {
            "rank": r + 1,
            "item": int(inter.item_ids[i]),
            "score": float(p),
            "title": titles.get(int(inter.item_ids[i])),
        }
        for r, (i, p) in enumerate(zip(items, probs, strict=True))
    ]
    return {"run": str(run_dir), "user": uid, "clicked": history.nnz, "items": rows}


def table(record: dict[str, Any]) -> str:
    """A recommendation (``recommend``) for people: a heading, then one line per item."""
    items = record["items"]
    lines = [
        f"user {record['user']}: {record['clicked']} items clicked; top {len(items)} unseen "
        "(score = probability)"
    ]
    for row in items:
        title = f"  {row['title']}" if row["title"] else ""
        lines.append(f"{row['rank']:>4}  item {row['item']:<8} {row['score']:.4g}{title}")
    return "\n".join(lines)
