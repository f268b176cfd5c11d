"""Turning samples into pictures: image grids and 2-D scatter plots (of samples or codes)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genlab.data.base import DataSpec
from genlab.data.pixels import to_uint8
from genlab.io import atomic_write_bytes


def make_grid(
    images: torch.Tensor, nrow: int | None = None, pad: int = 1, pad_value: int = 0
) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> uint8 (rows*(H+pad)+pad, cols*(W+pad)+pad, C) with borders
    of ``pad_value`` (0..255; black by default); ``nrow`` images per row (default: about
    square)."""
    n, c, h, w = images.shape
    cols = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    pixels = to_uint8(images).permute(0, 2, 3, 1).cpu().numpy()  # (N, H, W, C)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), pad_value, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top : top + h, left : left + w] = pixels[i]
    return grid


def grid_png(
    images: torch.Tensor, nrow: int | None = None, min_cell: int = 32, pad_value: int = 0
) -> bytes:
    """PNG bytes of a grid; small images are enlarged (nearest) to at least ``min_cell`` px.
    A grey ``pad_value`` keeps cells apart when the images have black backgrounds."""
    grid = make_grid(images, nrow, pad_value=pad_value)
    scale = max(1, math.ceil(min_cell / images.shape[-1]))
    img = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig) -> bytes:
    """PNG bytes of a matplotlib figure, which is then closed."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    pyplot().close(fig)
    return buf.getvalue()


def scatter_png(points: torch.Tensor, spec: DataSpec, title: str = "") -> bytes:
    """PNG bytes of 2-D samples, with the true mode centres (when known) as crosses."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    pts = points.detach().float().cpu().numpy()
    ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.4, color="tab:blue", label="samples")
    centres = spec.extra.get("centres")
    if centres:
        c = np.asarray(centres)
        ax.scatter(c[:, 0], c[:, 1], marker="x", color="tab:red", s=40, label="modes")
        lim = np.abs(c).max() * 1.4
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return figure_png(fig)


def heatmap_png(rows: torch.Tensor, title: str = "") -> bytes:
    """PNG bytes of (N, I) item distributions (recommendation models), one row per sample, on a
    log10 colour scale (probabilities of popular and niche items differ by orders of magnitude),
    items sorted by their mean probability so the popularity profile reads left to right."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    values = rows.detach().double().clamp_min(1e-12).log10().cpu()
    values = values[:, values.mean(0).argsort(descending=True)].numpy()
    image = ax.imshow(values, aspect="auto", interpolation="nearest", cmap="viridis")
    fig.colorbar(image, ax=ax, label="log10 probability")
    ax.set_xlabel("items, by mean log probability")
    ax.set_ylabel("sample")
    if title:
        ax.set_title(title, fontsize=9)
    return figure_png(fig)


def save_samples(samples: torch.Tensor, spec: DataSpec, path: str | Path, title: str = "") -> Path:
    """Write samples as a grid (images), a heatmap (item distributions) or a scatter plot
    (points), atomically."""
    if spec.kind == "image":
        data = grid_png(samples)
    elif spec.kind == "interactions":
        data = heatmap_png(samples, title)
    else:
        data = scatter_png(samples, spec, title)
    atomic_write_bytes(path, data)
    return Path(path)


def code_scatter_png(
    points: torch.Tensor,
    labels: torch.Tensor | None,
    class_names: tuple[str, ...] | None = None,
    title: str = "",
) -> bytes:
    """PNG bytes of 2-D points (N, 2) (e.g. latent codes), one colour per label (N,) int64 with
    a legend of ``class_names`` (or the label numbers); one colour when ``labels`` is None."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=100)
    pts = points.detach().float().cpu().numpy()
    if labels is None:
        ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.6, color="tab:blue")
    else:
        y = labels.cpu().numpy()
        cmap = plt.get_cmap("tab10" if y.max(initial=0) < 10 else "tab20")
        for k in np.unique(y):
            name = class_names[k] if class_names and k < len(class_names) else str(k)
            sel = y == k
            ax.scatter(pts[sel, 0], pts[sel, 1], s=4, alpha=0.6, color=cmap(k % cmap.N), label=name)
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, markerscale=3)
    if title:
        ax.set_title(title, fontsize=9)
    return figure_png(fig)
