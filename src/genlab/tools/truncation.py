"""The truncation sweep (``genlab truncation``): precision, recall (k=3), density, coverage (k=5)
and FID of samples drawn with truncated latents, one row per bound, against the evaluation
split; a fixed-width table and a plot of precision / recall and FID against the bound.

Every bound uses the same seeded noise (``genlab.metrics.image.truncation_sweep``), so the rows
differ only by the truncation; the untruncated row is what ``genlab eval --metrics fid,prdc``
reports with the same seed and n."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from genlab.api import eval_context
from genlab.core.errors import ConfigError
from genlab.core.io import atomic_write_bytes
from genlab.metrics.image import feature_space, n_generated, truncation_sweep
from genlab.models.sampling import MIN_TRUNCATION, figure_png, pyplot

COLUMNS = ("precision", "recall", "density", "coverage", "fid")
DEFAULT_VALUES = "0.25,0.5,1,1.5,2,none"


def parse_values(text: str) -> list[float | None]:
    """``"0.5,1,none"`` -> [0.5, 1.0, None], each bound at least MIN_TRUNCATION."""
    return check_values(t.strip() for t in text.split(","))


def check_values(values: Iterable[float | str | None]) -> list[float | None]:
    """Bounds as floats (``None`` or ``"none"``: no truncation); ConfigError for a bound that is
    not a finite number >= MIN_TRUNCATION."""
    out: list[float | None] = []
    for raw in values:
        if raw is None or (isinstance(raw, str) and raw.lower() == "none"):
            out.append(None)
            continue
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = math.nan
        if not (math.isfinite(value) and value >= MIN_TRUNCATION):
            raise ConfigError(
                f"--values: {raw!r} is not a truncation bound; give numbers >= {MIN_TRUNCATION} "
                "or none, e.g. 0.5,1,2,none"
            )
        out.append(value)
    return out


def label(value: float | None) -> str:
    """The name of a bound in tables and on the plot's axis: ``0.5``, or ``none``."""
    return "none" if value is None else f"{value:g}"


def caption(doc: dict[str, Any], split: str) -> str:
    """``"N samples per bound vs M SPLIT images, seed S"`` for a result of ``truncation``."""
    return f"{doc['n']} samples per bound vs {doc['n_real']} {split} images, seed {doc['seed']}"


def table(rows: list[dict], reference: dict) -> str:
    """Fixed-width rows: one per bound, then the data reference."""
    named = [(label(r["truncation"]), r) for r in rows]
    named.append((f"data:{reference['against']}", reference))
    lines = ["truncation  " + "  ".join(f"{c:>9}" for c in COLUMNS)]
    for name, row in named:
        lines.append(f"{name:<10}  " + "  ".join(f"{row[c]:>9.4g}" for c in COLUMNS))
    return "\n".join(lines)


def text(doc: dict[str, Any], split: str) -> str:
    """What ``genlab truncation`` prints for people: the caption and the feature space, the
    table, the plot's path."""
    head = f"{caption(doc, split)}; {doc['features']}"
    return "\n".join([head, table(doc["rows"], doc["data"]), doc["plot"]])


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


def truncation(
    run_dir: str | Path,
    values: str | Sequence[float | str | None] = DEFAULT_VALUES,
    *,
    n: int = 1000,
    seed: int = 0,
    split: str = "test",
    out: str | Path | None = None,
    features: str = "auto",
    inception_weights: str | None = None,
    batch_size: int = 256,
    step: int | None = None,
    ema: bool = True,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Sweep the truncation bounds ``values`` (``"0.5,1,none"`` or ``[0.5, 1.0, None]``) of a
    run's checkpoint: ``n`` samples per bound from the latents of ``seed`` against the first
    ``n`` real images of ``split``, in the feature space of ``features`` (as in ``genlab
    eval``). Writes the plot PNG to ``out`` (default RUN/truncation.png) and returns
    ``{"run", "n", "n_real", "seed", "features", "rows", "data", "plot"}``: one row per bound
    (``truncation``, precision, recall, density, coverage in [0, 1], fid) and the data
    reference (the other split against ``split``, ``against`` naming it)."""
    bounds = parse_values(values) if isinstance(values, str) else check_values(values)
    if n < 1 or batch_size < 1:
        raise ConfigError("--n and --batch-size must be positive")
    ctx = eval_context(
        run_dir, n=n, seed=seed, batch_size=batch_size, split=split, device=device, step=step,
        ema=ema, options={"features": features, "inception_weights": inception_weights},
        progress=progress,
    )  # fmt: skip
    rows, reference = truncation_sweep(ctx, bounds)
    space = feature_space(ctx)
    doc: dict[str, Any] = {"run": str(run_dir), "n": n_generated(ctx)}
    doc.update(n_real=len(ctx.eval_split()), seed=seed, features=space.note)
    title = f"{ctx.cfg.model.name}, step {ctx.step}: {caption(doc, split)}\n{space.note}"
    plot = Path(out or Path(run_dir) / "truncation.png")
    atomic_write_bytes(plot, plot_png(rows, reference, title))
    return {**doc, "rows": rows, "data": reference, "plot": str(plot)}
