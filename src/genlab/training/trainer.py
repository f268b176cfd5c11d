"""The training loop. It owns time: steps, batches, logging, fixed-noise grids, EMA,
checkpoints and resume. It knows nothing about what a model optimises; ``train_step`` does."""

from __future__ import annotations

import gc
import math
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from tqdm.auto import tqdm

from genlab.core import hardware
from genlab.core.config import RunConfig
from genlab.core.errors import ConfigError, TrainingDiverged
from genlab.core.version import __version__
from genlab.data import load_data
from genlab.metrics import EvalContext, parse_metrics, run_metrics
from genlab.models import build_model
from genlab.models.base import GenerativeModel
from genlab.models.optim import apply_lr_decay
from genlab.models.sampling import save_samples
from genlab.training import checkpoint as ckpt
from genlab.training import distributed as ddp
from genlab.training import speed
from genlab.training.batches import BatchStream
from genlab.training.ema import EMA
from genlab.training.logger import NullLogger, RunLogger, eval_key
from genlab.training.rundir import RunLock, prepare_run_dir

# Signals that stop a run between steps after a checkpoint: Ctrl-C, and what schedulers send
# before they kill a job (SIGTERM: Kubernetes, SLURM at the time limit; SIGUSR1: SLURM's
# --signal). The exit status is 128 + the signal's number, as a shell reports a signal.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGUSR1") if hasattr(signal, name)
)


class TrainingInterrupted(KeyboardInterrupt):
    """A stop signal between steps: a checkpoint of the current step was written first.
    ``args`` = (step, signal number, run directory)."""

    @property
    def status(self) -> int:
        return 128 + int(self.args[1]) if len(self.args) > 1 else 130


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
        self.env = ddp.setup(cfg.device, cfg.train.dist_backend)  # one process unless torchrun
        # Rank 0 holds the run directory's lock from here until fit() ends.
        self.lock = RunLock(self.run_dir) if self.env.is_main else RunLock.none()
        try:
            self._build(cfg, resume)
        except BaseException:
            self.lock.release(undo=True)
            raise

    def _build(self, cfg: RunConfig, resume: bool) -> None:
        train = cfg.train
        self.device = ddp.process_device(resolve_device(cfg.device), self.env)
        if train.threads:
            torch.set_num_threads(train.threads)
        # The concrete precision (auto resolved, rank 0's choice on every rank) goes into the
        # config, so that config.json, bench rows and a resumed run all name what ran.
        precision = hardware.resolve_precision(train.precision, self.device)
        train.precision = ddp.broadcast_object(precision, self.env)
        torch.manual_seed(cfg.seed)  # weights (the same on every rank) and training noise
        data = load_data(cfg.data)
        self.data, self.spec = data, data.spec
        self.eval_metrics = self._eval_metrics()
        self.model: GenerativeModel = build_model(cfg.model, data.spec).to(self.device)
        speed.apply_memory_format(self.model, train, data.spec.kind == "image")
        if self.env.enabled:  # each rank its own latents and noise
            torch.manual_seed(cfg.seed + ddp.RANK_SEED_STRIDE * self.env.rank)
        self.lr_factor = speed.lr_factor(train, self.env.world)
        self.optimizers = self.model.configure_optimizers(speed.scaled(train, self.env.world))
        self.model.grad_scaler = speed.grad_scaler(train, self.device)
        self.stream = BatchStream(
            data.train, train.batch_size, cfg.seed, self.device,
            rank=self.env.rank, world=self.env.world,
        )  # fmt: skip
        target = self.model.ema_target
        use_ema = train.ema > 0 and target is not None
        self.ema = EMA(getattr(self.model, target), train.ema) if use_ema else None
        self.ckpt_root = self.run_dir / "checkpoints"
        self.step = self._restore() if resume else 0
        self.batches_read = 0  # by this process since it started, for the images/s figure
        if not resume and self.env.is_main:
            prepare_run_dir(self.run_dir, cfg, data.spec)
        speed.compile_networks(self.model, train)
        self.parallel = (
            ddp.DataParallel(self.model, self.env, self.device, sync_bn=train.sync_batchnorm)
            if self.env.enabled
            else None
        )
        # Reading the losses syncs the device: every step on one CPU process (free, stops at the
        # first bad step), else only when logging or checkpointing (all ranks at the same steps).
        self.reads_every_step = self.device.type == "cpu" and not self.env.enabled
        self._stop, self._signal = False, 0

    # ------------------------------------------------------------------ state
    def _state(self) -> dict:
        state = {
            "step": self.step,
            "genlab_version": __version__,
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "torch_rng": torch.get_rng_state(),
            "batches": self.stream.state_dict(),
            "lr_factor": self.lr_factor,
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        if self.model.grad_scaler is not None:
            state["grad_scaler"] = self.model.grad_scaler.state_dict()
        if self.env.enabled:  # every rank's noise stream, so that the same job resumes exactly
            state["rank_rng"] = ddp.gather_objects(torch.get_rng_state(), self.env)
        return state

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint (rank 0; every rank must call it, it gathers their RNG states)."""
        state = self._state()
        if not self.env.is_main:
            return None
        return ckpt.save_checkpoint(
            self.ckpt_root,
            self.step,
            self.model.state_dict(),
            state,
            ema=self.ema.state_dict() if self.ema else None,
            keep=self.cfg.train.keep_checkpoints,
        )

    def _restore(self) -> int:
        path = ckpt.usable_checkpoint(self.ckpt_root)
        if path is None:  # killed before its first checkpoint: start over, same seed
            return 0
        ckpt.load_weights_into(self.model, ckpt.read_weights(path / "model.safetensors"), path)
        if self.ema is not None and (path / "ema.safetensors").is_file():
            self.ema.load_state_dict(ckpt.read_weights(path / "ema.safetensors"))
        state = ckpt.read_state(path / "state.pt")
        # The saved lr is the one of the saved world size; rescale it to this job's.
        ratio = self.lr_factor / float(state.get("lr_factor", 1.0))
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
            for group in opt.param_groups:
                group["lr"] *= ratio
                if "base_lr" in group:  # train.lr_decay's starting lr
                    group["base_lr"] *= ratio
        if self.model.grad_scaler is not None and "grad_scaler" in state:
            self.model.grad_scaler.load_state_dict(state["grad_scaler"])
        self._restore_rng(state)
        self.stream.load_state_dict(state["batches"])
        return int(state["step"])

    def _restore_rng(self, state: dict) -> None:
        """The same job continues every rank's noise exactly; another number of processes
        continues rank 0's and reseeds the others from (seed, rank, step)."""
        ranks = state.get("rank_rng")
        if ranks is not None and len(ranks) == self.env.world:
            torch.set_rng_state(ranks[self.env.rank])
        elif self.env.rank == 0:
            torch.set_rng_state(state["torch_rng"])
        else:
            rank_seed = self.cfg.seed + ddp.RANK_SEED_STRIDE * self.env.rank
            torch.manual_seed(rank_seed + int(state["step"]))
        if "cuda_rng" in state and self.device.type == "cuda" and self.env.rank == 0:
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)

    # ------------------------------------------------------------------ loop
    def train_one(self) -> dict:
        """One step: the next batch, the model's ``train_step`` (under autocast and, in a
        torchrun job, with its networks DDP-wrapped), the EMA. Returns the model's unsynced
        scalars."""
        train = self.cfg.train
        if train.lr_decay != "none":
            apply_lr_decay(self.optimizers, train.lr_decay, self.step, train.steps)
        k = self.model.batches_for_step(self.step)
        batch = self.stream.take(k)
        self.batches_read += k
        speed.to_memory_format(batch, self.cfg.train)
        parallel = self.parallel.active() if self.parallel else nullcontext()
        with parallel, speed.autocast(self.cfg.train, self.device):
            out = self.model.train_step(batch, self.optimizers, self.step)
        self.step += 1
        if self.ema is not None:
            self.ema.update(self.step)
        return out

    def fit(self) -> Path:
        cfg, main = self.cfg.train, self.env.is_main
        logger = RunLogger(self.run_dir, self.step) if main else NullLogger()
        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            unit="step",
            dynamic_ncols=True,
            disable=not (cfg.progress and main),
            mininterval=0.5 if sys.stderr.isatty() else 30,
        )
        self._announce()
        t0, s0 = time.perf_counter(), self.batches_read
        try:
            with self._catch_signals():
                while self.step < cfg.steps:
                    if self._should_stop():
                        self.save_checkpoint()
                        raise TrainingInterrupted(self.step, self._signal, self.run_dir)
                    out = self.train_one()
                    done = self.step == cfg.steps
                    eval_now = bool(cfg.eval_every) and (self.step % cfg.eval_every == 0 or done)
                    log_now = self.step % cfg.log_every == 0 or done or eval_now
                    ckpt_now = self.step % cfg.ckpt_every == 0 or done
                    if log_now or ckpt_now or self.reads_every_step:
                        values = self._finite(out)
                    if log_now and main:
                        # training samples read per second (a GAN reads one batch per D step)
                        read = (self.batches_read - s0) * cfg.batch_size
                        rate = read / (time.perf_counter() - t0)
                        values["images_per_s"] = rate * self.env.world
                        if eval_now:
                            values.update(self.evaluate())
                        logger.log(self.step, values)
                        bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()}, refresh=False)
                        t0, s0 = time.perf_counter(), self.batches_read
                    if main and (self.step % cfg.sample_every == 0 or done):
                        self.write_samples()
                    if ckpt_now:
                        self._check_weights()
                        self.save_checkpoint()
                    bar.update(1)
        finally:
            bar.close()
            logger.close()
            self.lock.release()
        if self.env.enabled:  # every rank returns once rank 0's last checkpoint is written
            torch.distributed.barrier()
            # The DDP wrappers go while their process group is alive (a reducer destroyed after
            # it, at interpreter exit, can abort the process).
            self.parallel = None
            gc.collect()
        return self.run_dir

    def _announce(self) -> None:
        """Rank 0 says how the job is split: processes, batch per process and in all, lr."""
        if not (self.env.enabled and self.env.is_main):
            return
        cfg, world = self.cfg.train, self.env.world
        lr = cfg.lr * self.lr_factor
        print(
            f"data parallel: {world} processes ({self.env.backend}, {self.device.type}), batch "
            f"{cfg.batch_size} per process = effective batch {cfg.batch_size * world}; "
            f"lr {lr:.3g} = {cfg.lr:.3g} x {self.lr_factor:.3g} (train.lr_scale={cfg.lr_scale})",
            flush=True,
        )

    def _should_stop(self) -> bool:
        """A Ctrl-C stops a single process at the next step; a torchrun job at the next
        logging step, once every rank has agreed (so all of them stop at the same step)."""
        if not self.env.enabled:
            return self._stop
        if self.step % self.cfg.train.log_every:
            return False
        return ddp.any_rank(self._stop, self.env, self.device)

    def _finite(self, out: dict) -> dict[str, float]:
        values = {k: float(v) for k, v in out.items()}
        values = ddp.mean_over_ranks(values, self.env, self.device)
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
        return TrainingDiverged(f"{what}; {kept}. Try a lower train.lr or another seed (seed=N)")

    # ------------------------------------------------------------------ evaluation
    def _eval_metrics(self) -> list[tuple[str, str, int | None]]:
        """The metrics of ``train.eval_every``, checked before the first step."""
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
    def _catch_signals(self):
        """The first stop signal: finish the step, checkpoint, stop; a second Ctrl-C stops at
        once. Only in the main thread (elsewhere signals cannot be caught)."""
        previous = {}
        try:
            for sig in STOP_SIGNALS:
                previous[sig] = signal.signal(sig, self._on_signal)
        except ValueError:  # not the main thread
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            yield
            return
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum, frame) -> None:
        if self._stop and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self._stop, self._signal = True, self._signal or signum
