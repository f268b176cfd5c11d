"""``genlab eval RUN --metrics elbo,nll,recon [--n N] [--k 1000] [--json]``: a table for people,
JSON for scripts; every evaluation is also appended to ``RUN/eval.json``."""

from __future__ import annotations

import json

from genlab.metrics import evaluate, format_table
from genlab.registry import METRICS


def add_parser(subs) -> None:
    p = subs.add_parser(
        "eval",
        help="evaluate a trained run",
        description="Evaluate a run's newest checkpoint. Metrics: " + ", ".join(METRICS.names()),
    )
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("--metrics", required=True, help="comma-separated, e.g. elbo,nll,recon")
    p.add_argument("--n", type=int, help="evaluate on the first N items of the split (default all)")
    p.add_argument("--k", type=int, default=1000, help="importance samples for elbo/nll (1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the evaluation noise (default 0)")
    p.add_argument("--split", default="test", help="test (default) or train")
    p.add_argument("--batch-size", type=int, default=256, help="items per forward pass")
    p.add_argument("--step", type=int, help="checkpoint step (default: the newest)")
    p.add_argument("--no-ema", action="store_true", help="use raw weights even if EMA was kept")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def run(args) -> int:
    results = evaluate(
        args.run_dir,
        args.metrics,
        n=args.n,
        seed=args.seed,
        batch_size=args.batch_size,
        split=args.split,
        device=args.device,
        step=args.step,
        ema=not args.no_ema,
        options={"k": args.k},
        progress=not args.json,
    )
    if args.json:
        print(json.dumps({"run": str(args.run_dir), "results": [r.to_dict() for r in results]}))
    else:
        print(format_table(results))
    return 0
