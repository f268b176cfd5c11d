"""Labs (``genlab lab``): each claim of the generative-model course notes as a small, checked
experiment. One file per lab; importing this package registers them all."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genlab.core.errors import ConfigError
from genlab.tools.labs.base import (
    LABS,
    Check,
    LabContext,
    LabOutput,
    at_least,
    at_most,
    close,
    register_lab,
    run_lab,
)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")


def list_labs() -> dict[str, str]:
    """Each lab's name and the claim it checks (``genlab lab list``)."""
    return {name: LABS.get(name).claim for name in LABS.names()}


def lab(
    name: str,
    out: str | Path | None = None,
    *,
    quick: bool = False,
    overrides: dict[str, Any] | Sequence[str] = (),
    seed: int = 0,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run lab ``name`` (``genlab lab NAME``), or every lab for ``"all"`` (each into
    ``OUT/NAME``, ``on_result`` called after each); returns the result dict, for ``"all"``
    ``{"ok", "labs": [...]}``."""
    if name != "all":
        return run_lab(name, out, quick=quick, overrides=overrides, seed=seed)
    if overrides:
        raise ConfigError("`genlab lab all` takes no key=value overrides: each lab has its own")
    root = Path(out) if out else Path("runs") / "labs"
    results = []
    for n in LABS.names():
        results.append(run_lab(n, root / n, quick=quick, seed=seed))
        if on_result:
            on_result(results[-1])
    return {"ok": all(r["ok"] for r in results), "labs": results}


__all__ = [
    "LABS",
    "Check",
    "LabContext",
    "LabOutput",
    "at_least",
    "at_most",
    "close",
    "lab",
    "list_labs",
    "register_lab",
]
