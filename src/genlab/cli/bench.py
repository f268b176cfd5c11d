"""``genlab bench [--models vae,dcgan] [--device cpu|cuda]``: training throughput as JSON."""

from __future__ import annotations

import json

from genlab.core.errors import ConfigError
from genlab.core.registry import MODELS


def add_parser(subs) -> None:
    p = subs.add_parser(
        "bench",
        help="training throughput, FLOPs, fraction of matmul peak, memory, overhead vs a bare loop",
        description="Time each model's training step and a hand-written loop of the same "
        "networks; print JSON. Overrides apply to both, e.g. train.precision=bf16 "
        "train.channels_last=true train.compile=true.",
    )
    p.add_argument("--models", default="vae,dcgan", help="comma-separated (default vae,dcgan)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=20, help="timed steps per model")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per model; best is kept")
    p.add_argument(
        "--peaks",
        action="store_true",
        help="also measure bf16's matmul peak where bf16 is emulated (slow, but bounded)",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(run=run)


def run(args) -> int:
    from genlab.tools.bench import run_bench

    models = [m for m in args.models.split(",") if m]
    for m in models:
        MODELS.entry(m)
    if args.steps < 1 or args.warmup < 0 or args.rounds < 1:
        raise ConfigError("--steps and --rounds must be >= 1 and --warmup >= 0")
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
