"""``genlab train MODEL --data DATASET [--preset P] [--out RUN] [key=value ...]`` and
``genlab train --resume RUN [train.key=value ...]``."""

from __future__ import annotations

import os
import subprocess
import sys

from genlab import api
from genlab.core.config import build_config
from genlab.core.errors import ConfigError


def add_parser(subs) -> None:
    p = subs.add_parser(
        "train",
        help="train a model",
        description="Train MODEL on DATASET. Overrides are dotted key=value pairs, e.g. "
        "train.steps=500 model.latent_dim=32 data.image_size=32.",
    )
    p.add_argument("model", nargs="?", help="registered model name (genlab list)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--data", help="dataset name (default: digits, or the preset's)")
    p.add_argument("--preset", help="named preset (default: the one named after the model)")
    p.add_argument("--out", help="run directory (default: runs/MODEL-DATA-TIME)")
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its newest checkpoint")
    p.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="data parallel training on N local processes: the same as `torchrun --standalone "
        "--nproc_per_node N -m genlab train ...` (train.batch_size is per process)",
    )
    p.set_defaults(run=run)


def launch(args, overrides: list[str]) -> int:
    """Re-run this command under torchrun with ``args.nproc`` processes on this machine."""
    if args.nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {args.nproc}")
    if "WORLD_SIZE" in os.environ:
        raise ConfigError("--nproc starts torchrun itself; inside a torchrun job leave it out")
    if not args.resume:  # bad config: one line here, not a failure in each process
        build_config(args.model, data=args.data, preset=args.preset, overrides=overrides)
    options = {"--data": args.data, "--preset": args.preset, "--out": args.out}
    options["--resume"] = args.resume
    argv = [a for k, v in options.items() if v is not None for a in (k, str(v))]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += [f"--nproc_per_node={args.nproc}", "-m", "genlab", "train"]
    cmd += [*([args.model] if args.model else []), *argv, *overrides]
    return subprocess.run(cmd, check=False).returncode


def run(args) -> int:
    overrides = list(args.overrides)
    if args.model and "=" in args.model:  # `genlab train --resume RUN train.steps=9`
        overrides.insert(0, args.model)
        args.model = None
    if args.nproc is not None and args.nproc != 1:
        return launch(args, overrides)
    if args.resume:
        if args.model or args.data or args.preset or args.out:
            msg = "--resume RUN takes only train.* overrides; the run keeps its config"
            raise ConfigError(msg)
        run_dir = api.train(resume=args.resume, overrides=overrides)
    else:
        if not args.model:
            raise ConfigError("name a model to train, e.g. `genlab train vae --data digits`")
        run_dir = api.train(
            args.model, data=args.data, preset=args.preset, overrides=overrides, out=args.out
        )
    if os.environ.get("RANK", "0") != "0":  # in a torchrun job, rank 0 speaks for all
        return 0
    samples = sorted((run_dir / "samples").glob("step_*.png"), key=lambda p: int(p.stem[5:]))
    print(f"run: {run_dir}")
    if samples:
        print(f"samples: {samples[-1]}")
    return 0
