"""Datasets: each a function ``DataConfig -> DataBundle`` registered in ``DATASETS``."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from genlab.config import DataConfig
from genlab.data.base import DataBundle, DataSpec, Split
from genlab.errors import ConfigError
from genlab.registry import DATASETS

Loader = Callable[[DataConfig], DataBundle]


def register_dataset(name: str, *, uses: tuple[str, ...], help: str = "") -> Callable:
    """Register a loader with the ``data.*`` fields it reads; setting any other is an error."""

    def add(fn: Loader) -> Loader:
        fn.uses = frozenset(uses) | {"name"}  # type: ignore[attr-defined]
        DATASETS.add(name, fn, help=help)
        return fn

    return add


def load_data(cfg: DataConfig) -> DataBundle:
    """Load the dataset ``cfg.name`` names, after checking every field set is one it reads."""
    fn = DATASETS.get(cfg.name)
    # A field counts as set when it differs from its default (config.json repeats defaults).
    unused = sorted(
        f
        for f in type(cfg).model_fields
        if f not in fn.uses and getattr(cfg, f) != type(cfg).model_fields[f].default
    )
    if unused:
        raise ConfigError(
            f"data.{unused[0]} is not used by dataset {cfg.name!r} "
            f"(it reads: {', '.join(sorted(fn.uses - {'name'}))})"
        )
    return fn(cfg)


# Registration happens on import: every loader module of this package (a new dataset is a new
# file here, nothing else to edit).
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "pixels"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["DataBundle", "DataSpec", "Split", "load_data", "register_dataset"]
