"""``genlab coverage --models gan,wgan_gp --data ring8,grid25 --seeds 5 [--out DIR] [--json]
[key=value ...]``: the mode-collapse sweep of ``genlab.tools.coverage``; runs finished in ``--out``
are skipped, so a stopped sweep resumes. Overrides apply to every run (``train.steps=100``)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from tqdm.auto import tqdm

from genlab.tools.coverage import markdown, plan, sweep


def add_parser(subs) -> None:
    p = subs.add_parser(
        "coverage",
        help="mode collapse of GAN variants on ring8 / grid25 over seeds",
        description="Train each variant on each 2-D mixture with its preset VARIANT_DATA for "
        "seeds 0..N-1, count the modes captured and the high-quality share (VEEGAN/PacGAN "
        "protocol), and print mean +- std over seeds. Writes OUT/coverage.md and coverage.json.",
    )
    p.add_argument("--models", required=True, help="comma-separated variants, e.g. gan,wgan_gp")
    p.add_argument("--data", default="ring8,grid25", help="comma-separated (ring8,grid25)")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per pair (default 5)")
    p.add_argument("--out", default="runs/coverage", help="sweep directory (runs/coverage)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="applied to every run")
    p.set_defaults(run=run)


def split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def run(args) -> int:
    variants, datasets = split(args.models), split(args.data)
    jobs = plan(variants, datasets, args.seeds)  # bad names fail here, before any training
    bar = tqdm(total=len(jobs), desc="coverage", unit="run", disable=not sys.stderr.isatty())
    done = [0]  # a disabled bar does not count

    def on_run(r, skipped: bool) -> None:
        done[0] += 1
        what = f"{r.variant} {r.data} seed {r.seed}: {r.modes:g}/{r.of} modes, {r.hq:.1f}% hq"
        if skipped:
            tqdm.write(f"skip {what} (finished before)", file=sys.stderr)
        elif bar.disable:  # no bar on a log file: one line per run instead
            print(f"[{done[0]}/{len(jobs)}] {what}, {r.wall_s:.0f} s", file=sys.stderr)
        bar.update(1)

    rows = sweep(variants, datasets, args.seeds, args.out, overrides=args.overrides, on_run=on_run)
    bar.close()
    if args.json:
        print(json.dumps([{**asdict(r), "goal": r.goal} for r in rows]))
    else:
        print(markdown(rows), end="")
        print(f"written: {args.out}/coverage.md, {args.out}/coverage.json")
    return 0
