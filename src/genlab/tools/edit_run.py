"""Editing the samples of a run towards an attribute (``genlab edit``): ``edit`` draws n latents,
moves each one until the domain classifier's logit for the attribute (a binary attribute of the
data, else a class) has changed by ``amount`` (``genlab.tools.edit``), writes a PNG of rows of
samples before and after, and reports the success rate, the mean change of the attribute's
probability and the entanglement with the other attributes, all read by the classifier
(docs/control.md); ``text`` formats the report for people."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch

from genlab.api import load, load_config
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


def check_request(n: int, amount: float, steps: int, step_size: float) -> None:
    """Argument errors found before the run is loaded."""
    if not 1 <= n <= MAX_SAMPLES:
        raise ConfigError(f"--n {n}: give between 1 and {MAX_SAMPLES} samples")
    if not (math.isfinite(amount) and amount != 0 and abs(amount) <= MAX_AMOUNT):
        raise ConfigError(
            f"--amount {amount:g}: give a non-zero logit change of at most {MAX_AMOUNT:g} in "
            "size, e.g. 6 to raise the attribute or -6 to lower it"
        )
    if not 1 <= steps <= 10_000:
        raise ConfigError(f"--steps {steps}: give between 1 and 10000")
    if not (math.isfinite(step_size) and 0 < step_size <= 10):
        raise ConfigError(f"--step-size {step_size:g}: give a length in (0, 10]")


def open_run(run_dir: str | Path, attr: str, step: int | None, ema: bool, device: str):
    """(model, data bundle, target) after the checks, before any classifier is trained."""
    cfg = load_config(run_dir)
    model = load(run_dir, step=step, ema=ema, device=device)
    require_generator(model, "genlab edit")
    data = load_data(cfg.data)
    if data.spec.kind != "image":
        raise ConfigError(f"genlab edit works on images; {run_dir} was trained on {data.spec.kind}")
    if tuple(data.spec.shape) != tuple(model.spec.shape):
        raise DataError(
            f"dataset {cfg.data.name!r} now gives {data.spec.shape} images but {run_dir} "
            f"was trained on {model.spec.shape}; restore the data it was trained on"
        )
    return model, data, resolve_target(data.spec, attr)


def edit(
    run_dir: str | Path,
    attr: str,
    amount: float,
    *,
    n: int = 64,
    seed: int = 0,
    steps: int = 100,
    step_size: float = 0.1,
    judge_seed: int | None = None,
    out: str | Path | None = None,
    step: int | None = None,
    ema: bool = True,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Edit ``n`` samples of a run (latents from ``seed``) so that the domain classifier's
    logit for ``attr`` changes by ``amount`` (at most ``steps`` steps of L2 length ``step_size``
    in z), scored also by a second classifier trained with ``judge_seed`` when given. Writes
    the before / after PNG to ``out`` (default RUN/edit/edit_ATTR_AMOUNT_seedS.png) and returns
    the report: settings, distances moved, the classifiers' accuracies and scores (fractions in
    [0, 1]) and, on data with factors (shapes), pixel checks of area and position."""
    check_request(n, amount, steps, step_size)
    model, data, target = open_run(run_dir, attr, step, ema, device)
    clf = domain_classifier(data, target.classifier_target, progress=progress)
    judge = None
    if judge_seed is not None:
        recipe = Recipe(seed=judge_seed)
        judge = domain_classifier(data, target.classifier_target, recipe, progress)
    gen = torch.Generator().manual_seed(seed)
    z0 = torch.randn(n, model.latent_dim, generator=gen)
    labels = resolve_labels(model, n, None, gen)  # conditional models: fixed labels
    ignore = [] if target.exclusive else complements(data.train.attrs, target.index)
    result = edit_samples(
        model, clf, target, amount, z0, labels, steps, step_size, ignore, judge, progress
    )
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", target.name)
    png = Path(out or Path(run_dir) / "edit" / f"edit_{safe}_{amount:+g}_seed{seed}.png")
    rows = before_after_rows(result.before, result.after, COLUMNS)
    atomic_write_bytes(png, grid_png(rows, nrow=min(COLUMNS, n), min_cell=64, pad_value=80))
    settings = dict(amount=amount, steps=steps, step_size=step_size, seed=seed)
    settings["judge_seed"] = judge_seed
    report = summary(run_dir, model, target, clf, judge, result, png, settings)
    report["latent_norm_mean"] = z0.norm(dim=1).mean().item()
    if data.spec.factor_names:  # light shapes on black: pixels measure size and position too
        report["pixels"] = pixel_checks(result)
    return report


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


def summary(
    run_dir: str | Path,
    model,
    target: Target,
    clf,
    judge,
    result: EditResult,
    png: Path,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """The report of an edit: the run, the target, the ``settings`` (amount, steps, step_size,
    seed, judge_seed), the distances moved in z, the classifiers and their scores."""
    d = result.distance
    report = {
        "run": str(run_dir),
        "model": model.cfg.name,
        "attr": target.name,
        "kind": "class" if target.exclusive else "attribute",
        "amount": settings["amount"],
        "n": len(d),
        "steps": settings["steps"],
        "step_size": settings["step_size"],
        "seed": settings["seed"],
        "distance_mean": d.mean().item(),
        "distance_max": d.max().item(),
        "classifier": accuracy_note(clf, target),
        "scores": result.scores.to_dict(),
        "png": str(png),
    }
    if judge is not None:
        report["judge"] = {**accuracy_note(judge, target), "seed": settings["judge_seed"]}
        report["judge_scores"] = result.judge.to_dict()
    return report


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def score_lines(s: dict, target: str, amount: float, kind: str) -> list[str]:
    """The lines of one classifier's scores (``EditScores.to_dict``) in ``text``."""
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


def text(r: dict[str, Any]) -> str:
    """The report of ``edit`` for people."""
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
