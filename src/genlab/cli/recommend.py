"""``genlab recommend RUN --user ID [-k 10] [--json]``: a user's top items not yet clicked
(``genlab.tools.recommend``)."""

from __future__ import annotations

import json

from genlab.cli.args import add_checkpoint_args
from genlab.tools.recommend import recommend, table


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
    record = recommend(
        args.run_dir, args.user, args.k, step=args.step, ema=not args.no_ema, device=args.device
    )
    print(json.dumps(record) if args.json else table(record))
    return 0
