"""Name -> object tables for models, datasets and metrics.

A model entry may carry *defaults*: a variant such as ``dcgan`` is the ``GAN`` class with a
few config fields set, not a class of its own (DESIGN.md: variants are configurations).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genlab.core.errors import ConfigError


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    defaults: dict[str, Any] = field(default_factory=dict)
    help: str = ""


class Registry:
    """A table of named entries; ``get`` of an unknown name lists the valid ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(
        self, name: str, *, defaults: dict[str, Any] | None = None, help: str = ""
    ) -> Callable[[Any], Any]:
        """Decorator: ``@MODELS.register("vae")``. Stack it to register variants of one class."""

        def add(obj: Any) -> Any:
            self.add(name, obj, defaults=defaults, help=help)
            return obj

        return add

    def add(
        self, name: str, obj: Any, *, defaults: dict[str, Any] | None = None, help: str = ""
    ) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        doc = help or next(iter((obj.__doc__ or "").strip().splitlines()), "")
        self._entries[name] = Entry(name, obj, dict(defaults or {}), doc)

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose from: {', '.join(self.names())}"
            ) from None

    def get(self, name: str) -> Any:
        return self.entry(name).obj

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries


MODELS = Registry("model")
DATASETS = Registry("dataset")
METRICS = Registry("metric")
