"""The mode-collapse sweep: every GAN variant on the 2-D mixtures, several seeds, one table.

Each (variant, data, seed) run trains with the preset ``{variant}_{data}`` (e.g.
``presets/wgan_gp_ring8.yaml``) through ``genlab.train`` and is scored with the ``modes`` metric:
the protocol of VEEGAN (Srivastava et al. 2017, arXiv:1705.07761) and PacGAN (Lin et al. 2018,
arXiv:1712.04086): 2,500 samples, high quality within 3 sigma of the nearest mode, a mode captured
when it is the nearest mode of at least one high-quality sample. A finished run leaves
``RUN/coverage.json`` and ``RUN/coverage.png`` (the scored samples over each mode's 3-sigma
ring); a sweep started again over the same ``out`` skips those runs, so an
interrupted sweep resumes where it stopped (an unfinished run is trained again from scratch).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from genlab import api
from genlab.core.config import preset_names
from genlab.core.errors import ConfigError
from genlab.core.io import atomic_write_json, atomic_write_text
from genlab.metrics.modes import DEFAULT_SAMPLES, scored_samples
from genlab.models.sampling import save_samples

RESULT_FILE = "coverage.json"
PLOT_FILE = "coverage.png"  # the scored samples of one run
GOAL_HQ = 95.0  # % high-quality samples asked of every variant, with every mode captured

# Published rows of the same protocol, for the table's reference block: (modes, % high quality).
VEEGAN, PACGAN = "VEEGAN (Srivastava et al. 2017)", "PacGAN{} (Lin et al. 2018)"
PUBLISHED = {
    "ring8": [(VEEGAN, 8.0, 52.9), (PACGAN.format(2), 7.9, 95.6)],
    "grid25": [(VEEGAN, 24.6, 40.0), (PACGAN.format(4), 24.8, 93.6)],
}


@dataclass
class RunResult:
    """One trained run's score: ``modes`` captured of ``of``, ``hq`` in % [0, 100], ``kl`` the
    mode histogram's KL to uniform in nats, ``wall_s`` training + evaluation seconds."""

    variant: str
    data: str
    seed: int
    modes: float
    of: int
    hq: float
    kl: float
    wall_s: float


@dataclass
class Row:
    """Mean and sample standard deviation (0 for one seed) over the seeds of one pair."""

    variant: str
    data: str
    seeds: int
    of: int
    modes: float
    modes_std: float
    hq: float
    hq_std: float
    kl: float
    kl_std: float
    wall_s: float  # mean seconds per run

    @property
    def goal(self) -> bool:
        """Every mode in every seed (mean == all) and at least GOAL_HQ % high quality."""
        return self.modes == self.of and self.hq >= GOAL_HQ


def preset_for(variant: str, data: str) -> str:
    """The preset of one pair, checked: ``{variant}_{data}``."""
    name = f"{variant}_{data}"
    if name not in preset_names():
        have = sorted({p.rsplit("_", 1)[0] for p in preset_names() if p.endswith(f"_{data}")})
        choices = ", ".join(have) or "none"
        raise ConfigError(
            f"no preset {name!r} for variant {variant!r} on {data!r}; variants with a {data} "
            f"preset: {choices}"
        )
    return name


def plan(
    variants: Sequence[str], datasets: Sequence[str], seeds: int
) -> list[tuple[str, str, int]]:
    """Every (variant, data, seed) of the sweep, checked before any training starts."""
    if not variants or not datasets:
        raise ConfigError("give at least one variant (--models) and one dataset (--data)")
    if seeds < 1:
        raise ConfigError(f"--seeds {seeds}: give a positive number of seeds (seeds 0..N-1)")
    for v in variants:
        for d in datasets:
            preset_for(v, d)
    return [(v, d, s) for v in variants for d in datasets for s in range(seeds)]


def run_one(
    variant: str, data: str, seed: int, run_dir: Path, overrides: Sequence[str] = ()
) -> RunResult:
    """Train one run of the sweep in ``run_dir`` (replacing an unfinished one) and score it."""
    if run_dir.exists():
        shutil.rmtree(run_dir)  # an interrupted run: its checkpoints are not worth resuming
    start = time.perf_counter()
    extra = ["train.progress=false", *overrides, f"seed={seed}"]
    api.train(data=data, preset=preset_for(variant, data), overrides=extra, out=run_dir)
    got = {r.name: r for r in api.evaluate(run_dir, "modes", seed=seed, progress=False)}
    of = int(got["modes"].unit.split()[-1])  # "of 8"
    result = RunResult(
        variant, data, seed, got["modes"].value, of, got["hq"].value, got["mode_kl"].value,
        time.perf_counter() - start,
    )  # fmt: skip
    plot_scored(run_dir, result)
    atomic_write_json(run_dir / RESULT_FILE, asdict(result))
    return result


def plot_scored(run_dir: Path, r: RunResult) -> Path:
    """``run_dir/coverage.png``: the samples the score counted, over each mode's 3-sigma ring."""
    model = api.load(run_dir)
    points = scored_samples(model, DEFAULT_SAMPLES, r.seed)
    title = f"{r.variant} {r.data} seed {r.seed}: {r.modes:g}/{r.of} modes, {r.hq:.1f} % in 3 sigma"
    return save_samples(points, model.spec, run_dir / PLOT_FILE, title)


def mean_std(xs: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1 in the denominator; 0 for one value); a nan
    (a run without high-quality samples has no mode KL) makes both nan."""
    m = math.fsum(xs) / len(xs)
    var = math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1) if len(xs) > 1 else 0.0 * m
    return m, math.sqrt(var)


def summarise(results: Sequence[RunResult]) -> list[Row]:
    """Group runs by (variant, data) in first-seen order: means and sample stds over seeds."""
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for r in results:
        groups.setdefault((r.variant, r.data), []).append(r)

    rows = []
    for (variant, data), rs in groups.items():
        modes, hq, kl = (mean_std([getattr(r, k) for r in rs]) for k in ("modes", "hq", "kl"))
        wall = mean_std([r.wall_s for r in rs])[0]
        rows.append(Row(variant, data, len(rs), rs[0].of, *modes, *hq, *kl, wall))
    return rows


def markdown(rows: Sequence[Row]) -> str:
    """The table of ``rows`` with the published rows of each dataset beneath, as markdown."""
    lines = [
        "| variant | data | seeds | modes | high quality % | mode KL (nats) | s / run | goal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.variant} | {r.data} | {r.seeds} | {r.modes:.1f} ± {r.modes_std:.1f} / {r.of} "
            f"| {r.hq:.1f} ± {r.hq_std:.1f} | {r.kl:.3f} ± {r.kl_std:.3f} | {r.wall_s:.0f} "
            f"| {'yes' if r.goal else 'no'} |"
        )
    for data in dict.fromkeys(r.data for r in rows):
        for name, modes, hq in PUBLISHED.get(data, ()):
            lines.append(f"| {name} | {data} | | {modes:g} | {hq:g} | | | |")
    return "\n".join(lines) + "\n"


def sweep(
    variants: Sequence[str],
    datasets: Sequence[str],
    seeds: int,
    out: str | Path,
    *,
    overrides: Sequence[str] = (),
    on_run: Callable[[RunResult, bool], None] | None = None,
) -> list[Row]:
    """Train and score every planned run not already finished in ``out``, then write
    ``out/coverage.md`` and ``out/coverage.json`` and return the rows. ``on_run(result,
    skipped)`` is called after each run (``skipped``: it was finished before)."""
    out = Path(out)
    results = []
    for variant, data, seed in plan(variants, datasets, seeds):
        run_dir = out / f"{variant}-{data}-s{seed}"
        saved = load_result(run_dir)
        result = saved or run_one(variant, data, seed, run_dir, overrides)
        if on_run is not None:
            on_run(result, saved is not None)
        results.append(result)
    rows = summarise(results)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "coverage.md", markdown(rows))
    payload: dict[str, Any] = {
        "rows": [{**asdict(r), "goal": r.goal} for r in rows],
        "runs": [asdict(r) for r in results],
        "overrides": list(overrides),
    }
    atomic_write_json(out / "coverage.json", payload)
    return rows


def load_result(run_dir: Path) -> RunResult | None:
    """The saved score of a finished run, or None (not run, unfinished or unreadable)."""
    path = run_dir / RESULT_FILE
    try:
        result = RunResult(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return result if math.isfinite(result.hq) else None
