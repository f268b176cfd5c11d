"""``genlab report RUN [--out PATH] [--step N]``: one self-contained HTML page about a run
(``genlab.tools.report``); prints its path, its size and what it does not show."""

from __future__ import annotations

from genlab.tools.report import write_report


def add_parser(subs) -> None:
    p = subs.add_parser(
        "report",
        help="write RUN/report.html: config, samples, curves, evaluations, model pictures",
    )
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("--out", help="output HTML file (default RUN/report.html)")
    p.add_argument("--step", type=int, help="checkpoint the model pictures use (default newest)")
    p.add_argument("--seed", type=int, default=0, help="seed of samples and images (default 0)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.set_defaults(run=run)


def run(args) -> int:
    path, report = write_report(
        args.run_dir, args.out, step=args.step, seed=args.seed, device=args.device
    )
    print(f"{path} ({path.stat().st_size / 1e6:.2f} MB, sections: {', '.join(report.sections)})")
    for line in report.missing:
        print(f"not shown: {line}")
    return 0
