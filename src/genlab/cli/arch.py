"""``genlab arch MODEL [--data D] [--preset P] [key=value ...] [--json]``: the layers of a model
as the resolved config builds them, with each layer's measured output shape and parameters
(``genlab.tools.arch``). A layer whose measured size disagrees with the conv formulas makes the
exit status 1."""

from __future__ import annotations

import json

from genlab.tools.arch import arch


def add_parser(subs) -> None:
    p = subs.add_parser("arch", help="layers, output shapes and parameter counts of a model")
    p.add_argument("model", help="registered model name (see `genlab list`)")
    p.add_argument("--data", help="dataset name (default: the preset's, else digits)")
    p.add_argument("--preset", help="preset name (default: the one named after the model)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def run(args) -> int:
    report = arch(args.model, data=args.data, preset=args.preset, overrides=args.overrides)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.text())
    return 1 if report.mismatches() else 0
