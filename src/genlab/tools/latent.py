"""Latent-space tools for every model with an encoder: reconstructions, interpolation (linear and
spherical), attribute vectors, traversals of each code dimension and 2-D maps of the codes.

They use only the encoder contract of ``genlab.models.base`` (``code_dim``, ``encode``,
``decode``, ``reconstruct``), so they work for any such model. Class-conditional models
(``cfg.num_classes`` set) are given the images' labels; others are not. Images are float
(B, C, H, W) in [-1, 1] (``uint8`` inputs are converted); codes are (B, code_dim) float32 on the
CPU. Every random choice takes an explicit ``torch.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from genlab.core.errors import ConfigError, DataError
from genlab.data.base import DataSpec, Split
from genlab.data.pixels import to_model
from genlab.models.base import evaluating
from genlab.models.interpolation import INTERPOLATIONS, lerp, slerp  # noqa: F401

BATCH = 256  # images per encode / decode call
# A pixel is foreground above a quarter of full brightness (-0.5 in [-1, 1]): decodings of a
# VAE are blurred, so their shapes seldom reach mid-grey, but their background stays near black.
AREA_THRESHOLD = -0.5

# ----------------------------------------------------------------------------- encode / decode


def is_conditional(model: nn.Module) -> bool:
    """True for class-conditional models: they take labels in encode / decode."""
    return getattr(getattr(model, "cfg", None), "num_classes", None) is not None


def _label_kw(model: nn.Module, labels: Tensor | None, device: torch.device) -> dict:
    if not is_conditional(model):
        return {}
    if labels is None:
        raise ConfigError("this model is class-conditional and the images have no labels")
    return {"labels": labels.to(device)}


def _device(model: nn.Module) -> torch.device:
    tensors = [*model.parameters(), *model.buffers()]
    return tensors[0].device if tensors else torch.device("cpu")


def encode(model: nn.Module, images: Tensor, labels: Tensor | None = None) -> Tensor:
    """Codes (N, code_dim) float32 on the CPU of images (N, C, H, W), uint8 or float in [-1, 1]."""
    dev, out = _device(model), []
    with evaluating(model):
        for i in range(0, len(images), BATCH):
            x = images[i : i + BATCH].to(dev)
            x = to_model(x) if x.dtype == torch.uint8 else x
            y = None if labels is None else labels[i : i + BATCH]
            out.append(model.encode(x, **_label_kw(model, y, dev)).float().cpu())
    return torch.cat(out)


def decode(model: nn.Module, codes: Tensor, labels: Tensor | None = None) -> Tensor:
    """Images (N, C, H, W) in [-1, 1] on the CPU of codes (N, code_dim)."""
    dev, out = _device(model), []
    with evaluating(model):
        for i in range(0, len(codes), BATCH):
            y = None if labels is None else labels[i : i + BATCH]
            z = codes[i : i + BATCH].to(dev)
            out.append(model.decode(z, **_label_kw(model, y, dev)).float().cpu())
    return torch.cat(out)


def reconstruction_grid(model: nn.Module, images: Tensor, labels: Tensor | None = None) -> Tensor:
    """(2N, C, H, W) in [-1, 1]: the N inputs, then their N reconstructions (one row each in a
    grid of N columns)."""
    dev, out = _device(model), []
    x = to_model(images) if images.dtype == torch.uint8 else images.float()
    with evaluating(model):
        for i in range(0, len(x), BATCH):
            y = None if labels is None else labels[i : i + BATCH]
            kw = _label_kw(model, y, dev)
            out.append(model.reconstruct(x[i : i + BATCH].to(dev), **kw).float().cpu())
    return torch.cat([x, *out])


def pick(n_total: int, n: int, generator: torch.Generator) -> Tensor:
    """min(n, n_total) distinct indices (int64) drawn without replacement."""
    return torch.randperm(n_total, generator=generator)[:n]


def interpolation_strip(
    model: nn.Module,
    start: Tensor,
    end: Tensor,
    steps: int = 8,
    mode: str = "linear",
    labels: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Rows of P pairs, each: the start image, ``steps`` decodings of codes interpolated from
    start to end (t = 0..1), the end image. start, end (P, C, H, W) -> (P * (steps + 2), C, H, W)
    in [-1, 1], for a grid of steps + 2 columns. Conditional models decode each step with the
    label of the nearer endpoint."""
    if mode not in INTERPOLATIONS:
        raise ConfigError(f"interpolation mode {mode!r}: choose from {', '.join(INTERPOLATIONS)}")
    if steps < 2:
        raise ConfigError(f"--steps {steps}: give at least 2 interpolation steps")
    la, lb = labels if labels is not None else (None, None)
    za, zb = encode(model, start, la), encode(model, end, lb)
    t = torch.linspace(0, 1, steps)
    codes = INTERPOLATIONS[mode](za, zb, t)  # (P, steps, D)
    step_labels = None
    if la is not None and lb is not None:
        step_labels = torch.where(t[None, :] < 0.5, la[:, None], lb[:, None]).reshape(-1)
    mids = decode(model, codes.reshape(-1, codes.shape[-1]), step_labels)
    mids = mids.view(len(za), steps, *mids.shape[1:])
    as_float = lambda x: to_model(x) if x.dtype == torch.uint8 else x.float()  # noqa: E731
    strip = torch.cat([as_float(start)[:, None], mids, as_float(end)[:, None]], dim=1)
    return strip.reshape(-1, *strip.shape[2:])


# ----------------------------------------------------------------------------- attributes


def attribute_choices(spec: DataSpec) -> list[str]:
    """Names ``--attr`` accepts: binary attributes, then class names (a class vs the rest)."""
    return [*(spec.attr_names or ()), *(spec.class_names or ())]


def attribute_mask(split: Split, spec: DataSpec, name: str) -> Tensor:
    """(N,) bool: which images of ``split`` have the attribute ``name``, a binary attribute of
    ``spec.attr_names``, a class name of ``spec.class_names`` or a class index."""
    if spec.attr_names and name in spec.attr_names and split.attrs is not None:
        return split.attrs[:, spec.attr_names.index(name)].bool()
    classes = spec.class_names or ()
    index = classes.index(name) if name in classes else None
    if index is None and name.isdigit() and spec.num_classes and int(name) < spec.num_classes:
        index = int(name)
    if index is not None and split.y is not None:
        return split.y == index
    valid = ", ".join(attribute_choices(spec)) or "none (the dataset has no labels or attributes)"
    raise ConfigError(f"unknown attribute {name!r}; valid: {valid}")


def attribute_vector(codes: Tensor, mask: Tensor) -> Tensor:
    """(D,): the mean code of the images with the attribute minus the mean of those without
    (White 2016, arXiv:1609.04468; Larsen et al. 2016, arXiv:1512.09300). codes (N, D)."""
    if mask.all() or not mask.any():
        side = "without" if mask.all() else "with"
        raise DataError(
            f"none of the {len(mask)} images is {side} the attribute, so its vector is "
            "undefined; choose another attribute"
        )
    return codes[mask].mean(0) - codes[~mask].mean(0)


def foreground_area(images: Tensor, threshold: float = AREA_THRESHOLD) -> Tensor:
    """(B,) float: pixels whose brightest channel exceeds ``threshold`` in images (B, C, H, W)
    in [-1, 1] (-1 = black, 0 = mid-grey): the area of a light shape on a dark background."""
    return (images.amax(dim=1) > threshold).flatten(1).sum(1).float()


@dataclass
class AttributeEdit:
    """What ``attribute_edit`` did: images (n, C, H, W) in [-1, 1] and areas (n,) in pixels."""

    vector: Tensor  # (D,)
    inputs: Tensor  # the images edited
    before: Tensor  # decoded codes
    after: Tensor  # decoded codes + strength * vector
    area_before: Tensor
    area_after: Tensor

    def grid(self) -> Tensor:
        """(3n, C, H, W): rows inputs, reconstructions, edited, for a grid of n columns."""
        return torch.cat([self.inputs, self.before, self.after])


def attribute_edit(
    model: nn.Module,
    source: Tensor,
    mask: Tensor,
    targets: Tensor,
    strength: float = 1.5,
    *,
    source_labels: Tensor | None = None,
    target_labels: Tensor | None = None,
    threshold: float = AREA_THRESHOLD,
) -> AttributeEdit:
    """Add ``strength`` times the attribute vector of ``source`` images (N, C, H, W) with
    ``mask`` (N,) bool to the codes of ``targets`` (n, C, H, W), decode, and measure the
    foreground area (``foreground_area``) of the decodings before and after."""
    vector = attribute_vector(encode(model, source, source_labels), mask)
    codes = encode(model, targets, target_labels)
    before = decode(model, codes, target_labels)
    after = decode(model, codes + strength * vector, target_labels)
    inputs = to_model(targets) if targets.dtype == torch.uint8 else targets.float()
    return AttributeEdit(
        vector,
        inputs,
        before,
        after,
        foreground_area(before, threshold),
        foreground_area(after, threshold),
    )


# ----------------------------------------------------------------------------- traversal, maps


def traversal(
    model: nn.Module,
    codes: Tensor,
    base: Tensor,
    steps: int = 9,
    max_dims: int = 10,
    label: Tensor | None = None,
) -> tuple[Tensor, list[int]]:
    """Vary one code dimension at a time about ``base`` (D,): ``steps`` values evenly spanning
    the 5th..95th percentile of that dimension over ``codes`` (N, D), the others held. Of more
    than ``max_dims`` dimensions the ones with the widest such span are shown (in index order).
    Returns (images (dims * steps, C, H, W) in [-1, 1], one row per dim; the dims shown)."""
    lo, hi = torch.quantile(codes.double(), torch.tensor([0.05, 0.95]).double(), dim=0).float()
    span = hi - lo
    dims = sorted(span.argsort(descending=True, stable=True)[:max_dims].tolist())
    grid = base.repeat(len(dims), steps, 1)  # (dims, steps, D)
    frac = torch.linspace(0, 1, steps)
    for row, d in enumerate(dims):
        grid[row, :, d] = lo[d] + frac * span[d]
    labels = None if label is None else label.reshape(1).expand(len(dims) * steps)
    return decode(model, grid.reshape(-1, codes.shape[1]), labels), dims


def pca(codes: Tensor, k: int = 2) -> tuple[Tensor, Tensor, Tensor]:
    """Principal components by an SVD of the centred codes (N, D): (projections (N, k),
    components (k, D) orthonormal rows, explained variance ratio (k,)). Signs are arbitrary."""
    x = codes.double() - codes.double().mean(0)
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    var = s**2
    ratio = var[:k] / var.sum().clamp_min(1e-300)
    return (x @ vh[:k].T).float(), vh[:k].float(), ratio.float()


def map_2d(codes: Tensor) -> tuple[Tensor, str]:
    """(N, 2) points to draw for codes (N, D) and a note for the title: the codes themselves for
    D = 2, the first two principal components for D > 2, (z, 0) for D = 1."""
    d = codes.shape[1]
    if d == 2:
        return codes.float(), "2-D codes"
    if d == 1:
        return torch.cat([codes.float(), torch.zeros_like(codes.float())], 1), "1-D codes"
    points, _, ratio = pca(codes)
    share = 100 * ratio.sum().item()
    return points, f"PCA of {d}-D codes: 2 components, {share:.0f}% of variance"
