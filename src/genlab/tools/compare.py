"""``genlab compare RUN RUN ...``: several runs' newest metrics side by side and their curves
overlaid (one panel per metric, one line per run).

Metric names are the keys of ``metrics.jsonl``: training losses (``recon``, ``d_loss``) and
quality metrics logged during training (``eval/NAME``, ``eval/SYSTEM/NAME`` for baselines).
A ``genlab eval`` result in ``eval.json`` joins the quality metric of the same name (``elbo``
is ``eval/elbo``); results on the train split get `` [train]`` appended. By default the
quality metrics all runs share are compared, else the training losses they share. ``--metric``
takes a key as written; a NAME that is no key stands for eval/NAME (``recon`` is a VAE's
training loss, ``eval/recon`` its quality metric, ``elbo`` the quality metric).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from genlab.core.errors import ConfigError
from genlab.tools.report import curve_series, latest_eval_rows, read_evals, read_metrics
from genlab.tools.report_sections import Series, curves_png, fmt
from genlab.training.logger import eval_key
from genlab.training.rundir import read_run_config

SOURCES = ("train log", "genlab eval")


@dataclass
class RunMetrics:
    label: str  # the run's name in tables and legends
    path: Path
    curves: dict[str, Series]  # metrics.jsonl key -> (steps, values)
    evals: dict[str, dict]  # "eval/NAME" -> the newest eval.json row of that metric

    def names(self) -> set[str]:
        return set(self.curves) | set(self.evals)


def row_key(row: dict) -> str:
    """The metrics.jsonl name of an eval.json row: eval/NAME or eval/SYSTEM/NAME [+ split]."""
    key = eval_key(row["name"], row.get("system", "model"))
    return key if row.get("split", "test") == "test" else f"{key} [{row['split']}]"


def read_run_metrics(run_dir: str | Path, label: str) -> RunMetrics:
    """The curves and newest evaluations of a run (a directory without config.json is an
    error)."""
    run_dir = Path(run_dir)
    read_run_config(run_dir)
    rows, _ = read_metrics(run_dir / "metrics.jsonl")
    losses, quality = curve_series(rows)
    curves = dict(losses)
    for name, systems in quality.items():
        for system, series in systems.items():
            curves[eval_key(name, system)] = series
    history, _ = read_evals(run_dir / "eval.json")
    evals = {row_key(r): r for r in latest_eval_rows(history)}
    return RunMetrics(label, run_dir, curves, evals)


def labels_for(run_dirs: list[str | Path]) -> list[str]:
    """Directory names, or the paths as given where names repeat, numbered if still equal."""
    names = [Path(r).name or str(r) for r in run_dirs]
    if len(set(names)) < len(names):
        names = [str(r) for r in run_dirs]
    if len(set(names)) < len(names):
        names = [f"{n} #{i + 1}" for i, n in enumerate(names)]
    return names


def select_metrics(runs: list[RunMetrics], wanted: list[str] | None) -> list[str]:
    """The metrics to compare: ``wanted`` (each a key of some run's metrics.jsonl or eval.json;
    a NAME that is no key stands for eval/NAME), else the quality metrics common to all runs,
    else the losses common to all runs."""
    every = sorted(set().union(*(r.names() for r in runs)))
    if wanted:
        chosen = []
        for name in wanted:
            key = name if name in every else f"eval/{name}"
            if key not in every:
                raise ConfigError(
                    f"--metric {name!r} is in none of the runs; they have: "
                    + (", ".join(every) or "no metrics")
                )
            chosen.append(key)
        return list(dict.fromkeys(chosen))
    common = set.intersection(*(r.names() for r in runs))
    quality = sorted(k for k in common if k.startswith("eval/"))
    if quality or common:
        return quality or sorted(common)
    have = "; ".join(f"{r.label}: {', '.join(sorted(r.names())) or 'none'}" for r in runs)
    raise ConfigError(
        f"the runs have no metric in common ({have}); name the ones to plot with --metric"
    )


def cell(run: RunMetrics, metric: str, source: str) -> dict | None:
    """{"value", "stderr", "spread", "step"} of one run's metric from one source, or None."""
    if source == SOURCES[0] and metric in run.curves:
        steps, values = run.curves[metric]
        return {"value": values[-1], "stderr": None, "spread": None, "step": steps[-1]}
    if source == SOURCES[1] and metric in run.evals:
        r = run.evals[metric]
        value, stderr, spread = float(r["value"]), r.get("stderr"), r.get("spread")
        return {"value": value, "stderr": stderr, "spread": spread, "step": r.get("step")}
    return None


@dataclass
class Comparison:
    runs: list[RunMetrics]
    metrics: list[str]

    def rows(self) -> list[dict]:
        """One row per (metric, source) that any run has: {metric, source, values{label}}."""
        out = []
        for metric in self.metrics:
            for source in SOURCES:
                values = {r.label: cell(r, metric, source) for r in self.runs}
                if any(v is not None for v in values.values()):
                    out.append({"metric": metric, "source": source, "values": values})
        return out

    def table(self) -> str:
        """A fixed-width table: metric, source, then each run's value (± stderr) @ step."""

        def text(c: dict | None) -> str:
            return "-" if c is None else f"{fmt(c['value'], c['stderr'], c['spread'])} @{c['step']}"

        lines = [("metric", "source", *(r.label for r in self.runs))]
        lines += [
            (row["metric"], row["source"], *map(text, row["values"].values()))
            for row in self.rows()
        ]
        widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            for line in lines
        )

    def figure_png(self) -> bytes | None:
        """Curves overlaid, one panel per metric with data, genlab eval results as markers."""
        panels, marks = {}, {}
        for metric in self.metrics:
            lines = {r.label: r.curves[metric] for r in self.runs if metric in r.curves}
            points = {
                r.label: [(c["step"], c["value"])]
                for r in self.runs
                if (c := cell(r, metric, SOURCES[1]))
                and isinstance(c["step"], int)
                and math.isfinite(c["value"])
            }
            if lines or points:
                panels[metric], marks[metric] = lines, points
        return curves_png(panels, marks) if panels else None


def compare(run_dirs: list[str | Path], metrics: list[str] | None = None) -> Comparison:
    """Read the runs and choose the metrics (``select_metrics``)."""
    if len(run_dirs) < 2:
        raise ConfigError("give at least two runs to compare")
    runs = [
        read_run_metrics(d, label) for d, label in zip(run_dirs, labels_for(run_dirs), strict=True)
    ]
    return Comparison(runs, select_metrics(runs, metrics))
