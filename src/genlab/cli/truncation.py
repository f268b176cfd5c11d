"""``genlab truncation RUN [--values 0.25,0.5,1,1.5,2,none] [--n 1000] [--out PNG] [--json]``:
precision, recall (k=3), density, coverage (k=5) and FID of samples drawn with truncated
latents, one row per bound, against the evaluation split; a table (or JSON) and a plot."""

from __future__ import annotations

import json
import math
from pathlib import Path

from genlab import api
from genlab.cli.args import add_checkpoint_args
from genlab.cli.eval import image_options
from genlab.core.errors import ConfigError
from genlab.core.io import atomic_write_bytes
from genlab.metrics import EvalContext
from genlab.metrics.features import CHOICES
from genlab.metrics.image import feature_space, n_generated, truncation_sweep
from genlab.models.sampling import MIN_TRUNCATION, figure_png, pyplot

COLUMNS = ("precision", "recall", "density", "coverage", "fid")


def add_parser(subs) -> None:
    p = subs.add_parser(
        "truncation",
        help="precision/recall and FID against the truncation of the latent",
        description="Sample with latents truncated at each bound (the same seeded noise) and "
        "measure precision, recall, density, coverage and FID against real images.",
    )
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("--values", default="0.25,0.5,1,1.5,2,none", help="bounds; none = no truncation")
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


def parse_values(text: str) -> list[float | None]:
    """``"0.5,1,none"`` -> [0.5, 1.0, None], each bound at least MIN_TRUNCATION."""
    values: list[float | None] = []
    for raw in (t.strip() for t in text.split(",")):
        if raw.lower() == "none":
            values.append(None)
            continue
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value >= MIN_TRUNCATION):
            raise ConfigError(
                f"--values: {raw!r} is not a truncation bound; give numbers >= {MIN_TRUNCATION} "
                "or none, e.g. 0.5,1,2,none"
            )
        values.append(value)
    return values


def context(args) -> EvalContext:
    """The evaluation context of the run's checkpoint, as ``genlab eval`` builds it."""
    from genlab.training import checkpoint as ckpt
    from genlab.training.trainer import resolve_device

    if args.split not in ("train", "test"):
        raise ConfigError(f"--split {args.split!r}: use train or test")
    if args.n < 1 or args.batch_size < 1:
        raise ConfigError("--n and --batch-size must be positive")
    options = image_options(args)
    model = api.load(args.run_dir, step=args.step, ema=not args.no_ema, device=args.device)
    step = args.step
    if step is None:
        step = int(ckpt.latest_checkpoint(Path(args.run_dir) / "checkpoints").name[5:])
    return EvalContext(
        Path(args.run_dir), api.load_config(args.run_dir), model, resolve_device(args.device),
        step, args.seed, args.n, args.batch_size, args.split, options, not args.json,
    )  # fmt: skip


def label(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


def table(rows: list[dict], reference: dict) -> str:
    """Fixed-width rows: one per bound, then the data reference."""
    named = [(label(r["truncation"]), r) for r in rows]
    named.append((f"data:{reference['against']}", reference))
    lines = ["truncation  " + "  ".join(f"{c:>9}" for c in COLUMNS)]
    for name, row in named:
        lines.append(f"{name:<10}  " + "  ".join(f"{row[c]:>9.4g}" for c in COLUMNS))
    return "\n".join(lines)


def plot_png(rows: list[dict], reference: dict, title: str) -> bytes:
    """Precision and recall (left axis, the data reference dashed) and FID (right axis) against
    the bound, one evenly spaced position per value."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.6), dpi=100)
    x = list(range(len(rows)))
    for key, colour in (("precision", "tab:blue"), ("recall", "tab:orange")):
        ax.plot(x, [r[key] for r in rows], marker="o", color=colour, label=key)
        ax.axhline(reference[key], color=colour, linestyle="--", linewidth=1,
                   label=f"{key}, {reference['against']} data")  # fmt: skip
    ax.set_ylim(0, 1.05)
    ax.set_xticks(x, [label(r["truncation"]) for r in rows])
    ax.set_xlabel("truncation bound of the latent (none = untruncated)")
    ax.set_ylabel("precision / recall (k=3)")
    right = ax.twinx()
    right.plot(x, [r["fid"] for r in rows], marker="s", color="tab:green", label="FID")
    right.set_ylabel("FID", color="tab:green")
    handles = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(
        handles[0] + more[0], handles[1] + more[1], fontsize=7, ncol=3,
        loc="upper center", bbox_to_anchor=(0.5, -0.2),
    )  # fmt: skip
    ax.set_title(title, fontsize=8)
    return figure_png(fig)


def run(args) -> int:
    values = parse_values(args.values)
    ctx = context(args)
    rows, reference = truncation_sweep(ctx, values)
    space, n, n_real = feature_space(ctx), n_generated(ctx), len(ctx.eval_split())
    where = f"{n} samples per bound vs {n_real} {args.split} images, seed {args.seed}"
    title = f"{ctx.cfg.model.name}, step {ctx.step}: {where}\n{space.note}"
    out = Path(args.out or Path(args.run_dir) / "truncation.png")
    atomic_write_bytes(out, plot_png(rows, reference, title))
    if args.json:
        doc = {"run": str(args.run_dir), "n": n, "n_real": n_real, "seed": args.seed}
        doc["features"] = space.note
        print(json.dumps({**doc, "rows": rows, "data": reference, "plot": str(out)}))
    else:
        print(f"{where}; {space.note}")
        print(table(rows, reference))
        print(out)
    return 0
