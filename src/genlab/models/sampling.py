"""Turning samples into pictures: image grids and 2-D scatter plots (of samples or codes); and
the latent tools of generator models: truncation, interpolation, class grids."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genlab.core.errors import ConfigError
from genlab.core.io import atomic_write_bytes
from genlab.data.base import DataSpec
from genlab.data.pixels import to_uint8
from genlab.data.sequences import PAD, valid_mask
from genlab.models.base import evaluating, has_generator
from genlab.models.interpolation import slerp


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
    """PNG bytes of 2-D samples over the true modes (when known): each mode as a red circle of
    radius 3 sigma, the high-quality region of the ``modes`` metric, drawn under the samples so a
    captured mode shows as a filled circle and a dropped one as an empty ring."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    pts = points.detach().float().cpu().numpy()
    centres = spec.extra.get("centres")
    if centres:
        c = np.asarray(centres)
        sigma = spec.extra.get("sigma")
        if sigma:
            for x, y in c:
                ax.add_patch(plt.Circle((x, y), 3 * sigma, fill=False, color="tab:red", lw=0.8))
            ax.plot([], [], "o", mfc="none", color="tab:red", label="modes (3 sigma)")
        else:
            ax.scatter(c[:, 0], c[:, 1], marker="x", color="tab:red", s=40, label="modes")
        lim = np.abs(c).max() * 1.4
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.4, color="tab:blue", label="samples", zorder=3)
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


def tokens_png(tokens: torch.Tensor, spec: DataSpec, title: str = "", rows: int = 32) -> bytes:
    """PNG bytes of token sequences (N, L) int64 as text, one per line (``rows`` lines per
    column), words from ``spec.extra["vocab"]`` and padding dimmed; sequences the grammar of
    the ``sequences`` dataset rejects are drawn in red, and the title counts the valid ones."""
    import matplotlib
    from PIL import ImageDraw, ImageFont

    vocab, tokens = spec.extra["vocab"], tokens.detach().long().cpu()
    valid = valid_mask(tokens).tolist()
    font_file = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSansMono.ttf"
    font = ImageFont.truetype(str(font_file), 14)  # monospaced, shipped with matplotlib
    cw, lh = font.getlength("M"), 18
    cols = max(1, math.ceil(len(tokens) / rows))
    col_w = round(cw * (2 * tokens.shape[1] + 2))
    head = f"{sum(valid)}/{len(tokens)} valid (red: invalid)"
    head = f"{title}: {head}" if title else head
    width = max(cols * col_w, round(font.getlength(head))) + 16
    img = Image.new("RGB", (width, 30 + lh * min(rows, len(tokens)) + 8), "white")
    draw = ImageDraw.Draw(img)
    draw.text((8, 6), head, fill="black", font=font)
    for i, row in enumerate(tokens.tolist()):
        x, y = 8 + (i // rows) * col_w, 30 + (i % rows) * lh
        ink = (20, 20, 20) if valid[i] else (200, 30, 30)
        for t in row:
            word = vocab[t] if 0 <= t < len(vocab) else "?"
            draw.text((x, y), word, fill=(185, 185, 185) if t == PAD else ink, font=font)
            x += cw * (len(word) + 1)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def save_samples(
    samples: torch.Tensor,
    spec: DataSpec,
    path: str | Path,
    title: str = "",
    nrow: int | None = None,
) -> Path:
    """Write samples as a grid of ``nrow`` columns (images; None: about square), a heatmap
    (item distributions), text (token sequences) or a scatter plot (points), atomically."""
    if spec.kind == "image":
        data = grid_png(samples, nrow=nrow)
    elif spec.kind == "interactions":
        data = heatmap_png(samples, title)
    elif spec.kind == "sequences":
        data = tokens_png(samples, spec, title)
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


# ----------------------------------------------------------------------------- latent sampling
# Truncation, interpolation and class grids, for every model of the generator contract
# (``genlab.models.base``): they use only ``latent_dim``, ``generate`` and the conditional
# attributes (``num_classes``, ``sample_labels``). Latents are drawn on the generator's device
# (the CPU without one), so a seed gives the same pictures on every device.

MIN_TRUNCATION = 0.01  # below this nearly every normal draw would be rejected


def truncated_normal(
    n: int, dim: int, bound: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(n, dim) float32 draws of N(0, 1) restricted to [-bound, bound]: every component outside
    is drawn again until it falls inside (the truncation trick of Brock et al. 2019,
    arXiv:1809.11096), which gives exactly the truncated normal. Deterministic under
    ``generator``; ``bound`` >= 0.01 (inf: no truncation)."""
    if not bound >= MIN_TRUNCATION:  # also rejects NaN
        raise ConfigError(
            f"truncation {bound}: use a bound of at least {MIN_TRUNCATION} (smaller bounds reject "
            "nearly every draw), e.g. 0.5 to 1"
        )
    device = generator.device if generator is not None else torch.device("cpu")
    z = torch.randn(n, dim, generator=generator, device=device)
    flat = z.view(-1)
    redo = (flat.abs() > bound).nonzero().squeeze(1)
    while redo.numel():
        fresh = torch.randn(redo.numel(), generator=generator, device=device)
        flat[redo] = fresh
        redo = redo[fresh.abs() > bound]
    return z


def require_generator(model: torch.nn.Module, what: str) -> None:
    """The one-line error of a latent tool used on a model without a latent generator."""
    if not has_generator(model):
        name = getattr(getattr(model, "cfg", None), "name", type(model).__name__)
        raise ConfigError(
            f"{what} needs a model that generates from a latent (GAN, VAE, AE, AAE, VAE-GAN); "
            f"{name!r} does not"
        )


def latent_draw(
    model: torch.nn.Module, n: int, truncation: float | None, generator: torch.Generator | None
) -> torch.Tensor:
    """(n, latent_dim) latents: N(0, I), or truncated at ``truncation`` when it is set."""
    if truncation is not None:
        return truncated_normal(n, model.latent_dim, truncation, generator)
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.randn(n, model.latent_dim, generator=generator, device=device)


def resolve_labels(
    model: torch.nn.Module,
    n: int,
    labels: torch.Tensor | None,
    generator: torch.Generator | None = None,
) -> torch.Tensor | None:
    """The labels of n samples as the model's ``sample`` picks them: its ``sample_labels`` when
    it has one, else classes 0, 1, ..., K-1, 0, ... for class-conditional models."""
    pick = getattr(model, "sample_labels", None)
    if pick is not None:
        return pick(n, labels, generator)
    k = getattr(model, "num_classes", None)
    if labels is None and k:
        return torch.arange(n) % k
    return labels


def sample_truncated(
    model: torch.nn.Module,
    n: int,
    truncation: float | None,
    *,
    labels: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """n samples (what ``model.sample`` returns) from latents truncated to [-truncation,
    truncation] per component; ``truncation=None`` is ``model.sample`` itself. Lower bounds
    trade variety for typicality (Brock et al. 2019). Labels as in ``model.sample``."""
    if truncation is None:
        return model.sample(n, labels=labels, generator=generator)
    require_generator(model, "truncation")
    with evaluating(model):
        z = latent_draw(model, n, truncation, generator)
        return model.generate(z, resolve_labels(model, n, labels, generator))


def interpolation_rows(
    model: torch.nn.Module,
    rows: int,
    steps: int,
    *,
    truncation: float | None = None,
    labels: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(rows * steps, ...) samples: row r follows the spherical path (slerp; White 2016,
    arXiv:1609.04468) from one random latent to another in ``steps`` steps, t = 0 to 1, so a
    grid of ``steps`` columns shows one path per row. A conditional model keeps one label per
    row: ``labels`` (rows,) or (rows, A), default as in ``model.sample``."""
    require_generator(model, "interpolation")
    if steps < 2:
        raise ConfigError(f"interpolation steps {steps}: give at least 2 (start and end)")
    with evaluating(model):
        z = latent_draw(model, 2 * rows, truncation, generator)
        path = slerp(z[:rows], z[rows:], torch.linspace(0, 1, steps))  # (rows, steps, D)
        row_labels = resolve_labels(model, rows, labels, generator)
        per_sample = None if row_labels is None else row_labels.repeat_interleave(steps, 0)
        return model.generate(path.reshape(rows * steps, -1), per_sample)


def class_grid(
    model: torch.nn.Module,
    columns: int,
    *,
    truncation: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(K * columns, ...) samples of a class-conditional model: row k shows class k, and
    column j uses the same latent in every row, so a column shows one style across classes."""
    k = getattr(model, "num_classes", None)
    if not k:
        raise ConfigError(
            "a class grid needs a class-conditional model (cgan, or a vae with "
            "model.num_classes); this one is not"
        )
    require_generator(model, "a class grid")
    with evaluating(model):
        z = latent_draw(model, columns, truncation, generator).repeat(k, 1)
        return model.generate(z, torch.arange(k).repeat_interleave(columns))
