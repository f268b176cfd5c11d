"""``genlab probe RUN [--split test] [--n N] [--k 100] [--seed S] [--json]``: linear-probe
accuracy of the run's learned features (the encoder's code, else the discriminator's
penultimate features), of K-means triangle features and of raw pixels, fitted on the labelled
training split and scored on ``--split`` (``genlab.tools.probe``, docs/probe.md)."""

from __future__ import annotations

import json

from genlab import api
from genlab.cli.args import add_checkpoint_args
from genlab.core.errors import ConfigError, DataError
from genlab.data import load_data
from genlab.tools.probe import ProbeResult, check_data, feature_source, probe


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
    if args.n < 2:
        raise ConfigError(f"--n {args.n}: give at least 2 images per split")
    if args.k < 1:
        raise ConfigError(f"--k {args.k}: give at least 1 centroid")
    cfg = api.load_config(args.run_dir)
    model = api.load(args.run_dir, step=args.step, ema=not args.no_ema, device=args.device)
    feature_source(model)  # the model's errors before the data is loaded
    data = load_data(cfg.data)
    check_data(data)
    if tuple(data.spec.shape) != tuple(model.spec.shape):
        raise DataError(
            f"dataset {cfg.data.name!r} now gives {data.spec.shape} but {args.run_dir} was "
            f"trained on {model.spec.shape}; restore the data it was trained on"
        )
    if args.k > min(args.n, len(data.train)):
        raise ConfigError(f"--k {args.k}: more centroids than training images used")
    result = probe(model, data, args.split, args.n, args.k, args.seed)
    head = {"run": str(args.run_dir), "model": cfg.model.name, "data": cfg.data.name}
    head["split"] = args.split
    if args.json:
        print(json.dumps({**head, **result.to_dict()}, indent=2))
    else:
        print(table(head, result))
    return 0


def table(head: dict, r: ProbeResult) -> str:
    lines = [
        f"linear probe of {head['run']} ({head['model']}) on {head['data']} class labels: "
        f"fitted on {r.n_train} train images, scored on {r.n_test} {head['split']} images",
        f"{'features':<44} {'dim':>6}  {'accuracy':>8}",
    ]
    for row in r.rows:
        mark = "" if row.converged else "  (did not converge)"
        lines.append(f"{row.description:<44} {row.dim:>6}  {row.accuracy:>8.3f}{mark}")
    lines.append(f"{'chance (the most frequent class)':<44} {'':>6}  {r.chance:>8.3f}")
    return "\n".join(lines)
