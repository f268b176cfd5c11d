"""The pieces of ``genlab report``: HTML helpers (every text escaped, every image a ``data:`` URI)
and one function per section. Sections take tensors, numbers and PNG bytes and return HTML; the
run is read and the model is run in ``genlab.tools.report``. ``curves_png`` is shared with
``genlab compare``.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from genlab.data.pixels import to_model
from genlab.metrics.base import format_value
from genlab.metrics.stats import memorisation_summary
from genlab.models.sampling import figure_png, grid_png, pyplot

CELL = 48  # small images are enlarged (nearest) to at least this many pixels
PAD = 80  # dark grey borders keep cells apart on black backgrounds
SMOOTH_ABOVE = 50  # curves with more points also get a running mean

# ----------------------------------------------------------------------------- HTML helpers


@dataclass
class Section:
    id: str  # the element id (the browser test looks for these)
    title: str
    body: str  # HTML, already escaped

    def html(self) -> str:
        return f'<section id="{self.id}">\n<h2>{esc(self.title)}</h2>\n{self.body}\n</section>'


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def para(text: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<p{attr}>{esc(text)}</p>"


def img(png: bytes, alt: str, cls: str = "") -> str:
    """An <img> holding the PNG itself, base64-encoded (no file, no network)."""
    data = base64.b64encode(png).decode("ascii")
    attr = f' class="{cls}"' if cls else ""
    return f'<img{attr} alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def figure(png: bytes, caption: str, cls: str = "") -> str:
    return f"<figure>{img(png, caption, cls)}<figcaption>{esc(caption)}</figcaption></figure>"


def table(header: Sequence[str], rows: Iterable[Sequence[object]], raw: bool = False) -> str:
    """A table of escaped cells; with ``raw`` the body cells are HTML already."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    head = f"<thead><tr>{head}</tr></thead>" if any(header) else ""
    cell = (lambda c: str(c)) if raw else esc
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def fmt(value: float | None, stderr: float | None = None, spread: float | None = None) -> str:
    """``format_value`` of genlab eval's table; empty for no value."""
    return "" if value is None else format_value(value, stderr, spread)


CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1180px;
  padding: 0 16px 40px; color: #222; }
h1 { font-size: 22px; margin: 18px 0 4px; } h2 { font-size: 18px; margin: 0 0 8px; }
h3 { font-size: 14px; margin: 12px 0 4px; }
nav a { margin-right: 12px; }
section { border-top: 1px solid #ccc; padding: 14px 0 6px; }
table { border-collapse: collapse; margin: 4px 0 10px; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: left; vertical-align: middle; }
th { background: #f3f3f3; }
figure { display: inline-block; margin: 4px 10px 8px 0; vertical-align: top; }
figcaption { font-size: 12px; color: #555; }
img { max-width: 100%; }
img.px { image-rendering: pixelated; }
.strip figure img { width: 200px; }
.newest figure { display: block; }
.newest img { width: 480px; }
.cols { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.cols table { font-size: 12px; }
.key { font-weight: 600; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 12px; }
"""

# No script, no fetch: images only from data: URIs, styles only inline.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def page(title: str, sections: list[Section]) -> str:
    nav = "".join(f'<a href="#{s.id}">{esc(s.title)}</a>' for s in sections)
    body = "\n".join(s.html() for s in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n<nav>{nav}</nav>\n{body}\n</body>\n</html>\n"
    )


# ----------------------------------------------------------------------------- curves


Series = tuple[list[int], list[float]]  # steps, values (nan where a value was not finite)


def running_mean(values: Sequence[float], window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each point (fewer at the start); nan ignored."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    sums = np.concatenate([[0.0], np.cumsum(np.where(ok, v, 0.0))])
    counts = np.concatenate([[0], np.cumsum(ok)])
    lo = np.maximum(np.arange(1, len(v) + 1) - window, 0)
    hi = np.arange(1, len(v) + 1)
    n = counts[hi] - counts[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (sums[hi] - sums[lo]) / np.maximum(n, 1), np.nan)


def curves_png(panels: dict[str, dict[str, Series]], marks: dict | None = None) -> bytes:
    """PNG of one small panel per metric (at most 3 a row), one line per series in it (a run, a
    system). Curves of more than ``SMOOTH_ABOVE`` points are drawn faint with a running mean
    over 1/25 of their length on top. ``marks[panel][line]`` adds single points (step, value)
    as markers, e.g. results of ``genlab eval``."""
    plt = pyplot()
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows), dpi=100, squeeze=False)
    colours = plt.get_cmap("tab10")
    marks = marks or {}
    labels = sorted(
        {line for group in (panels, marks) for lines in group.values() for line in lines}
    )
    for ax, (name, lines) in zip(axes.flat, panels.items(), strict=False):
        for label, (steps, values) in lines.items():
            colour = colours(labels.index(label) % 10)
            long = len(steps) > SMOOTH_ABOVE
            ax.plot(steps, values, lw=1, color=colour, alpha=0.3 if long else 1, label=label)
            if long:
                ax.plot(steps, running_mean(values, max(2, len(steps) // 25)), lw=1.5, color=colour)
        for label, points in marks.get(name, {}).items():
            colour = colours(labels.index(label) % 10)
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, "D", ms=5, color=colour, label=f"{label} (genlab eval)")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if len(labels) > 1 or marks.get(name):
            ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    return figure_png(fig)


def curves_section(losses: dict[str, Series], evals: dict[str, dict[str, Series]]) -> Section:
    """Training losses in one figure, ``eval/*`` quality metrics (one panel per metric, one line
    per system) in another."""
    body = []
    if losses:
        panels = {name: {"train": series} for name, series in losses.items()}
        body.append(figure(curves_png(panels), "training losses (RUN/metrics.jsonl)"))
    else:
        body.append(para("No training losses were logged."))
    if evals:
        body.append(figure(curves_png(evals), "quality metrics during training (eval/*)"))
    else:
        body.append(
            para(
                "No quality metrics were logged during training (train.eval_every was off); "
                "losses alone may not show whether samples improve (a GAN's seldom do)."
            )
        )
    return Section("curves", "Training curves", "\n".join(body))


# ----------------------------------------------------------------------------- samples


def pick_steps(steps: Sequence[int], k: int = 8) -> list[int]:
    """Up to ``k`` steps evenly spaced over the sorted ``steps`` (first included) and the newest
    step, in ascending order."""
    steps = sorted(set(steps))
    if len(steps) <= k + 1:
        return steps
    older = steps[:-1]
    index = np.unique(np.round(np.linspace(0, len(older) - 1, k)).astype(int))
    return [older[i] for i in index] + [steps[-1]]


def samples_section(grids: dict[int, bytes], total: int, pixels: bool) -> Section:
    """The newest fixed-noise grid large, the earlier picked ones as a strip; ``pixels``: they
    are image grids, enlarged without smoothing (plots are not)."""
    steps, cls = sorted(grids), "px" if pixels else ""
    newest = steps[-1]
    body = [
        para(
            f"Fixed-noise samples written during training (RUN/samples): {total} grids; "
            f"{len(steps)} shown, the same noise at every step."
        ),
        '<div class="newest">' + figure(grids[newest], f"step {newest} (newest)", cls) + "</div>",
    ]
    if len(steps) > 1:
        strip = "".join(figure(grids[s], f"step {s}", cls) for s in steps[:-1])
        body.append(f'<div class="strip">{strip}</div>')
    return Section("samples", "Samples over training", "\n".join(body))


# ----------------------------------------------------------------------------- evaluations


def eval_section(rows: list[dict]) -> Section:
    """The newest result of each (metric, system, split) in RUN/eval.json."""
    if not rows:
        body = para(
            "No genlab eval results yet (RUN/eval.json). Run `genlab eval RUN --metrics ...`; "
            "`genlab list` names the metrics."
        )
        return Section("evaluations", "Evaluations", body)
    header = ("metric", "system", "value ± stderr (sd)", "unit", "n", "note", "step", "split")
    cells = [
        (
            r["name"],
            r.get("system", "model"),
            fmt(r["value"], r.get("stderr"), r.get("spread")),
            r.get("unit", ""),
            "" if r.get("n") is None else r["n"],
            r.get("note", ""),
            r["step"],
            r["split"],
        )
        for r in rows
    ]
    text = para("The newest result of each metric from genlab eval (RUN/eval.json).")
    return Section("evaluations", "Evaluations", text + table(header, cells))


# ----------------------------------------------------------------------------- model pictures


def latent_section(recon: torch.Tensor, n_recon: int, interp: torch.Tensor, cols: int) -> Section:
    """Reconstructions (rows: inputs, reconstructions) and interpolation strips (one pair a
    row), images (N, C, H, W) in [-1, 1]."""
    recon_png = grid_png(recon, nrow=n_recon, min_cell=CELL, pad_value=PAD)
    interp_png = grid_png(interp, nrow=cols, min_cell=CELL, pad_value=PAD)
    body = [
        figure(recon_png, f"{n_recon} test images (top) and their reconstructions", "px"),
        figure(
            interp_png,
            f"linear interpolation between the codes of pairs of test images, {cols - 2} steps",
            "px",
        ),
    ]
    return Section("latent", "Reconstructions and interpolations", "\n".join(body))


def scatter_section(png: bytes, n: int) -> Section:
    caption = f"{n} samples of the newest checkpoint over the true mode centres"
    return Section("scatter", "Samples over the true modes", figure(png, caption))


def single_png(image: torch.Tensor) -> bytes:
    """One image (C, H, W) in [-1, 1] as an enlarged PNG."""
    return grid_png(image[None], nrow=1, min_cell=CELL, pad_value=PAD)


# ----------------------------------------------------------------------------- nearest neighbours


def nearest_neighbours(
    queries: torch.Tensor, reference: torch.Tensor, budget: int = 1 << 24
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each query's nearest reference row: queries (Q, D), reference (N, D), any real dtype ->
    (index (Q,) int64, Euclidean distance (Q,) float64). Squared distances |q|² + |r|² - 2 q·r
    are formed in float64 over chunks of about ``budget`` reference numbers (memory O(Q *
    chunk), the reference may stay uint8); the winner's distance is then recomputed as |q - r|,
    so an exact copy reads 0, not the expansion's rounding noise."""
    q = queries.double()
    q_sq = (q * q).sum(1)
    best = torch.full((len(q),), math.inf, dtype=torch.float64)
    index = torch.zeros(len(q), dtype=torch.int64)
    chunk = max(1, budget // max(1, q.shape[1]))
    for start in range(0, len(reference), chunk):
        r = reference[start : start + chunk].double()
        d_sq = q_sq[:, None] + (r * r).sum(1)[None, :] - 2 * q @ r.T  # (Q, chunk)
        low, arg = d_sq.min(1)
        better = low < best
        best = torch.where(better, low, best)
        index = torch.where(better, arg + start, index)
    distance = (q - reference[index].double()).norm(dim=1)
    return index, distance


@dataclass
class Neighbours:
    """Queries (Q, C, H, W) uint8, the index of each one's nearest training image and the
    root-mean-square pixel difference to it, pixels on [0, 1] (0 = identical)."""

    queries: torch.Tensor
    index: torch.Tensor
    distance: torch.Tensor


def pixel_neighbours(queries: torch.Tensor, train: torch.Tensor) -> Neighbours:
    """Nearest training images in pixel space of uint8 (Q, C, H, W) queries; train uint8."""
    index, dist = nearest_neighbours(queries.flatten(1), train.flatten(1))
    rms = dist / 255 / math.sqrt(queries[0].numel())
    return Neighbours(queries, index, rms)


def neighbour_table(found: Neighbours, train: torch.Tensor, what: str, k: int = 8) -> str:
    """The ``k`` queries nearest the training set, their neighbours and the distances."""
    order = found.distance.argsort()[:k]
    pic = lambda x: img(single_png(x), what, "px")  # noqa: E731
    rows = [
        (what, *(pic(to_model(found.queries[i])) for i in order)),
        ("nearest training image", *(pic(to_model(train[found.index[i]])) for i in order)),
        ("distance", *(esc(f"{found.distance[i].item():.3f}") for i in order)),
    ]
    return table([], [(esc(r[0]), *r[1:]) for r in rows], raw=True)


def nearest_section(generated: Neighbours, test: Neighbours, train: torch.Tensor) -> Section:
    """Generated samples beside their nearest training images, with held-out test images as the
    reference: a model that copies its training set puts its samples nearer to it than new
    real images are."""
    got = memorisation_summary(generated.distance, test.distance, 0.05)
    cut, share = got["threshold"], got["close"]
    g_med, t_med = got["gen_median"], got["test_median"]
    text = [
        para(
            f"Distance: root-mean-square pixel difference on [0, 1] (0 = identical) to the "
            f"nearest of {len(train)} training images, in pixel space. Median over "
            f"{len(generated.distance)} generated samples: {g_med:.3f}; over "
            f"{len(test.distance)} test images: {t_med:.3f}."
        ),
        para(
            f"{100 * share:.1f}% of the generated samples are nearer to a training image than "
            f"95% of test images are (distance below {cut:.3f}). Samples as far from the "
            "training set as new images would give about 5%; far more means samples sit "
            "unusually close to training images, as copies do.",
            "key",
        ),
        "<h3>Generated samples nearest to the training set</h3>",
        neighbour_table(generated, train, "generated"),
        "<h3>Reference: test images nearest to the training set</h3>",
        neighbour_table(test, train, "test image"),
    ]
    return Section("nearest", "Nearest training images (memorisation check)", "\n".join(text))
