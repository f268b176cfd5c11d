"""``genlab edit RUN --attr NAME --amount A [--n 64] [--seed S] [--steps K] [--step-size H]
[--judge-seed S2] [--out PNG] [--json]``.

Draws n latents with ``--seed``, moves each one until the domain classifier's logit for NAME
(a binary attribute of the data, else a class) has changed by A, and writes a PNG of rows of
samples before and after. Prints the success rate, the mean change of NAME's probability and
the entanglement with the other attributes, all read by the classifier (``genlab.tools.edit_run``,
docs/control.md).
"""

from __future__ import annotations

import json

from genlab.cli.args import add_checkpoint_args
from genlab.tools.edit_run import edit, text


def add_parser(subs) -> None:
    p = subs.add_parser(
        "edit",
        help="edit samples towards or away from an attribute (latent optimisation)",
        description="Move latents of a trained generator so that the domain classifier's logit "
        "for an attribute changes by --amount; report success and entanglement.",
    )
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("--attr", required=True, help="a binary attribute of the data, else a class")
    p.add_argument(
        "--amount", type=float, required=True, help="target change of the attribute's logit "
        "(> 0 raises it, < 0 lowers it; e.g. 6 or -6)",
    )  # fmt: skip
    p.add_argument("--n", type=int, default=64, help="samples edited (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents (default 0)")
    p.add_argument("--steps", type=int, default=100, help="most gradient steps (default 100)")
    p.add_argument(
        "--step-size", type=float, default=0.1, help="L2 length of one step in z (default 0.1)"
    )
    p.add_argument(
        "--judge-seed", type=int, metavar="S", help="also score with a second classifier "
        "trained with seed S (one the edit did not optimise against)",
    )  # fmt: skip
    p.add_argument("--out", help="PNG (default RUN/edit/edit_ATTR_AMOUNT_seedS.png)")
    add_checkpoint_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def run(args) -> int:
    report = edit(
        args.run_dir,
        args.attr,
        args.amount,
        n=args.n,
        seed=args.seed,
        steps=args.steps,
        step_size=args.step_size,
        judge_seed=args.judge_seed,
        out=args.out,
        step=args.step,
        ema=not args.no_ema,
        device=args.device,
        progress=not args.json,
    )
    print(json.dumps(report, indent=2) if args.json else text(report))
    return 0
