"""``genlab truncation RUN [--values 0.25,0.5,1,1.5,2,none] [--n 1000] [--out PNG] [--json]``:
precision, recall (k=3), density, coverage (k=5) and FID of samples drawn with truncated
latents, one row per bound, against the evaluation split; a table (or JSON) and a plot
(``genlab.tools.truncation``)."""

from __future__ import annotations

import json

from genlab.cli.args import add_checkpoint_args
from genlab.metrics.features import CHOICES
from genlab.tools.truncation import DEFAULT_VALUES, text, truncation


def add_parser(subs) -> None:
    p = subs.add_parser(
        "truncation",
        help="precision/recall and FID against the truncation of the latent",
        description="Sample with latents truncated at each bound (the same seeded noise) and "
        "measure precision, recall, density, coverage and FID against real images.",
    )
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("--values", default=DEFAULT_VALUES, help="bounds; none = no truncation")
    p.add_argument(
        "--n", type=int, default=1000, help="samples per bound, and real images: the first N of "
        "the split (default 1000; precision and recall compare best at equal sizes)",
    )  # fmt: skip
    p.add_argument("--split", default="test", help="real images: test (default) or train")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent noise (default 0)")
    p.add_argument("--out", help="plot PNG (default RUN/truncation.png)")
    p.add_argument("--features", default="auto", choices=CHOICES, help="as in genlab eval")
    p.add_argument("--inception-weights", metavar="PATH", help="as in genlab eval")
    p.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    add_checkpoint_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def run(args) -> int:
    doc = truncation(
        args.run_dir, args.values, n=args.n, seed=args.seed, split=args.split, out=args.out,
        features=args.features, inception_weights=args.inception_weights,
        batch_size=args.batch_size, step=args.step, ema=not args.no_ema, device=args.device,
        progress=not args.json,
    )  # fmt: skip
    print(json.dumps(doc) if args.json else text(doc, args.split))
    return 0
