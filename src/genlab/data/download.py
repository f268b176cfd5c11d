"""Where downloadable datasets live (stub: the fetching is being written)."""

from __future__ import annotations

from pathlib import Path

from genlab.core.config import DataConfig
from genlab.core.errors import ConfigError


def dataset_root(name: str, cfg: DataConfig) -> Path:
    """The directory dataset ``name`` reads its files from."""
    if not cfg.root:
        raise ConfigError(f"dataset {name!r} needs data.root=DIR")
    return Path(cfg.root).expanduser()
