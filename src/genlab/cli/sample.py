"""``genlab sample RUN -n 64 [--seed S] [--out grid.png] [--npy]``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genlab import api
from genlab.errors import ConfigError
from genlab.io import atomic_write
from genlab.sampling import save_samples


def add_parser(subs) -> None:
    p = subs.add_parser("sample", help="draw samples from a trained run")
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--out", help="output file (default RUN/samples/sample_seedS.png or .npy)")
    p.add_argument("--npy", action="store_true", help="write the raw float32 array (.npy)")
    p.add_argument("--step", type=int, help="checkpoint step (default: the newest)")
    p.add_argument("--no-ema", action="store_true", help="use raw weights even if EMA was kept")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.set_defaults(run=run)


def run(args) -> int:
    if not 1 <= args.n <= 100_000:
        raise ConfigError(f"-n {args.n}: give between 1 and 100000 samples")
    model = api.load(args.run_dir, step=args.step, ema=not args.no_ema, device=args.device)
    generator = torch.Generator().manual_seed(args.seed)
    samples = model.sample(args.n, generator=generator).cpu()
    suffix = ".npy" if args.npy else ".png"
    out = Path(args.out or Path(args.run_dir) / "samples" / f"sample_seed{args.seed}{suffix}")
    if args.npy:
        array = samples.numpy().astype(np.float32)
        atomic_write(out, lambda f: np.save(f, array, allow_pickle=False))
    else:
        save_samples(samples, model.spec, out, title=f"{args.n} samples, seed {args.seed}")
    print(out)
    return 0
