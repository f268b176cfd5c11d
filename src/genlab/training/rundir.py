"""The run directory: ``config.json`` (resolved config, genlab version, data spec), written
before the first step; ``genlab.load`` and ``--resume`` rebuild everything from it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import IO, Any

from genlab.core.config import RunConfig, validate
from genlab.core.errors import CheckpointError, ConfigError
from genlab.core.io import atomic_write_json
from genlab.core.version import __version__
from genlab.data.base import DataSpec

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; two writers are the user's care there
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".genlab.lock"


class RunLock:
    """An advisory lock on a run directory, held by the process training it (rank 0): a second
    ``genlab train --out``/``--resume`` on it is refused. The OS releases it when the process
    ends, however it ends, so a crash never leaves a stale lock. Readers take no lock."""

    def __init__(self, run_dir: Path) -> None:
        self.file: IO[str] | None = None
        if fcntl is None:
            return
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigError(f"--out {run_dir} exists and is not a directory")
        self.made_dir = not run_dir.exists()
        self.path = run_dir / LOCK_NAME
        self.made_file = not self.path.exists()
        run_dir.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise ConfigError(
                f"{run_dir} is being trained by {holder}; wait for it to finish or stop it "
                "(its checkpoint lets --resume continue), or choose another --out"
            ) from None
        f.seek(0)
        self.previous = f.read()  # put back if this start fails (bad input changes nothing)
        f.seek(0)
        f.truncate()
        f.write(
            f"process {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}"
        )
        f.flush()
        self.file = f

    @classmethod
    def none(cls) -> RunLock:
        """A lock that holds nothing (the other ranks of a torchrun job)."""
        lock = cls.__new__(cls)
        lock.file = None
        return lock

    def release(self, *, undo: bool = False) -> None:
        """Drop the lock. ``undo`` (a start that failed before the run was written): also
        remove the lock file and the directory if this process made them, so bad input
        leaves no trace."""
        if self.file is None:
            return
        if undo and not self.made_file:
            self.file.seek(0)
            self.file.truncate()
            self.file.write(self.previous)
        self.file.close()  # closing the descriptor drops the lock
        self.file = None
        if undo and not (self.path.parent / "config.json").exists():
            if self.made_file:
                self.path.unlink(missing_ok=True)
            if self.made_dir:
                with contextlib.suppress(OSError):  # not empty: leave it
                    self.path.parent.rmdir()


def default_run_dir(cfg: RunConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.model.name}-{cfg.data.name}-{stamp}"


def _record(cfg: RunConfig, spec: DataSpec) -> dict[str, Any]:
    record: dict[str, Any] = {"genlab_version": __version__, **cfg.model_dump(mode="json")}
    record["data_spec"] = spec.to_dict()
    return record


def prepare_run_dir(run_dir: Path, cfg: RunConfig, spec: DataSpec) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir} exists and is not a directory")
    if (run_dir / "config.json").exists():
        raise ConfigError(
            f"{run_dir} already holds a run; continue it with `genlab train --resume {run_dir}` "
            "or choose another --out"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "config.json", _record(cfg, spec))


def update_run_config(run_dir: Path, cfg: RunConfig) -> None:
    """Record train.* overrides given on resume, so config.json says how the run was trained."""
    _, spec = read_run_config(run_dir)
    atomic_write_json(Path(run_dir) / "config.json", _record(cfg, spec))


def read_run_config(run_dir: str | Path) -> tuple[RunConfig, DataSpec]:
    """(config, data spec) of a run; a missing or damaged config.json is a CheckpointError."""
    path = Path(run_dir) / "config.json"
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"run directory {run_dir} does not exist")
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; {run_dir} is not a genlab run directory")
    try:
        record = json.loads(path.read_text())
        spec = DataSpec.from_dict(record.pop("data_spec"))
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path} is damaged ({type(err).__name__}: {err})") from None
    record.pop("genlab_version", None)
    try:
        return validate(record), spec
    except ConfigError as err:
        raise CheckpointError(f"{path}: {err}") from None
