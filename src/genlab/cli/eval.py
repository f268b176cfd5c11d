"""``genlab eval RUN --metrics elbo,nll,recon [--n N] [--k 1000] [--json]``: a table for people,
JSON for scripts; every evaluation is also appended to ``RUN/eval.json``. Image metrics
(``fid,kid,is,prdc,memorisation``) take ``--features`` and ``--inception-weights``."""

from __future__ import annotations

import json

from genlab.api import evaluate
from genlab.cli.args import add_checkpoint_args
from genlab.core.registry import METRICS
from genlab.metrics import format_table
from genlab.metrics.features import CHOICES


def add_parser(subs) -> None:
    p = subs.add_parser(
        "eval",
        help="evaluate a trained run",
        description="Evaluate a run's newest checkpoint. Metrics: " + ", ".join(METRICS.names()),
    )
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("--metrics", required=True, help="comma-separated, e.g. elbo,nll,recon")
    p.add_argument(
        "--n",
        type=int,
        help="evaluate on the first N items of the split (default all); image metrics also "
        "draw N samples",
    )
    p.add_argument("--k", type=int, default=1000, help="importance samples for elbo/nll (1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the evaluation noise (default 0)")
    p.add_argument("--split", default="test", help="test (default) or train")
    p.add_argument("--batch-size", type=int, default=256, help="items per forward pass")
    add_checkpoint_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    image = p.add_argument_group("image metrics (fid, kid, is, prdc, memorisation)")
    image.add_argument(
        "--features",
        default="auto",
        choices=CHOICES,
        help="feature space: inception with --inception-weights, else the data's classifier "
        "when it has labels, else a random conv net (default auto)",
    )
    image.add_argument(
        "--inception-weights", metavar="PATH", help="the FID Inception weights file (pytorch-fid)"
    )
    image.add_argument("--subsets", type=int, default=100, help="kid: random subsets (100)")
    image.add_argument(
        "--subset-size", type=int, default=1000, help="kid: points per subset (1000, or fewer)"
    )
    image.add_argument("--splits", type=int, default=10, help="is: splits of the samples (10)")
    p.set_defaults(run=run)


def run(args) -> int:
    options = {
        "k": args.k,
        "subsets": args.subsets,
        "subset_size": args.subset_size,
        "splits": args.splits,
        "features": args.features,
        "inception_weights": args.inception_weights,
    }
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
        options=options,
        progress=not args.json,
    )
    if args.json:
        print(json.dumps({"run": str(args.run_dir), "results": [r.to_dict() for r in results]}))
    else:
        print(format_table(results))
    return 0
