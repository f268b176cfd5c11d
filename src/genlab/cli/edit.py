"""``genlab edit RUN --attr NAME --amount A [--n 64] [--seed S] [--steps K] [--step-size H]
[--judge-seed S2] [--out PNG] [--json]``.

Draws n latents with ``--seed``, moves each one until the domain classifier's logit for NAME
(a binary attribute of the data, else a class) has changed by A, and writes a PNG of rows of
samples before and after. Prints the success rate, the mean change of NAME's probability and
the entanglement with the other attributes, all read by the classifier (``genlab.tools.edit``,
docs/control.md).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch

from genlab import api
from genlab.cli.args import add_checkpoint_args
from genlab.core.errors import ConfigError, DataError
from genlab.core.io import atomic_write_bytes
from genlab.data import load_data
from genlab.metrics.classifier import Recipe, domain_classifier
from genlab.models.sampling import grid_png, require_generator, resolve_labels
from genlab.tools.edit import (
    EditResult,
    Target,
    before_after_rows,
    complements,
    edit_samples,
    foreground_centre,
    resolve_target,
)
from genlab.tools.latent import AREA_THRESHOLD, foreground_area

MAX_SAMPLES = 1024
MAX_AMOUNT = 50.0  # logits beyond this are saturated sigmoids: nothing left to change
COLUMNS = 8


def add_parser(subs) -> None:
    p = subs.add_parser(
        "edit",
        help="edit samples towards or away from an attribute (latent optimisation)",
        description="Move latents of a trained generator so that the domain classifier's logit "
        "for an attribute changes by --amount; report success and entanglement.",
    )
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("--attr", required=True, help="a binary attribute of the data, else a class")
    p.add_argument(
        "--amount", type=float, required=True, help="target change of the attribute's logit "
        "(> 0 raises it, < 0 lowers it; e.g. 6 or -6)",
    )  # fmt: skip
    p.add_argument("--n", type=int, default=64, help="samples edited (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents (default 0)")
    p.add_argument("--steps", type=int, default=100, help="most gradient steps (default 100)")
    p.add_argument(
        "--step-size", type=float, default=0.1, help="L2 length of one step in z (default 0.1)"
    )
    p.add_argument(
        "--judge-seed", type=int, metavar="S", help="also score with a second classifier "
        "trained with seed S (one the edit did not optimise against)",
    )  # fmt: skip
    p.add_argument("--out", help="PNG (default RUN/edit/edit_ATTR_AMOUNT_seedS.png)")
    add_checkpoint_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def check_args(args) -> None:
    if not 1 <= args.n <= MAX_SAMPLES:
        raise ConfigError(f"--n {args.n}: give between 1 and {MAX_SAMPLES} samples")
    a = args.amount
    if not (math.isfinite(a) and a != 0 and abs(a) <= MAX_AMOUNT):
        raise ConfigError(
            f"--amount {a:g}: give a non-zero logit change of at most {MAX_AMOUNT:g} in size, "
            "e.g. 6 to raise the attribute or -6 to lower it"
        )
    if not 1 <= args.steps <= 10_000:
        raise ConfigError(f"--steps {args.steps}: give between 1 and 10000")
    if not (math.isfinite(args.step_size) and 0 < args.step_size <= 10):
        raise ConfigError(f"--step-size {args.step_size:g}: give a length in (0, 10]")


def open_run(args):
    """(model, data bundle, target) after the checks, before any classifier is trained."""
    cfg = api.load_config(args.run_dir)
    model = api.load(args.run_dir, step=args.step, ema=not args.no_ema, device=args.device)
    require_generator(model, "genlab edit")
    data = load_data(cfg.data)
    if data.spec.kind != "image":
        raise ConfigError(
            f"genlab edit works on images; {args.run_dir} was trained on {data.spec.kind}"
        )
    if tuple(data.spec.shape) != tuple(model.spec.shape):
        raise DataError(
            f"dataset {cfg.data.name!r} now gives {data.spec.shape} images but {args.run_dir} "
            f"was trained on {model.spec.shape}; restore the data it was trained on"
        )
    return model, data, resolve_target(data.spec, args.attr)


def run(args) -> int:
    check_args(args)
    model, data, target = open_run(args)
    progress = not args.json
    clf = domain_classifier(data, target.classifier_target, progress=progress)
    judge = None
    if args.judge_seed is not None:
        recipe = Recipe(seed=args.judge_seed)
        judge = domain_classifier(data, target.classifier_target, recipe, progress)
    gen = torch.Generator().manual_seed(args.seed)
    z0 = torch.randn(args.n, model.latent_dim, generator=gen)
    labels = resolve_labels(model, args.n, None, gen)  # conditional models: fixed labels
    ignore = [] if target.exclusive else complements(data.train.attrs, target.index)
    result = edit_samples(
        model, clf, target, args.amount, z0, labels, args.steps, args.step_size, ignore, judge,
        progress,
    )  # fmt: skip
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", target.name)
    name = f"edit_{safe}_{args.amount:+g}_seed{args.seed}.png"
    out = Path(args.out or Path(args.run_dir) / "edit" / name)
    rows = before_after_rows(result.before, result.after, COLUMNS)
    atomic_write_bytes(out, grid_png(rows, nrow=min(COLUMNS, args.n), min_cell=64, pad_value=80))
    report = summary(args, model, target, clf, judge, result, out)
    report["latent_norm_mean"] = z0.norm(dim=1).mean().item()
    if data.spec.factor_names:  # light shapes on black: pixels measure size and position too
        report["pixels"] = pixel_checks(result)
    print(json.dumps(report, indent=2) if args.json else text(report))
    return 0


def pixel_checks(result: EditResult) -> dict:
    """Means before / after of the foreground area (pixels > -0.5) and of its centre (column,
    row as fractions of the side): checks that do not use the classifier."""
    out = {}
    for when, images in (("before", result.before), ("after", result.after)):
        centre = foreground_centre(images, AREA_THRESHOLD)
        out[f"area_{when}"] = foreground_area(images, AREA_THRESHOLD).mean().item()
        out[f"x_{when}"] = centre[:, 0].nanmean().item()
        out[f"y_{when}"] = centre[:, 1].nanmean().item()
    return out


def accuracy_note(clf, target: Target) -> dict:
    """The classifier's test accuracy: overall and, for attributes, the target's own."""
    note = {"description": clf.describe(), "accuracy": clf.accuracy, "n_test": clf.n_test}
    per = getattr(clf, "per_output", ())
    if per:
        note["target_accuracy"] = per[target.index]
    return note


def summary(args, model, target, clf, judge, result: EditResult, out: Path) -> dict:
    d = result.distance
    report = {
        "run": str(args.run_dir),
        "model": model.cfg.name,
        "attr": target.name,
        "kind": "class" if target.exclusive else "attribute",
        "amount": args.amount,
        "n": len(d),
        "steps": args.steps,
        "step_size": args.step_size,
        "seed": args.seed,
        "distance_mean": d.mean().item(),
        "distance_max": d.max().item(),
        "classifier": accuracy_note(clf, target),
        "scores": result.scores.to_dict(),
        "png": str(out),
    }
    if judge is not None:
        report["judge"] = {**accuracy_note(judge, target), "seed": args.judge_seed}
        report["judge_scores"] = result.judge.to_dict()
    return report


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def score_lines(s: dict, target: str, amount: float, kind: str) -> list[str]:
    side = "present" if amount > 0 else "absent"
    others = "other classes" if kind == "class" else "other attributes"
    left = f" ({', '.join(s['left_out'])} left out: the complement)" if s["left_out"] else ""
    lines = [
        f"  success ({target} predicted {side})  {_pct(s['success'])}  "
        f"(before {_pct(s['success_before'])}; converted {_pct(s['converted'])} of the rest)",
        f"  target probability change  {s['prob_change']:+.3f}   logit change "
        f"{s['logit_change']:+.2f}",
        f"  entanglement, {others}{left}: mean |probability change| {_num(s['other_change'])}, "
        f"predictions flipped {_pct(s['other_flips'])}",
    ]
    if s["others"]:
        per = ", ".join(f"{k} {v:+.3f}" for k, v in s["others"].items())
        lines.append(f"  mean probability change per output: {per}")
    return lines


def text(r: dict) -> str:
    head = (
        f"edit {r['attr']!r} by {r['amount']:+g} logits: {r['n']} samples of {r['model']}, "
        f"at most {r['steps']} steps of {r['step_size']:g} in z (mean distance "
        f"{r['distance_mean']:.2f}, max {r['distance_max']:.2f}; |z| about "
        f"{r['latent_norm_mean']:.1f})"
    )
    c = r["classifier"]
    acc = f", {100 * c['target_accuracy']:.1f} % on {r['attr']}" if "target_accuracy" in c else ""
    lines = [head, f"classifier: {c['description']}{acc}"]
    lines += score_lines(r["scores"], r["attr"], r["amount"], r["kind"])
    if "judge" in r:
        j = r["judge"]
        acc = (
            f", {100 * j['target_accuracy']:.1f} % on {r['attr']}" if "target_accuracy" in j else ""
        )
        lines.append(f"judge (classifier seed {j['seed']}, not optimised against): "
                     f"{j['description']}{acc}")  # fmt: skip
        lines += score_lines(r["judge_scores"], r["attr"], r["amount"], r["kind"])
    if "pixels" in r:
        p = r["pixels"]
        lines.append(
            f"pixels (no classifier): foreground area {p['area_before']:.1f} -> "
            f"{p['area_after']:.1f} px, centre column {p['x_before']:.3f} -> {p['x_after']:.3f}, "
            f"row {p['y_before']:.3f} -> {p['y_after']:.3f} (fractions of the side)"
        )
    lines.append(f"rows: before, after ({COLUMNS} per row): {r['png']}")
    return "\n".join(lines)
