"""``genlab compare RUN RUN ... [--out compare.png] [--metric NAME ...] [--json]``: the runs'
newest metrics as a table (JSON for scripts) and their curves overlaid in one PNG
(``genlab.tools.compare``)."""

from __future__ import annotations

import json
from pathlib import Path

from genlab.core.io import atomic_write_bytes
from genlab.tools.compare import compare


def add_parser(subs) -> None:
    p = subs.add_parser("compare", help="compare the metrics and curves of several runs")
    p.add_argument("run_dirs", metavar="RUN", nargs="+", help="two or more run directories")
    p.add_argument("--out", default="compare.png", help="curves PNG (default compare.png)")
    p.add_argument(
        "--metric",
        action="append",
        metavar="NAME",
        help="a metric to compare, repeatable (default: the quality metrics all runs share, "
        "else their common losses); a NAME that is no logged key stands for eval/NAME",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def run(args) -> int:
    result = compare(args.run_dirs, args.metric)
    png = result.figure_png()
    out = Path(args.out) if png is not None else None
    if out is not None:
        atomic_write_bytes(out, png)
    if args.json:
        runs = [{"label": r.label, "path": str(r.path)} for r in result.runs]
        figure = None if out is None else str(out)
        print(json.dumps({"runs": runs, "metrics": result.rows(), "figure": figure}))
        return 0
    print(result.table())
    print(f"curves: {out}" if out is not None else "curves: none (no metric has a curve)")
    return 0
