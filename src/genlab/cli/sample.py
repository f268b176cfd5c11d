"""``genlab sample RUN [-n N] [--seed S] [--truncation T] [--label L] [--grid classes |
--interpolate K] [--out FILE] [--npy]``: a grid of samples, a class grid or rows of latent
interpolations, as a PNG or the raw array (``genlab.tools.sample``)."""

from __future__ import annotations

from genlab.cli.args import add_checkpoint_args
from genlab.tools.sample import sample


def add_parser(subs) -> None:
    p = subs.add_parser("sample", help="draw samples from a trained run")
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument(
        "-n",
        type=int,
        help="samples (default 64); columns with --grid classes, rows with --interpolate (8)",
    )
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--out", help="output file (default RUN/samples/<what>_seedS.png or .npy)")
    p.add_argument(
        "--npy", action="store_true", help="write the raw array (.npy): float32, or int64 token ids"
    )
    add_checkpoint_args(p)
    p.add_argument(
        "--truncation", type=float, metavar="T", help="latents from N(0, 1) truncated to [-T, T]"
    )
    p.add_argument(
        "--label",
        metavar="L",
        help="class index or name (class-conditional models); attribute models: the attributes "
        "that are on, e.g. large,left, or 0/1 per attribute",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--grid", choices=["classes"], help="classes: one row per class")
    mode.add_argument(
        "--interpolate", type=int, metavar="K", help="rows of K-step latent interpolations"
    )
    p.set_defaults(run=run)


def run(args) -> int:
    out = sample(
        args.run_dir,
        args.n,
        seed=args.seed,
        truncation=args.truncation,
        label=args.label,
        grid=args.grid,
        interpolate=args.interpolate,
        out=args.out,
        npy=args.npy,
        step=args.step,
        ema=not args.no_ema,
        device=args.device,
    )
    print(out)
    return 0
