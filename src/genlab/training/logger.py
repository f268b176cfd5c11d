"""Where training numbers go: ``RUN/metrics.jsonl`` (one JSON object per logged step) and
TensorBoard events in ``RUN/tb``. On resume, entries after the checkpoint are dropped so the
curves have no duplicated or orphaned steps."""

from __future__ import annotations

import json
import math
from pathlib import Path

from genlab.core.io import atomic_write_text


def eval_key(name: str, system: str = "model") -> str:
    """The metrics.jsonl key of a quality metric: ``eval/NAME`` for the model's value,
    ``eval/SYSTEM/NAME`` for a baseline row (``eval/data/fid``)."""
    return "eval/" + (name if system == "model" else f"{system}/{name}")


class RunLogger:
    def __init__(self, run_dir: Path, start_step: int) -> None:
        self.path = run_dir / "metrics.jsonl"
        if start_step == 0:
            self.path.unlink(missing_ok=True)
        elif self.path.exists():
            self._truncate_after(start_step)
        self._tb = None
        self._tb_dir, self._purge = run_dir / "tb", start_step + 1

    def _truncate_after(self, step: int) -> None:
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:  # a line cut by a kill
                continue
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    @property
    def tb(self):
        if self._tb is None:  # lazy: importing TensorBoard costs a second
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self._tb_dir), purge_step=self._purge)
        return self._tb

    def log(self, step: int, values: dict[str, float]) -> None:
        row = {"step": step, **{k: _clean(v) for k, v in values.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        for k, v in values.items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                self.tb.add_scalar(k, v, step)

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _clean(v: float) -> float | str | None:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no NaN/inf
    return v


class NullLogger:
    """The logger of ranks other than 0 in a torchrun job: only rank 0 writes."""

    def log(self, step: int, values: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass
