"""``genlab list``: registered models, datasets, metrics and presets."""

from __future__ import annotations

import json

import genlab.metrics  # noqa: F401  (registers the metrics)
from genlab.core.config import preset_names
from genlab.core.registry import DATASETS, METRICS, MODELS


def add_parser(subs) -> None:
    p = subs.add_parser("list", help="registered models, datasets, metrics and presets")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def run(args) -> int:
    table = {
        "models": {n: MODELS.entry(n).help for n in MODELS.names()},
        "datasets": {n: DATASETS.entry(n).help for n in DATASETS.names()},
        "metrics": {n: METRICS.entry(n).help for n in METRICS.names()},
        "presets": preset_names(),
    }
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    for section in ("models", "datasets", "metrics"):
        print(f"{section}:")
        for name, help_text in table[section].items():
            print(f"  {name:<16} {help_text}")
    print("presets:")
    print("  " + ", ".join(table["presets"]))
    return 0
