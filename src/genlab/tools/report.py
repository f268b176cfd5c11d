"""``genlab report RUN``: one self-contained HTML page about a run.

The page holds the run's config and size, the fixed-noise sample grids over training, the loss
and quality curves of ``metrics.jsonl``, the newest ``genlab eval`` results, and what the newest
checkpoint does: reconstructions and interpolations (models with an encoder), samples over the
true modes (2-D data) and a nearest-neighbour check against the training images (image data).
Every image is a ``data:`` URI, the CSS is inline, no script runs and nothing is fetched (a
Content-Security-Policy forbids it), and every piece of text is HTML-escaped. A run with no
checkpoint, metrics or samples yet is an error; one with only some of them gets a page that
names what is missing.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genlab import api
from genlab.core.config import RunConfig
from genlab.core.errors import CheckpointError, ConfigError, GenlabError
from genlab.core.io import atomic_write_text
from genlab.core.version import __version__
from genlab.data import load_data
from genlab.data.base import DataSpec, Split
from genlab.data.pixels import to_uint8
from genlab.models.base import GenerativeModel, evaluating, has_encoder
from genlab.models.sampling import scatter_png
from genlab.tools import latent
from genlab.tools.report_sections import (
    Section,
    Series,
    curves_section,
    esc,
    eval_section,
    latent_section,
    nearest_section,
    page,
    para,
    pick_steps,
    pixel_neighbours,
    samples_section,
    scatter_section,
    table,
)
from genlab.training import checkpoint as ckpt
from genlab.training.rundir import read_run_config

SAMPLE_FILE = re.compile(r"^step_(\d+)\.png$")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NEIGHBOUR_QUERIES = 256  # generated samples (and test images) checked against the training set
SCATTER_POINTS = 2000
RECON_IMAGES, INTERP_PAIRS, INTERP_STEPS = 8, 4, 8

# ----------------------------------------------------------------------------- reading a run


@dataclass
class RunFiles:
    """What a run directory holds, read without loading the model."""

    run_dir: Path
    record: dict  # config.json as written (genlab_version, data_spec included)
    cfg: RunConfig
    spec: DataSpec
    checkpoints: list[int]  # steps of the checkpoints on disk, ascending
    latest: int | None  # the step LATEST names
    metrics: list[dict[str, float]]  # metrics.jsonl rows, numbers only ("nan" read as nan)
    skipped: int  # metrics.jsonl lines that could not be read (e.g. cut by a kill)
    samples: dict[int, Path]  # step -> samples/step_N.png
    evals: list[dict]  # eval.json, oldest first
    problems: list[str] = field(default_factory=list)


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):  # the logger writes non-finite values as "nan", "inf"
        try:
            return float(value)
        except ValueError:
            return None
    return None


def read_metrics(path: Path) -> tuple[list[dict[str, float]], int]:
    """(rows of metrics.jsonl with their numeric values, count of unreadable lines); a missing
    file gives no rows. ``row["step"]`` is an int."""
    rows, skipped = [], 0
    lines = path.read_text().splitlines() if path.is_file() else []
    for line in filter(str.strip, lines):
        try:
            raw = json.loads(line)
        except json.JSONDecodeError:
            skipped += 1
            continue
        if not isinstance(raw, dict) or not isinstance(raw.get("step"), int):
            skipped += 1
            continue
        row = {k: v for k, v in ((k, _number(v)) for k, v in raw.items()) if v is not None}
        row["step"] = raw["step"]
        rows.append(row)
    return rows, skipped


def read_evals(path: Path) -> tuple[list[dict], str | None]:
    """(the evaluations of eval.json, a problem to report or None)."""
    if not path.is_file():
        return [], None
    try:
        history = json.loads(path.read_text())
        if isinstance(history, list) and all(isinstance(e, dict) for e in history):
            return history, None
    except json.JSONDecodeError:
        pass
    return [], f"{path} is damaged and was not read"


def latest_eval_rows(history: list[dict]) -> list[dict]:
    """The newest result of each (metric, system, split), each with its evaluation's step and
    split, in the order the metrics first appeared."""
    newest: dict[tuple, dict] = {}
    for entry in history:
        for r in entry.get("results", []):
            if not isinstance(r, dict) or _number(r.get("value")) is None or "name" not in r:
                continue
            key = (r["name"], r.get("system", "model"), entry.get("split", "test"))
            newest[key] = {**r, "step": entry.get("step", ""), "split": key[2]}
    return list(newest.values())


def read_run(run_dir: str | Path) -> RunFiles:
    """Everything of RUN the report reads; a missing or damaged config.json is an error."""
    run_dir = Path(run_dir)
    cfg, spec = read_run_config(run_dir)
    record = json.loads((run_dir / "config.json").read_text())
    root = run_dir / "checkpoints"
    latest = ckpt.latest_checkpoint(root)
    metrics, skipped = read_metrics(run_dir / "metrics.jsonl")
    evals, problem = read_evals(run_dir / "eval.json")
    folder = run_dir / "samples"
    files = folder.iterdir() if folder.is_dir() else ()
    samples = {int(m[1]): p for p in files if (m := SAMPLE_FILE.match(p.name)) and p.is_file()}
    run = RunFiles(
        run_dir,
        record,
        cfg,
        spec,
        sorted(ckpt.checkpoint_step(p) for p in ckpt.list_checkpoints(root)),
        None if latest is None else ckpt.checkpoint_step(latest),
        metrics,
        skipped,
        samples,
        evals,
    )
    if problem:
        run.problems.append(problem)
    if skipped:
        run.problems.append(f"{skipped} unreadable line(s) of metrics.jsonl were skipped")
    return run


def curve_series(rows: list[dict[str, float]]) -> tuple[dict[str, Series], dict]:
    """(losses {name: (steps, values)}, quality metrics {NAME: {system: (steps, values)}}) of
    metrics.jsonl rows; ``eval/NAME`` is the model's, ``eval/SYSTEM/NAME`` a baseline's."""
    losses: dict[str, Series] = {}
    evals: dict[str, dict[str, Series]] = {}
    for row in rows:
        for key, value in row.items():
            if key in ("step", "images_per_s"):
                continue
            if key.startswith("eval/"):
                system, _, name = key[5:].rpartition("/")
                series = evals.setdefault(name, {}).setdefault(system or "model", ([], []))
            else:
                series = losses.setdefault(key, ([], []))
            series[0].append(int(row["step"]))
            series[1].append(value)
    return losses, evals


# ----------------------------------------------------------------------------- building the page


@dataclass
class Report:
    html: str
    sections: list[str]  # the ids of the sections, in order
    missing: list[str]  # sentences: what is not shown and why


def build_report(
    run_dir: str | Path, *, step: int | None = None, seed: int = 0, device: str = "cpu"
) -> Report:
    """The report of RUN; the model sections use checkpoint ``step`` (default: the newest) and
    draw every random choice from ``seed``."""
    run = read_run(run_dir)
    if run.latest is None and not run.metrics and not run.samples:
        raise CheckpointError(
            f"{run_dir} has no checkpoint, metrics or samples yet, so there is nothing to "
            f"report; train it first (genlab train --resume {run_dir})"
        )
    missing = list(run.problems)
    model = None
    if run.latest is None and step is None:
        missing.append(
            "the run has no checkpoint yet: reconstructions, samples of the model and the "
            "nearest-neighbour check need one"
        )
    else:
        model = api.load(run_dir, step=step, device=device)
        step = run.latest if step is None else step
    sections = [config_section(run)]
    sections.append(_samples(run, missing))
    sections.append(curves_section(*curve_series(run.metrics)))
    sections.append(eval_section(latest_eval_rows(run.evals)))
    if model is not None:
        sections += model_sections(run, model, seed, missing)
    sections.insert(0, overview_section(run, model, step, seed))
    if missing:
        items = "".join(f"<li>{esc(m)}</li>" for m in missing)
        sections.append(Section("not-shown", "Not shown", f"<ul>{items}</ul>"))
    title = f"genlab report: {run.run_dir.name} ({run.cfg.model.name} on {run.cfg.data.name})"
    return Report(page(title, sections), [s.id for s in sections], missing)


def write_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    step: int | None = None,
    seed: int = 0,
    device: str = "cpu",
) -> tuple[Path, Report]:
    """Build the report and write it atomically to ``out`` (default RUN/report.html)."""
    path = Path(out) if out is not None else Path(run_dir) / "report.html"
    if path.is_dir():
        raise ConfigError(f"--out {path} is a directory; give a file name such as report.html")
    report = build_report(run_dir, step=step, seed=seed, device=device)
    atomic_write_text(path, report.html)
    return path, report


def _samples(run: RunFiles, missing: list[str]) -> Section:
    grids = {}
    for s in pick_steps(list(run.samples)):
        data = run.samples[s].read_bytes()
        if data.startswith(PNG_SIGNATURE):
            grids[s] = data
        else:
            missing.append(f"{run.samples[s]} is not a PNG file")
    if not grids:
        body = para("The run has written no sample grids yet (RUN/samples/step_N.png).")
        return Section("samples", "Samples over training", body)
    return samples_section(grids, len(run.samples), run.spec.kind == "image")


def model_sections(
    run: RunFiles, model: GenerativeModel, seed: int, missing: list[str]
) -> list[Section]:
    """The sections that run the model: what applies to the kind of data."""
    kind, name = run.spec.kind, run.cfg.model.name
    if kind == "points":
        with evaluating(model):
            points = model.sample(SCATTER_POINTS, generator=torch.Generator().manual_seed(seed))
        png = scatter_png(points.cpu(), run.spec, f"{SCATTER_POINTS} samples, seed {seed}")
        missing.append(
            "the nearest-neighbour check: training points fill their space densely, so "
            "distances to them say nothing about copying"
        )
        return [scatter_section(png, SCATTER_POINTS)]
    if kind != "image":
        missing.append(
            f"this run's data are {kind} of shape {tuple(run.spec.shape)}, which the report "
            "cannot picture: reconstructions, interpolations and the nearest-neighbour check "
            "are for images; the curves, sample files and evaluations above are shown"
        )
        return []
    try:
        data = load_data(run.cfg.data)
    except GenlabError as err:
        missing.append(f"the training data could not be loaded ({err}): no model pictures")
        return []
    if tuple(data.spec.shape) != tuple(run.spec.shape):
        shapes = f"{tuple(data.spec.shape)}, the run was trained on {tuple(run.spec.shape)}"
        missing.append(f"the data now gives images of shape {shapes}: no model pictures")
        return []
    out = []
    if not has_encoder(model):
        missing.append(f"reconstructions and interpolations: {name} has no encoder")
    elif len(data.test) < 2:
        missing.append("reconstructions and interpolations: the test split has < 2 images")
    else:
        out.append(_latent(model, data.test, seed))
    out.append(_nearest(model, data.train, data.test, seed))
    return out


def _latent(model: GenerativeModel, test: Split, seed: int) -> Section:
    gen = torch.Generator().manual_seed(seed)
    labels = lambda i: None if test.y is None else test.y[i]  # noqa: E731
    idx = latent.pick(len(test), RECON_IMAGES, gen)
    recon = latent.reconstruction_grid(model, test.x[idx], labels(idx))
    pairs = torch.stack([latent.pick(len(test), 2, gen) for _ in range(INTERP_PAIRS)])
    a, b = pairs[:, 0], pairs[:, 1]
    ends = None if test.y is None else (test.y[a], test.y[b])
    strip = latent.interpolation_strip(model, test.x[a], test.x[b], INTERP_STEPS, "linear", ends)
    return latent_section(recon, len(idx), strip, INTERP_STEPS + 2)


def _nearest(model: GenerativeModel, train: Split, test: Split, seed: int) -> Section:
    gen = torch.Generator().manual_seed(seed + 1)
    with evaluating(model):
        samples = model.sample(NEIGHBOUR_QUERIES, generator=gen).cpu()
    held_out = test.x[latent.pick(len(test), NEIGHBOUR_QUERIES, gen)]
    generated = pixel_neighbours(to_uint8(samples), train.x)
    reference = pixel_neighbours(held_out, train.x)
    return nearest_section(generated, reference, train.x)


# ----------------------------------------------------------------------------- overview, page


def overview_section(
    run: RunFiles, model: GenerativeModel | None, step: int | None, seed: int
) -> Section:
    cfg, last = run.cfg, run.metrics[-1]["step"] if run.metrics else None
    trained = "no checkpoint yet" if run.latest is None else f"step {run.latest}"
    finished = run.latest is not None and run.latest >= cfg.train.steps
    rates = [r["images_per_s"] for r in run.metrics if "images_per_s" in r]
    rows = [
        ("run", str(run.run_dir)),
        ("model", cfg.model.name),
        ("data", f"{cfg.data.name}: {run.spec.kind}, shape {tuple(run.spec.shape)}"),
        ("trained", f"{trained} of {cfg.train.steps} ({'finished' if finished else 'unfinished'})"),
        ("checkpoints on disk", ", ".join(map(str, run.checkpoints)) or "none"),
        ("logged", f"{len(run.metrics)} lines of metrics.jsonl, last at step {last}"),
        ("genlab version", f"{run.record.get('genlab_version', '?')} (report: {__version__})"),
    ]
    if rates:
        rows.append(("training speed", f"median {statistics.median(rates):.4g} images/s"))
    if model is not None:
        params = sum(p.numel() for p in model.parameters())
        rows.append(("parameters", f"{params:,}"))
        rows.append(("model pictures from", f"checkpoint step {step}, seed {seed}"))
    rows.append(("report written", time.strftime("%Y-%m-%d %H:%M:%S")))
    return Section("overview", "Overview", table((), rows))


def config_section(run: RunFiles) -> Section:
    """The model, data and train sections side by side; config.json in full below."""
    tables = []
    for part in ("model", "data", "train"):
        values = run.record.get(part) or {}
        rows = [(k, json.dumps(v)) for k, v in values.items()]
        tables.append(f"<div><h3>{esc(part)}</h3>{table(('key', 'value'), rows)}</div>")
    full = json.dumps(run.record, indent=2)
    body = (
        f'<div class="cols">{"".join(tables)}</div>'
        + para(f"seed {run.record.get('seed')}, device {run.record.get('device')}")
        + f"<details><summary>config.json</summary><pre>{esc(full)}</pre></details>"
    )
    return Section("config", "Config", body)
