"""Turning samples into pictures: image grids and 2-D scatter plots."""

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


def make_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> uint8 (rows*(H+pad)+pad, cols*(W+pad)+pad, C) on a black
    background; ``nrow`` images per row (default: about square)."""
    n, c, h, w = images.shape
    cols = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    pixels = to_uint8(images).permute(0, 2, 3, 1).cpu().numpy()  # (N, H, W, C)
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top : top + h, left : left + w] = pixels[i]
    return grid


def grid_png(images: torch.Tensor, nrow: int | None = None, min_cell: int = 32) -> bytes:
    """PNG bytes of a grid; small images are enlarged (nearest) to at least ``min_cell`` px."""
    grid = make_grid(images, nrow)
    scale = max(1, math.ceil(min_cell / images.shape[-1]))
    img = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def scatter_png(points: torch.Tensor, spec: DataSpec, title: str = "") -> bytes:
    """PNG bytes of 2-D samples, with the true mode centres (when known) as crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def save_samples(samples: torch.Tensor, spec: DataSpec, path: str | Path, title: str = "") -> Path:
    """Write samples as a grid (images) or a scatter plot (points), atomically."""
    data = grid_png(samples) if spec.kind == "image" else scatter_png(samples, spec, title)
    atomic_write_bytes(path, data)
    return Path(path)
