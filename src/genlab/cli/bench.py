"""``genlab bench [--models vae,dcgan] [--device cpu|cuda]``: training throughput as JSON.
``genlab bench --loader (--data-root DIR | --generate N) [data.crop=108]``: the image-folder
loader (cold and warm load, data time per batch beside a training step), a table and JSON."""

from __future__ import annotations

import json
import sys

from genlab.core.errors import ConfigError
from genlab.core.registry import MODELS

# Defaults of the options both modes share: model throughput, and the loader (whose one timed
# step, a 64 px DCGAN at batch 128, takes seconds on a laptop CPU).
DEFAULTS = {
    False: {"models": "vae,dcgan", "image_size": 32, "steps": 20, "warmup": 3, "rounds": 3},
    True: {"models": "dcgan", "image_size": 64, "steps": 2, "warmup": 1, "rounds": 1},
}


def add_parser(subs) -> None:
    p = subs.add_parser(
        "bench",
        help="training throughput, FLOPs, fraction of matmul peak, memory, overhead vs a bare loop",
        description="Time each model's training step and a hand-written loop of the same "
        "networks; print JSON. Overrides apply to both, e.g. train.precision=bf16 "
        "train.channels_last=true train.compile=true. With --loader, time an image folder's "
        "loading instead (data.* overrides, e.g. data.crop=108, set its config).",
    )
    p.add_argument("--models", help="comma-separated (default vae,dcgan; --loader: dcgan)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--image-size", type=int, help="default 32; --loader: 64")
    p.add_argument("--steps", type=int, help="timed steps per model (default 20; --loader: 2)")
    p.add_argument("--warmup", type=int, help="default 3; --loader: 1")
    p.add_argument(
        "--rounds", type=int, help="timed rounds per model; best is kept (default 3; --loader: 1)"
    )
    p.add_argument(
        "--peaks",
        action="store_true",
        help="also measure bf16's matmul peak where bf16 is emulated (slow, but bounded)",
    )
    p.add_argument(
        "--loader",
        action="store_true",
        help="time loading an image folder: cold (decode + cache) and warm (mapped cache) "
        "load, data time per batch and its share of the first model's training step",
    )
    p.add_argument("--data-root", metavar="DIR", help="--loader: the folder of images")
    p.add_argument(
        "--generate",
        type=int,
        metavar="N",
        help="--loader: write N synthetic 178x218 JPEGs to a temporary folder and time that",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(run=run)


def run(args) -> int:
    for key, value in DEFAULTS[args.loader].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    models = [m for m in args.models.split(",") if m]
    if not models:
        raise ConfigError("--models names no model; e.g. --models dcgan")
    for m in models:
        MODELS.entry(m)
    if args.steps < 1 or args.warmup < 0 or args.rounds < 1:
        raise ConfigError("--steps and --rounds must be >= 1 and --warmup >= 0")
    if args.loader:
        return run_loader(args, models[0])
    if args.data_root or args.generate is not None:
        raise ConfigError("--data-root and --generate belong to --loader; add it")
    from genlab.tools.bench import run_bench

    result = run_bench(
        models,
        device=args.device,
        batch_size=args.batch_size,
        image_size=args.image_size,
        steps=args.steps,
        warmup=args.warmup,
        rounds=args.rounds,
        peaks=args.peaks,
        overrides=args.overrides,
    )
    print(json.dumps(result, indent=2))
    return 0


def run_loader(args, model: str) -> int:
    from genlab.tools.bench_data import bench_loader, loader_table

    if args.data_root is not None and args.generate is not None:
        raise ConfigError("--data-root DIR and --generate N are alternatives; give one")
    result = bench_loader(
        args.data_root,
        generate=args.generate,
        model=model,
        batch_size=args.batch_size,
        image_size=args.image_size,
        steps=args.steps,
        warmup=args.warmup,
        rounds=args.rounds,
        device=args.device,
        data_overrides=[o for o in args.overrides if o.startswith("data.")],
        overrides=[o for o in args.overrides if not o.startswith("data.")],
    )
    print(loader_table(result), file=sys.stderr)
    print(json.dumps(result, indent=2))
    return 0
