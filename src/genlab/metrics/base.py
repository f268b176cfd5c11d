"""The metric engine: ``MetricResult``, ``EvalContext`` (a loaded run, its data and seeds),
the ``METRICS`` registry's decorator, parsing ``"fid,recall@20"``, running and recording them.
The metrics themselves are the other modules of this package; ``genlab.api.evaluate`` runs them
on a run directory."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from genlab.core.config import RunConfig
from genlab.core.errors import ConfigError
from genlab.core.io import atomic_write_json
from genlab.core.registry import METRICS
from genlab.data import DataBundle, Split, load_data
from genlab.data.base import Batch
from genlab.data.pixels import to_model
from genlab.models.base import GenerativeModel


@dataclass
class MetricResult:
    name: str  # as requested: "elbo", "recall@20"
    value: float
    stderr: float | None = None  # standard error of ``value`` where one is defined
    unit: str = ""
    n: int | None = None  # images / samples / users the value is computed from
    note: str = ""  # estimator, feature space, seed
    system: str = "model"  # what the row measures: the run's model, or a named baseline
    # The standard deviation over subsets or splits (KID, IS), as their papers report it: how
    # much the estimate varies between parts of the data, not a standard error of ``value``.
    spread: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def seeded_generator(seed: int, offset: int = 0) -> torch.Generator:
    """The CPU generator of an evaluation seed's stream ``offset`` (see ``EvalContext``)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + offset)


@dataclass
class EvalContext:
    """What a metric may use: the loaded model, its config and (lazily) its data."""

    run_dir: Path
    cfg: RunConfig
    model: GenerativeModel
    device: torch.device
    step: int
    seed: int = 0
    n: int | None = None  # cap on evaluation images/samples; None = the metric's default
    batch_size: int = 256
    split: str = "test"
    options: dict[str, Any] = field(default_factory=dict)  # metric options, e.g. {"k": 1000}
    progress: bool = True
    cache: dict[str, Any] = field(default_factory=dict)  # shared work between metrics
    bundle: DataBundle | None = None  # the data, when the caller has it loaded already

    @cached_property
    def data(self) -> DataBundle:
        return self.bundle if self.bundle is not None else load_data(self.cfg.data)

    def eval_split(self) -> Split:
        """The split to evaluate on, cut to its first ``n`` items (a fixed, seeded order)."""
        split = getattr(self.data, self.split)
        return split if self.n is None else split.take(torch.arange(min(self.n, len(split))))

    def generator(self, offset: int = 0) -> torch.Generator:
        """A CPU generator seeded from ``seed`` (``offset`` separates independent streams)."""
        return seeded_generator(self.seed, offset)

    def batches(self, split: Split) -> Iterator[Batch]:
        """The split in order, in model range, on the device: {"x", "y"?, "attrs"?}."""
        for start in range(0, len(split), self.batch_size):
            part = split.take(torch.arange(start, min(start + self.batch_size, len(split))))
            x = part.x.to(self.device)
            batch = {"x": to_model(x) if x.dtype == torch.uint8 else x}
            if part.y is not None:
                batch["y"] = part.y.to(self.device)
            if part.attrs is not None:
                batch["attrs"] = part.attrs.to(self.device).float()
            yield batch


MetricFn = Callable[[EvalContext, int | None], list[MetricResult]]


def register_metric(name: str, *, help: str, takes_param: bool = False) -> Callable:
    """Decorator: ``@register_metric("elbo", help="...")``."""

    def add(fn: MetricFn) -> MetricFn:
        fn.takes_param = takes_param  # type: ignore[attr-defined]
        METRICS.add(name, fn, help=help)
        return fn

    return add


def parse_metrics(text: str) -> list[tuple[str, str, int | None]]:
    """``"elbo,nll,recall@20"`` -> [(requested name, registered name, param), ...]."""
    out = []
    for raw in (t.strip() for t in text.split(",")):
        if not raw:
            continue
        base, sep, param = raw.partition("@")
        fn = METRICS.get(base)  # unknown -> one line listing the valid names
        if fn.takes_param and not sep:
            raise ConfigError(f"metric {base!r} needs a cut-off, e.g. {base}@20")
        if sep and not fn.takes_param:
            raise ConfigError(f"metric {base!r} takes no @ parameter; write {base}")
        if sep and not (param.isdigit() and int(param) > 0):
            raise ConfigError(f"metric {raw!r}: the number after @ must be a positive integer")
        out.append((raw, base, int(param) if sep else None))
    if not out:
        raise ConfigError(f"no metric named; choose from: {', '.join(METRICS.names())}")
    return out


def run_metrics(ctx: EvalContext, wanted: list[tuple[str, str, int | None]]) -> list[MetricResult]:
    """Run parsed metrics (``parse_metrics``) on a context; rows named as the user asked."""
    results: list[MetricResult] = []
    for raw, base, param in wanted:
        for result in METRICS.get(base)(ctx, param):
            result.name = raw if result.name == base else result.name
            results.append(result)
    return results


def record_results(ctx: EvalContext, results: list[MetricResult]) -> Path:
    """Append one evaluation to ``RUN/eval.json`` (rewritten atomically)."""
    import json

    path = ctx.run_dir / "eval.json"
    history = json.loads(path.read_text()) if path.is_file() else []
    history.append(
        {
            "step": ctx.step,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "split": ctx.split,
            "seed": ctx.seed,
            "results": [r.to_dict() for r in results],
        }
    )
    atomic_write_json(path, history)
    return path


def format_value(
    value: float | None, stderr: float | None = None, spread: float | None = None
) -> str:
    """``12.3 ± 0.41`` for a standard error, ``12.3 (sd 0.41)`` for a spread over subsets or
    splits (``MetricResult.spread``), ``-`` for no value."""
    if value is None:
        return "-"
    text = f"{value:.4g}"
    if stderr is not None:
        text += f" ± {stderr:.2g}"
    if spread is not None:
        text += f" (sd {spread:.2g})"
    return text


def format_table(results: Sequence[MetricResult]) -> str:
    """A fixed-width table for people: metric, system, value ± stderr (or its sd), unit, n,
    note."""
    rows = [("metric", "system", "value", "unit", "n", "note")]
    for r in results:
        value = format_value(r.value, r.stderr, r.spread)
        rows.append((r.name, r.system, value, r.unit, "" if r.n is None else str(r.n), r.note))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    )
