"""What one does with a run directory: ``train`` (what the CLI, tests and notebooks call),
``load`` its model, and ``evaluate`` its checkpoint on named metrics."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genlab.core.config import RunConfig, build_config, validate
from genlab.core.errors import CheckpointError, ConfigError
from genlab.metrics import EvalContext, MetricResult, parse_metrics, record_results, run_metrics
from genlab.models.base import GenerativeModel, build_model
from genlab.training import checkpoint as ckpt
from genlab.training import distributed as ddp
from genlab.training.rundir import default_run_dir, read_run_config, update_run_config
from genlab.training.trainer import Trainer, resolve_device


def train(
    config: RunConfig | dict[str, Any] | str | None = None,
    *,
    data: str | None = None,
    preset: str | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
) -> Path:
    """Train a model and return its run directory.

    ``config`` is a model name (``"vae"``), a config dict or a ``RunConfig``; ``data``, ``preset``
    and dotted ``overrides`` (``["train.steps=500"]`` or ``{"train.steps": 500}``) refine it.
    ``resume=RUN`` continues that run from its newest checkpoint (overrides may only touch
    ``train.*``, e.g. to extend ``train.steps``).
    """
    if resume is not None:
        cfg = resume_config(resume, overrides)
        return Trainer(cfg, Path(resume), resume=True).fit()
    if isinstance(config, RunConfig) and not (data or preset or overrides):
        cfg = config
    elif isinstance(config, RunConfig | dict):
        base = config.model_dump() if isinstance(config, RunConfig) else config
        cfg = build_config(data=data, preset=preset, overrides=overrides, base=base)
    else:
        cfg = build_config(config, data=data, preset=preset, overrides=overrides)
    run_dir = Path(out) if out is not None else default_run_dir(cfg)
    # Under torchrun the name is rank 0's (it is read from the clock).
    run_dir = ddp.broadcast_object(run_dir, ddp.setup(cfg.device, cfg.train.dist_backend))
    return Trainer(cfg, run_dir).fit()


def resume_config(run_dir: str | Path, overrides: list[str] | dict[str, Any] | None) -> RunConfig:
    saved, _ = read_run_config(run_dir)
    if not overrides:
        return saved
    cfg = build_config(overrides=overrides, base=saved.model_dump())
    for section in ("model", "data", "seed"):
        if getattr(cfg, section) != getattr(saved, section):
            raise ConfigError(f"a resumed run keeps its {section} config; only train.* may change")
    if cfg != saved:
        update_run_config(Path(run_dir), cfg)
    return cfg


def load(
    run_dir: str | Path, *, step: int | None = None, ema: bool = True, device: str = "cpu"
) -> GenerativeModel:
    """Rebuild the model of a run from ``config.json`` and load its newest (or ``step``)
    checkpoint; with ``ema`` the averaged generator/decoder weights are used when saved.
    The model is returned in eval mode."""
    cfg, spec = read_run_config(run_dir)
    root = Path(run_dir) / "checkpoints"
    path = root / f"step_{step}" if step is not None else ckpt.usable_checkpoint(root)
    if path is None or not (path / "model.safetensors").is_file():
        what = f"step {step}" if step is not None else "any checkpoint"
        raise CheckpointError(f"{run_dir} has no complete checkpoint for {what}")
    model = build_model(cfg.model, spec)
    ckpt.load_weights_into(model, ckpt.read_weights(path / "model.safetensors"), path)
    ema_file = path / "ema.safetensors"
    if ema and model.ema_target and ema_file.is_file():
        target = getattr(model, model.ema_target)
        ckpt.load_weights_into(target, ckpt.read_weights(ema_file), ema_file)
    return model.to(resolve_device(device)).eval()


def check_split(split: str) -> str:
    """``split`` when it names a split a run's data has (train, test), else ConfigError."""
    if split not in ("train", "test"):
        raise ConfigError(f"--split {split!r}: use train or test")
    return split


def load_config(run_dir: str | Path) -> RunConfig:
    """The resolved ``RunConfig`` saved in ``RUN/config.json``."""
    return read_run_config(run_dir)[0]


def evaluate(
    run_dir: str | Path,
    metrics: str | Sequence[str],
    *,
    n: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
    split: str = "test",
    device: str = "cpu",
    step: int | None = None,
    ema: bool = True,
    options: dict[str, Any] | None = None,
    progress: bool = True,
    record: bool = True,
) -> list[MetricResult]:
    """Evaluate a run's checkpoint (newest, or ``step``) on the metrics named in ``metrics``
    (``"elbo,nll"`` or a list). With ``record`` the results are appended to ``RUN/eval.json``."""
    wanted = parse_metrics(metrics if isinstance(metrics, str) else ",".join(metrics))
    ctx = eval_context(
        run_dir,
        n=n,
        seed=seed,
        batch_size=batch_size,
        split=split,
        device=device,
        step=step,
        ema=ema,
        options=options,
        progress=progress,
    )
    results = run_metrics(ctx, wanted)
    if record:
        record_results(ctx, results)
    return results


def eval_context(
    run_dir: str | Path,
    *,
    n: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
    split: str = "test",
    device: str = "cpu",
    step: int | None = None,
    ema: bool = True,
    options: dict[str, Any] | None = None,
    progress: bool = True,
) -> EvalContext:
    """The evaluation context of a run's checkpoint (newest, or ``step``): the model loaded in
    eval mode on ``device``, the first ``n`` items of ``split`` (all if None), the noise
    ``seed`` and the metric ``options`` (``features``, ``inception_weights``, ``k``, ...).
    Raises ConfigError for a bad split, count, batch size or a missing Inception weights file."""
    check_split(split)
    if n is not None and n < 1:
        raise ConfigError(f"--n {n}: give a positive number of images")
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: give a positive batch size")
    options = dict(options or {})
    weights = options.get("inception_weights")
    if weights is not None and not Path(weights).is_file():
        raise ConfigError(f"--inception-weights {weights}: no such file")
    model = load(run_dir, step=step, ema=ema, device=device)
    if step is None:
        step = int(ckpt.latest_checkpoint(Path(run_dir) / "checkpoints").name[5:])
    cfg = load_config(run_dir)
    return EvalContext(
        Path(run_dir), cfg, model, resolve_device(device), step, seed, n, batch_size, split,
        options, progress,
    )  # fmt: skip


__all__ = ["check_split", "eval_context", "evaluate", "load", "load_config", "train", "validate"]
