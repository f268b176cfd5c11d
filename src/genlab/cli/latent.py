"""``genlab latent TOOL RUN``: explore the code space of a trained model with an encoder.

Tools: ``recon`` (inputs over reconstructions), ``interp`` (linear or spherical paths between
pairs of images), ``attribute --attr NAME`` (add an attribute vector to new images),
``traverse`` (one code dimension at a time) and ``scatter`` (codes coloured by class). Each
writes a PNG (default ``RUN/latent/TOOL_SPLIT_seedS.png``) and prints its path. The work is done
by ``genlab.tools.latent_run`` (one function per tool, same name).
"""

from __future__ import annotations

import argparse

from genlab.cli.args import add_checkpoint_args
from genlab.tools import latent_run
from genlab.tools.latent import AREA_THRESHOLD, INTERPOLATIONS


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("run_dir", metavar="RUN", help="a run directory (genlab train --out)")
    p.add_argument("--seed", type=int, default=0, help="seed of the images picked (default 0)")
    p.add_argument(
        "--split",
        choices=("test", "train"),
        default="test",
        help="split the images come from (default test)",
    )
    p.add_argument("--out", help="output PNG (default RUN/latent/TOOL_SPLIT_seedS.png)")
    add_checkpoint_args(p)
    return p


def add_parser(subs) -> None:
    p = subs.add_parser("latent", help="explore the latent space of a model with an encoder")
    tools = p.add_subparsers(dest="tool", required=True, parser_class=type(p))
    common = [_common()]
    t = tools.add_parser("recon", parents=common, help="inputs (top) and reconstructions")
    t.add_argument("--n", type=int, default=8, help="images (default 8)")
    t.set_defaults(run=run_recon)
    t = tools.add_parser("interp", parents=common, help="interpolate between pairs of images")
    t.add_argument("--mode", choices=tuple(INTERPOLATIONS), default="linear")
    t.add_argument("--steps", type=int, default=8, help="decoded steps per pair (default 8)")
    t.add_argument("--n", type=int, default=4, help="pairs, one per row (default 4)")
    t.set_defaults(run=run_interp)
    t = tools.add_parser("attribute", parents=common, help="add an attribute vector to images")
    t.add_argument("--attr", required=True, help="a binary attribute or class name of the data")
    t.add_argument("--strength", type=float, default=1.5, help="multiple of the vector added (1.5)")
    t.add_argument("--n", type=int, default=8, help="images without the attribute (default 8)")
    t.add_argument(
        "--threshold",
        type=float,
        default=AREA_THRESHOLD,
        help="foreground pixels are brighter than this, in [-1, 1] (default -0.5)",
    )
    t.set_defaults(run=run_attribute)
    t = tools.add_parser("traverse", parents=common, help="vary one code dimension at a time")
    t.add_argument("--steps", type=int, default=9, help="values per dimension (default 9)")
    t.add_argument("--dims", type=int, default=10, help="most dimensions shown (default 10)")
    t.set_defaults(run=run_traverse)
    t = tools.add_parser("scatter", parents=common, help="2-D map of codes coloured by class")
    t.add_argument("--n", type=int, default=2000, help="most images encoded (default 2000)")
    t.set_defaults(run=run_scatter)


def _where(args) -> dict:
    """The options every tool shares, as keyword arguments of ``genlab.tools.latent_run``."""
    return dict(
        seed=args.seed,
        split=args.split,
        out=args.out,
        step=args.step,
        ema=not args.no_ema,
        device=args.device,
    )


def run_recon(args) -> int:
    print(latent_run.recon(args.run_dir, n=args.n, **_where(args))["png"])
    return 0


def run_interp(args) -> int:
    result = latent_run.interp(
        args.run_dir, mode=args.mode, steps=args.steps, n=args.n, **_where(args)
    )
    print(result["png"])
    return 0


def run_attribute(args) -> int:
    r = latent_run.attribute(
        args.run_dir,
        args.attr,
        strength=args.strength,
        n=args.n,
        threshold=args.threshold,
        **_where(args),
    )
    print(r["png"])
    print(
        f"attribute {r['attr']!r}, strength {r['strength']:g}: vector norm "
        f"{r['vector_norm']:.3f}, {r['n']} images without it "
        "(rows: inputs, reconstructions, edited)"
    )
    if r["area_before"] is not None:  # light shapes on black: the foreground area is meaningful
        before, after = r["area_before"], r["area_after"]
        print(
            f"mean foreground area (pixels > {r['threshold']:g}): before {before:.1f} px, "
            f"after {after:.1f} px ({after - before:+.1f})"
        )
    return 0


def run_traverse(args) -> int:
    r = latent_run.traverse(args.run_dir, steps=args.steps, dims=args.dims, **_where(args))
    print(r["png"])
    print(f"rows: code dims {', '.join(map(str, r['dims']))} of {r['code_dim']}")
    return 0


def run_scatter(args) -> int:
    r = latent_run.scatter(args.run_dir, n=args.n, **_where(args))
    print(r["png"])
    print(r["title"])
    return 0
