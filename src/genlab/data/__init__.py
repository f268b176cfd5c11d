"""Datasets: each a function ``DataConfig -> DataBundle`` registered in ``DATASETS``."""

from __future__ import annotations

import importlib
import pkgutil

from genlab.data.base import DataBundle, DataSpec, Split, load_data, register_dataset
from genlab.data.downloads import download, list_downloads

# Registration happens on import: every loader module of this package (a new dataset is a new
# file here, nothing else to edit).
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "downloads", "pixels", "recsys", "sources"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "DataBundle",
    "DataSpec",
    "Split",
    "download",
    "list_downloads",
    "load_data",
    "register_dataset",
]
