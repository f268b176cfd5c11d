"""Evaluation: metrics registered by name in ``METRICS``, run by ``genlab.api.evaluate``
(``genlab eval``).

A metric is a function ``fn(ctx: EvalContext, param: int | None) -> list[MetricResult]``.
``param`` is the number after ``@`` in names such as ``recall@20`` (metrics registered with
``takes_param=True``); others receive ``None``. A metric that does not apply to a run (a
likelihood for a GAN) raises ``ConfigError`` naming what it needs. Every result carries its
sample count and a note naming its estimator, feature space or seed, so a number is never
shown without what it means.

Importing this package registers every module in it (a new metric family is a new file).
"""

from __future__ import annotations

import importlib
import pkgutil

from genlab.metrics.base import (
    EvalContext,
    MetricResult,
    format_table,
    parse_metrics,
    record_results,
    register_metric,
    run_metrics,
    seeded_generator,
)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "EvalContext",
    "MetricResult",
    "format_table",
    "parse_metrics",
    "record_results",
    "register_metric",
    "run_metrics",
    "seeded_generator",
]
