"""``genlab probe RUN [--split test] [--n N] [--k 100] [--seed S] [--json]``: linear-probe
accuracy of the run's learned features (the encoder's code, else the discriminator's
penultimate features), of K-means triangle features and of raw pixels, fitted on the labelled
training split and scored on ``--split`` (``genlab.tools.probe``, docs/probe.md)."""

from __future__ import annotations

import json

from genlab.cli.args import add_checkpoint_args
from genlab.tools.probe import probe, table


def add_parser(subs) -> None:
    p = subs.add_parser(
        "probe",
        help="linear-probe accuracy of a model's features, k-means features and pixels",
        description="Fit a logistic regression on the labelled training split and score it on "
        "the test split, for the model's features, K-means triangle features and raw pixels.",
    )
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("--split", choices=("test", "train"), default="test", help="scored split")
    p.add_argument(
        "--n", type=int, default=10_000, help="most images of each split used (default 10000)"
    )
    p.add_argument("--k", type=int, default=100, help="k-means centroids (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of k-means and the subsets")
    add_checkpoint_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def run(args) -> int:
    record = probe(
        args.run_dir,
        split=args.split,
        n=args.n,
        k=args.k,
        seed=args.seed,
        step=args.step,
        ema=not args.no_ema,
        device=args.device,
    )
    print(json.dumps(record, indent=2) if args.json else table(record))
    return 0
