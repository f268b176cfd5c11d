"""The training loop. It owns time: steps, batches, logging, fixed-noise grids, EMA,
checkpoints and resume. It knows nothing about what a model optimises; ``train_step`` does."""

from __future__ import annotations

import math
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from tqdm.auto import tqdm

from genlab import __version__
from genlab.config import RunConfig
from genlab.data import load_data
from genlab.errors import ConfigError, TrainingDiverged
from genlab.models import build_model
from genlab.models.base import GenerativeModel
from genlab.sampling import save_samples
from genlab.training import checkpoint as ckpt
from genlab.training.batches import BatchStream
from genlab.training.ema import EMA
from genlab.training.logger import RunLogger, eval_key
from genlab.training.rundir import prepare_run_dir


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C between steps: a checkpoint of the current step was written first."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        msg = f"device: unknown device {name!r}; use cpu, cuda, cuda:N or auto"
        raise ConfigError(msg) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: CUDA is not available on this machine; use device=cpu")
    return device


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir: Path, *, resume: bool = False) -> None:
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.device = resolve_device(cfg.device)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.seed)  # weights and training noise
        data = load_data(cfg.data)
        self.data, self.spec = data, data.spec
        self.eval_metrics = self._eval_metrics()
        self.model: GenerativeModel = build_model(cfg.model, data.spec).to(self.device)
        self.optimizers = self.model.configure_optimizers(cfg.train)
        self.stream = BatchStream(data.train, cfg.train.batch_size, cfg.seed, self.device)
        target = self.model.ema_target
        use_ema = cfg.train.ema > 0 and target is not None
        self.ema = EMA(getattr(self.model, target), cfg.train.ema) if use_ema else None
        self.ckpt_root = self.run_dir / "checkpoints"
        self.step = self._restore() if resume else 0
        if not resume:
            prepare_run_dir(self.run_dir, cfg, data.spec)
        self._stop = False

    # ------------------------------------------------------------------ state
    def _state(self) -> dict:
        state = {
            "step": self.step,
            "genlab_version": __version__,
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "torch_rng": torch.get_rng_state(),
            "batches": self.stream.state_dict(),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def save_checkpoint(self) -> Path:
        return ckpt.save_checkpoint(
            self.ckpt_root,
            self.step,
            self.model.state_dict(),
            self._state(),
            ema=self.ema.state_dict() if self.ema else None,
            keep=self.cfg.train.keep_checkpoints,
        )

    def _restore(self) -> int:
        path = ckpt.latest_checkpoint(self.ckpt_root)
        if path is None:  # killed before its first checkpoint: start over, same seed
            return 0
        ckpt.load_weights_into(self.model, ckpt.read_weights(path / "model.safetensors"), path)
        if self.ema is not None and (path / "ema.safetensors").is_file():
            self.ema.load_state_dict(ckpt.read_weights(path / "ema.safetensors"))
        state = ckpt.read_state(path / "state.pt")
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.stream.load_state_dict(state["batches"])
        return int(state["step"])

    # ------------------------------------------------------------------ loop
    def fit(self) -> Path:
        cfg = self.cfg.train
        logger = RunLogger(self.run_dir, self.step)
        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            unit="step",
            dynamic_ncols=True,
            disable=not cfg.progress,
            mininterval=0.5 if sys.stderr.isatty() else 30,
        )
        t0, s0 = time.perf_counter(), self.step
        try:
            with self._catch_sigint():
                while self.step < cfg.steps:
                    if self._stop:
                        self.save_checkpoint()
                        raise TrainingInterrupted(self.step)
                    out = self.model.train_step(next(self.stream), self.optimizers, self.step)
                    self.step += 1
                    if self.ema is not None:
                        self.ema.update(self.step)
                    done = self.step == cfg.steps
                    eval_now = bool(cfg.eval_every) and (self.step % cfg.eval_every == 0 or done)
                    log_now = self.step % cfg.log_every == 0 or done or eval_now
                    ckpt_now = self.step % cfg.ckpt_every == 0 or done
                    # Reading the losses syncs the device: every step on CPU (free, stops at the
                    # first bad step), only when logging or checkpointing on GPU.
                    if log_now or ckpt_now or self.device.type == "cpu":
                        values = self._finite(out)
                    if log_now:
                        rate = (self.step - s0) * cfg.batch_size / (time.perf_counter() - t0)
                        values["images_per_s"] = rate
                        if eval_now:
                            values.update(self.evaluate())
                        logger.log(self.step, values)
                        bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()}, refresh=False)
                        t0, s0 = time.perf_counter(), self.step
                    if self.step % cfg.sample_every == 0 or done:
                        self.write_samples()
                    if ckpt_now:
                        self._check_weights()
                        self.save_checkpoint()
                    bar.update(1)
        finally:
            bar.close()
            logger.close()
        return self.run_dir

    def _finite(self, out: dict) -> dict[str, float]:
        values = {k: float(v) for k, v in out.items()}
        if not all(math.isfinite(v) for v in values.values()):
            shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
            raise self._diverged(f"non-finite loss at step {self.step} ({shown})")
        return values

    def _check_weights(self) -> None:
        """The loss is computed before the update, so the update itself may have produced
        inf/NaN weights: never write those as a checkpoint."""
        bad = [
            k
            for k, v in self.model.state_dict().items()
            if v.is_floating_point() and not torch.isfinite(v).all()
        ]
        if bad:
            raise self._diverged(f"non-finite weights after step {self.step} (e.g. {bad[0]})")

    def _diverged(self, what: str) -> TrainingDiverged:
        latest = ckpt.latest_checkpoint(self.ckpt_root)
        kept = f"the last good checkpoint is {latest}" if latest else "no checkpoint yet"
        return TrainingDiverged(f"{what}; {kept}. Try a lower train.lr or another train.seed")

    # ------------------------------------------------------------------ evaluation
    def _eval_metrics(self) -> list[tuple[str, str, int | None]]:
        """The metrics of ``train.eval_every``, checked before the first step."""
        from genlab.metrics import parse_metrics

        cfg = self.cfg.train
        if not cfg.eval_every:
            return []
        # A dataset may name the quality measure that suits it (spec.extra["eval_metrics"]).
        default = self.spec.extra.get("eval_metrics")
        if cfg.eval_metrics or default:
            return parse_metrics(cfg.eval_metrics or default)
        if "centres" in self.spec.extra:
            return parse_metrics("modes")
        raise ConfigError(
            "train.eval_every needs train.eval_metrics for this data, e.g. "
            "train.eval_metrics=elbo,recon (genlab list shows the metrics)"
        )

    def evaluate(self) -> dict[str, float]:
        """The ``train.eval_metrics`` of the current weights (EMA when kept), keyed
        ``eval/NAME`` (``eval/SYSTEM/NAME`` for baselines). Seeded generators only: training
        randomness and batch norm statistics are left untouched."""
        from genlab.metrics import EvalContext, run_metrics

        ctx = EvalContext(
            self.run_dir, self.cfg, self.model, self.device, self.step, seed=self.cfg.seed,
            progress=False, bundle=self.data,
        )  # fmt: skip
        with self.ema.swapped() if self.ema else nullcontext():
            results = run_metrics(ctx, self.eval_metrics)
        return {eval_key(r.name, r.system): r.value for r in results}

    def write_samples(self) -> Path:
        gen = torch.Generator().manual_seed(self.cfg.seed)  # the same noise at every step
        with self.ema.swapped() if self.ema else nullcontext():
            samples = self.model.sample(self.cfg.train.num_samples, generator=gen)
        path = self.run_dir / "samples" / f"step_{self.step}.png"
        return save_samples(samples, self.spec, path, title=f"step {self.step}")

    @contextmanager
    def _catch_sigint(self):
        """First Ctrl-C: finish the step, checkpoint, stop. Only in the main thread."""
        try:
            previous = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _on_sigint(self, signum, frame) -> None:
        if self._stop:
            raise KeyboardInterrupt
        self._stop = True
