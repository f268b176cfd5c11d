"""``genlab recommend RUN --user ID [-k 10] [--json]``: a user's top items not yet clicked."""

from __future__ import annotations

import json

from genlab import api
from genlab.cli.args import add_checkpoint_args
from genlab.core.errors import ConfigError
from genlab.data import load_data
from genlab.data.recsys import recommend, user_history


def add_parser(subs) -> None:
    p = subs.add_parser(
        "recommend",
        help="top-k unseen items for a user of a recommendation run",
        description="Rank the items USER has not clicked with the run's model (multvae, "
        "multdae). USER is an id as in the source file (MovieLens userId).",
    )
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("--user", required=True, help="user id as in the data file")
    p.add_argument("-k", type=int, default=10, help="number of items (default 10)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_checkpoint_args(p)
    p.set_defaults(run=run)


def run(args) -> int:
    if args.k < 1:
        raise ConfigError(f"-k {args.k}: give a positive number of items")
    try:
        user = int(args.user)
    except ValueError:
        raise ConfigError(f"--user {args.user!r}: user ids are whole numbers") from None
    model = api.load(args.run_dir, step=args.step, ema=not args.no_ema, device=args.device)
    if model.spec.kind != "interactions" or not hasattr(model, "scores"):
        name = api.load_config(args.run_dir).model.name
        raise ConfigError(f"{args.run_dir} is a {name!r} run; recommend needs multvae or multdae")
    data = load_data(api.load_config(args.run_dir).data)
    inter = data.extras["interactions"]
    history = user_history(inter, user)
    if history is None:
        raise ConfigError(f"--user {user}: no such user in this run's {data.name!r} data")
    items, probs = recommend(lambda x: model.scores(x.to(model.device)), history, args.k)
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
    if args.json:
        record = {"run": str(args.run_dir), "user": user, "clicked": history.nnz, "items": rows}
        print(json.dumps(record))
        return 0
    print(f"user {user}: {history.nnz} items clicked; top {len(rows)} unseen (score = probability)")
    for row in rows:
        title = f"  {row['title']}" if row["title"] else ""
        print(f"{row['rank']:>4}  item {row['item']:<8} {row['score']:.4g}{title}")
    return 0
