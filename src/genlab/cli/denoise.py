"""``genlab denoise RUN [-n 8] [--seed 0] [--corruption KIND] [--noise-level L] [--split test]
[--out PATH]``: corrupt n held-out images, reconstruct them, and write one PNG with three rows
(noisy / denoised / clean); print the per-pixel squared errors on the [0, 1] scale
(``genlab.tools.denoise``)."""

from __future__ import annotations

from genlab.models.autoencoder import CORRUPTIONS
from genlab.tools.denoise import MAX_IMAGES, denoise


def add_parser(subs) -> None:
    p = subs.add_parser(
        "denoise",
        help="corrupt held-out images and reconstruct them with an autoencoder run",
        description="Corrupt n images of a split, reconstruct them with the run's encoder and "
        "decoder, and write one PNG whose rows are noisy / denoised / clean.",
    )
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("-n", type=int, default=8, help=f"images, 1 to {MAX_IMAGES} (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the corruption noise (default 0)")
    p.add_argument(
        "--corruption",
        choices=list(CORRUPTIONS),
        help="noise kind (default: the run's own; gaussian for a run trained without noise)",
    )
    p.add_argument(
        "--noise-level",
        type=float,
        help="gaussian: std in [-1, 1] units; mask, salt_pepper: fraction (default: the run's)",
    )
    p.add_argument("--split", choices=["test", "train"], default="test", help="default test")
    p.add_argument("--out", help="output PNG (default RUN/samples/denoise_seedS.png)")
    p.add_argument("--step", type=int, help="checkpoint step (default: the newest)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.set_defaults(run=run)


def run(args) -> int:
    result = denoise(
        args.run_dir,
        args.n,
        seed=args.seed,
        corruption=args.corruption,
        noise_level=args.noise_level,
        split=args.split,
        out=args.out,
        step=args.step,
        device=args.device,
    )
    if result["note"]:
        print(result["note"])
    print(f"corruption: {result['kind']} {result['level']:g}; rows: noisy / denoised / clean")
    print(
        f"per-pixel MSE on [0, 1]: noisy {result['mse_noisy']:.5f}, "
        f"denoised {result['mse_denoised']:.5f}"
    )
    print(result["png"])
    return 0
