"""What every lab is: a claim of the course notes, a small experiment over the library's own
models, losses and metrics, a figure, and checks against a closed form or an independent
computation (docs/labs/README.md).

A lab is a function ``run(ctx: LabContext) -> LabOutput`` registered with ``@register_lab``,
with its parameters' defaults (``key=value`` overrides are checked against them and take their
type) and the smaller values of ``--quick``. ``run_lab`` resolves the parameters, runs it, and
writes ``DIR/NAME.png`` and ``DIR/result.json``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from genlab.core.errors import ConfigError
from genlab.core.io import atomic_write
from genlab.core.registry import Registry
from genlab.models.sampling import figure_png

LABS = Registry("lab")
Relation = Literal["close", "at_most", "at_least"]


@dataclass(frozen=True)
class Check:
    """One checked number. ``close``: |value - reference| <= tolerance; ``at_most``: value <=
    reference + tolerance; ``at_least``: value >= reference - tolerance."""

    name: str
    value: float
    reference: float
    tolerance: float = 0.0
    relation: Relation = "close"

    @property
    def ok(self) -> bool:
        if not math.isfinite(self.value):
            return False
        if self.relation == "at_most":
            return self.value <= self.reference + self.tolerance
        if self.relation == "at_least":
            return self.value >= self.reference - self.tolerance
        return abs(self.value - self.reference) <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def close(name: str, value: float, reference: float, tolerance: float) -> Check:
    return Check(name, float(value), float(reference), float(tolerance), "close")


def at_most(name: str, value: float, bound: float, tolerance: float = 0.0) -> Check:
    return Check(name, float(value), float(bound), float(tolerance), "at_most")


def at_least(name: str, value: float, bound: float, tolerance: float = 0.0) -> Check:
    return Check(name, float(value), float(bound), float(tolerance), "at_least")


@dataclass
class LabContext:
    params: dict[str, Any]
    quick: bool
    seed: int
    out: Path

    def __getitem__(self, key: str) -> Any:
        return self.params[key]


@dataclass
class LabOutput:
    checks: list[Check]
    figure: Any  # a matplotlib Figure (genlab.models.sampling.pyplot)
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LabSpec:
    name: str
    claim: str
    run: Callable[[LabContext], LabOutput]
    defaults: dict[str, Any]
    quick: dict[str, Any]
    threads: int | None = 1  # torch threads while it runs; None: leave torch's setting


def register_lab(
    name: str,
    *,
    claim: str,
    defaults: dict[str, Any],
    quick: dict[str, Any] | None = None,
    threads: int | None = 1,
) -> Callable:
    """Decorator: ``@register_lab("conv-arithmetic", claim=..., defaults={...})``. Labs run on
    one torch thread by default: their networks are small enough that a second thread costs
    more in overhead than it gains (4-20x slower ops measured on a loaded 2-core machine)."""

    def add(fn: Callable[[LabContext], LabOutput]) -> Callable[[LabContext], LabOutput]:
        unknown = set(quick or {}) - set(defaults)
        if unknown:
            raise ValueError(f"lab {name}: quick values {sorted(unknown)} have no default")
        spec = LabSpec(name, claim, fn, dict(defaults), dict(quick or {}), threads)
        LABS.add(name, spec, help=claim)
        return fn

    return add


def quiet_run(ctx: LabContext, steps: int) -> dict[str, Any]:
    """Overrides of a lab's tiny training run: ``steps`` steps at the lab's seed, no progress
    bar, one log line, sample grid and checkpoint, at the end."""
    return {
        "train.steps": steps,
        "train.progress": False,
        "seed": ctx.seed,
        "train.log_every": steps,
        "train.sample_every": steps,
        "train.ckpt_every": steps,
    }


def _coerce(key: str, text: Any, default: Any) -> Any:
    """An override's value in the type of the parameter's default."""
    if not isinstance(text, str):
        return text
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "1")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, (list, tuple)):
            kind = type(default[0]) if default else str
            return [kind(v) for v in text.strip("[]").split(",") if v.strip()]
    except ValueError:
        kind = type(default).__name__
        raise ConfigError(f"{key}={text}: expected {kind} (like {default!r})") from None
    return text


def resolve_params(
    spec: LabSpec, quick: bool, overrides: dict[str, Any] | Sequence[str] = ()
) -> dict[str, Any]:
    """The lab's defaults, then its quick values, then the user's ``key=value`` overrides."""
    if not isinstance(overrides, dict):
        pairs = {}
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"override {item!r} is not key=value")
            pairs[key.strip()] = value.strip()
        overrides = pairs
    params = {**spec.defaults, **(spec.quick if quick else {})}
    for key, value in overrides.items():
        if key not in spec.defaults:
            keys = ", ".join(sorted(spec.defaults)) or "none"
            raise ConfigError(f"lab {spec.name} has no parameter {key!r} (it has: {keys})")
        params[key] = _coerce(key, value, spec.defaults[key])
    return params


def run_lab(
    name: str,
    out: str | Path | None = None,
    *,
    quick: bool = False,
    overrides: dict[str, Any] | Sequence[str] = (),
    seed: int = 0,
) -> dict[str, Any]:
    """Run lab ``name``; write ``OUT/NAME.png`` and ``OUT/result.json`` (default OUT
    ``runs/labs/NAME``); return the result dict (``"ok"``: every check holds)."""
    spec: LabSpec = LABS.get(name)
    params = resolve_params(spec, quick, overrides)
    out = Path(out) if out else Path("runs") / "labs" / name
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    before = torch.get_num_threads()
    if spec.threads:
        torch.set_num_threads(spec.threads)
    try:
        result = spec.run(LabContext(params, quick, seed, out))
    finally:
        torch.set_num_threads(before)
    seconds = time.perf_counter() - start
    figure = out / f"{name}.png"
    png = figure_png(result.figure)
    atomic_write(figure, lambda f: f.write(png))
    record = {
        "lab": name,
        "claim": spec.claim,
        "ok": all(c.ok for c in result.checks),
        "checks": [c.to_dict() for c in result.checks],
        "numbers": result.numbers,
        "params": params,
        "quick": quick,
        "seed": seed,
        "seconds": round(seconds, 2),
        "figure": str(figure),
    }
    text = json.dumps(record, indent=2, default=float) + "\n"
    atomic_write(out / "result.json", lambda f: f.write(text.encode()))
    return record
