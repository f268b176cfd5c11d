"""``genlab doctor [--json] [--no-train] [--device cpu|cuda]``: this machine, for a bug report."""

from __future__ import annotations

import json


def add_parser(subs) -> None:
    p = subs.add_parser(
        "doctor",
        help="versions, CPU and fast dtypes, threads, GPU, cache dir and a 5-second sanity train",
        description="Print what a bug report needs about this machine: versions, the CPU and "
        "the instruction set torch uses, which of bf16/fp16 are fast here, what "
        "train.precision=auto picks, threads, CUDA devices, the cache directory, and a few "
        "seconds of training a small VAE on the bundled digits (exit status 1 if it fails).",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-train", action="store_true", help="skip the sanity train")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.set_defaults(run=run)


def run(args) -> int:
    from genlab.tools.doctor import format_report, main_status, report
    from genlab.training.trainer import resolve_device

    device = str(resolve_device(args.device))  # a bad name is one line and exit status 2
    info = report(device, train=not args.no_train)
    print(json.dumps(info, indent=2) if args.json else format_report(info))
    return main_status(info)
