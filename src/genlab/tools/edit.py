"""Controllable generation with an attribute classifier: the latents z of a frozen generator G
are moved by gradient steps so that a classifier's logit for one attribute of G(z) rises or
falls, and the classifier then measures what changed (docs/control.md).

This is activation maximisation through a generator (Nguyen et al. 2016, arXiv:1605.09304),
used as in the identity-preserving edits of Engel et al. 2018 (arXiv:1711.05772): a small move
of each latent until an attribute holds. Here the attribute classifier reads images (genlab's
domain classifier, ``genlab.metrics.classifier``), not latents, and plausibility under the
prior is kept by a projection instead of a learned realism critic:

- ``amount`` A is the target change of the attribute's logit: a sample whose logit starts at
  l0 is moved until its logit reaches l0 + A (A > 0: at least; A < 0: at most), then stops;
- a step moves z by ``step_size`` (L2 norm in latent space) along the normalised gradient of
  the logit, projected on the tangent of the sphere |z| = |z0|, and is then pulled back onto
  that sphere. N(0, I) has the same density everywhere on a sphere about 0, so an edited latent
  is exactly as likely under the prior as the one it started from.

The logit of a class k of a softmax classifier is its binary log-odds
log p_k - log(1 - p_k) = l_k - logsumexp_{j != k} l_j.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor
from tqdm.auto import tqdm

from genlab.core.errors import ConfigError
from genlab.data.base import DataSpec
from genlab.tools.latent import AREA_THRESHOLD

# ----------------------------------------------------------------------------- the target


@dataclass(frozen=True)
class Target:
    """The attribute edited: column ``index`` of the classifier's outputs ``names``.
    ``exclusive``: the outputs are the classes of one softmax (class labels); otherwise each
    output is an independent sigmoid attribute (``Split.attrs``)."""

    name: str
    index: int
    exclusive: bool
    names: tuple[str, ...]

    @property
    def classifier_target(self) -> str:
        """What the domain classifier predicts: "labels" or "attrs"."""
        return "labels" if self.exclusive else "attrs"


def resolve_target(spec: DataSpec, name: str) -> Target:
    """The target named ``name``: a binary attribute when the data has attributes, else a class
    name or index. One-line errors list the valid names."""
    if spec.attr_names:
        names = tuple(spec.attr_names)
        if name not in names:
            raise ConfigError(
                f"unknown attribute {name!r}; this data's attributes: {', '.join(names)}"
            )
        return Target(name, names.index(name), False, names)
    k = spec.num_classes
    if not k:
        raise ConfigError(
            "genlab edit needs data with class labels or binary attributes (such as digits or "
            "shapes); this dataset has neither"
        )
    names = tuple(spec.class_names or (str(i) for i in range(k)))
    if name in names:
        return Target(name, names.index(name), True, names)
    if name.isdigit() and int(name) < k:
        return Target(names[int(name)], int(name), True, names)
    raise ConfigError(
        f"unknown class {name!r}; use an index 0..{k - 1} or a name: {', '.join(names)}"
    )


def target_logit(logits: Tensor, index: int, exclusive: bool) -> Tensor:
    """(B, K) classifier logits -> (B,) the logit of output ``index``: the sigmoid logit of an
    attribute, or the log-odds l_k - logsumexp_{j != k} l_j of class k of a softmax."""
    if not exclusive:
        return logits[:, index]
    rest = torch.cat([logits[:, :index], logits[:, index + 1 :]], dim=1)
    return logits[:, index] - torch.logsumexp(rest, dim=1)


def probabilities(logits: Tensor, exclusive: bool) -> tuple[Tensor, Tensor]:
    """(B, K) logits -> (probabilities (B, K) in [0, 1], predicted presence (B, K) bool): the
    softmax and the one-hot argmax for classes, each sigmoid and logit > 0 for attributes."""
    if exclusive:
        p = logits.softmax(1)
        return p, torch.nn.functional.one_hot(logits.argmax(1), logits.shape[1]).bool()
    return logits.sigmoid(), logits > 0


def complements(attrs: Tensor | None, index: int) -> list[int]:
    """Columns j != index of training attributes (N, A) 0/1 that equal NOT column ``index`` in
    every row (shapes: ``small`` for ``large``). Raising an attribute must lower its complement,
    so entanglement leaves them out."""
    if attrs is None or len(attrs) == 0:
        return []
    a = attrs.bool()
    other = ~a[:, index : index + 1]  # (N, 1)
    return [j for j in range(a.shape[1]) if j != index and bool((a[:, j : j + 1] == other).all())]


# ----------------------------------------------------------------------------- the edit


def tangent_step(z: Tensor, grad: Tensor, radius: Tensor, step_size: float) -> Tensor:
    """One step of length ``step_size`` along the normalised ``grad`` (B, D) with its radial
    part removed, then back onto the sphere |z| = ``radius`` (B,). Rows with a zero tangent
    gradient stay where they are."""
    unit = z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)
    g = grad - (grad * unit).sum(1, keepdim=True) * unit  # tangent part
    norm = g.norm(dim=1, keepdim=True)
    moved = z + step_size * g / norm.clamp_min(1e-12)
    moved = moved * (radius[:, None] / moved.norm(dim=1, keepdim=True).clamp_min(1e-12))
    return torch.where(norm > 0, moved, z)


def edit_latents(
    generate: Callable[[Tensor], Tensor],
    classify: Callable[[Tensor], Tensor],
    z0: Tensor,
    target: Target,
    amount: float,
    steps: int = 100,
    step_size: float = 0.1,
    progress: bool = False,
) -> Tensor:
    """Latents (B, D) moved from ``z0`` until the target logit of ``classify(generate(z))`` has
    changed by ``amount`` (or ``steps`` steps of ``step_size`` are spent); see the module
    docstring. ``generate`` and ``classify`` must be differentiable (frozen, in eval mode)."""
    if amount == 0:
        raise ConfigError("--amount 0 changes nothing; give a positive or negative logit change")
    sign = 1.0 if amount > 0 else -1.0
    radius = z0.norm(dim=1)
    with torch.no_grad():
        goal = target_logit(classify(generate(z0)), target.index, target.exclusive) + amount
    z = z0.clone()
    for _ in tqdm(range(steps), desc="edit", disable=None if progress else True, leave=False):
        z.requires_grad_(True)
        logit = target_logit(classify(generate(z)), target.index, target.exclusive)
        active = sign * (goal - logit) > 0  # (B,) not there yet
        if not active.any():
            break
        if not logit.requires_grad:
            raise ConfigError(
                "the generator is not differentiable in its latent (e.g. a categorical VAE's "
                "argmax); genlab edit needs gradients of the images with respect to z"
            )
        (grad,) = torch.autograd.grad((sign * logit * active).sum(), z)
        with torch.no_grad():
            z = tangent_step(z.detach(), grad, radius, step_size)
    return z.detach()


# ----------------------------------------------------------------------------- the scores


@dataclass
class EditScores:
    """What the classifier saw before and after an edit of n samples (fractions in [0, 1])."""

    success: float  # samples on the target side after the edit (present if A > 0, absent if < 0)
    success_before: float  # the same share before (the baseline)
    converted: float | None  # of the samples on the wrong side before: the share now right
    prob_change: float  # mean change of the target's probability (signed)
    logit_change: float  # mean change of the target's logit (signed)
    other_change: float | None  # mean |change| of the other outputs' probabilities
    other_flips: float | None  # share of (sample, other output) predictions that flipped
    others: dict[str, float] = field(default_factory=dict)  # per other output: mean change
    left_out: tuple[str, ...] = ()  # complements, not counted as entanglement

    def to_dict(self) -> dict:
        return dict(self.__dict__, left_out=list(self.left_out))


def edit_scores(
    before: Tensor, after: Tensor, target: Target, amount: float, ignore: list[int] = ()
) -> EditScores:
    """Scores of classifier logits (n, K) before and after an edit. The "other" outputs are all
    but the target and the ``ignore`` columns (complements)."""
    i, ex = target.index, target.exclusive
    p0, y0 = probabilities(before, ex)
    p1, y1 = probabilities(after, ex)
    want = amount > 0
    ok0, ok1 = y0[:, i] == want, y1[:, i] == want
    wrong = ~ok0
    rest = [j for j in range(before.shape[1]) if j != i and j not in ignore]
    dp = p1[:, rest] - p0[:, rest]  # (n, R)
    return EditScores(
        success=ok1.float().mean().item(),
        success_before=ok0.float().mean().item(),
        converted=ok1[wrong].float().mean().item() if wrong.any() else None,
        prob_change=(p1[:, i] - p0[:, i]).mean().item(),
        logit_change=(target_logit(after, i, ex) - target_logit(before, i, ex)).mean().item(),
        other_change=dp.abs().mean().item() if rest else None,
        other_flips=(y0[:, rest] != y1[:, rest]).float().mean().item() if rest else None,
        others={target.names[j]: dp[:, c].mean().item() for c, j in enumerate(rest)},
        left_out=tuple(target.names[j] for j in ignore),
    )


# ----------------------------------------------------------------------------- one call


@dataclass
class EditResult:
    before: Tensor  # (n, C, H, W) in [-1, 1] on the CPU
    after: Tensor
    distance: Tensor  # (n,) |z - z0|, L2 in latent space
    scores: EditScores
    judge: EditScores | None = None  # the same edit scored by an independent classifier


def edit_samples(
    model: torch.nn.Module,
    classifier,
    target: Target,
    amount: float,
    z0: Tensor,
    labels: Tensor | None = None,
    steps: int = 100,
    step_size: float = 0.1,
    ignore: list[int] = (),
    judge=None,
    progress: bool = False,
) -> EditResult:
    """Edit the samples of latents ``z0`` (n, latent_dim) of a generator-contract ``model``
    with ``classifier`` (a ``genlab.metrics.classifier`` classifier of ``target``: ``classify`` maps
    a batch in [-1, 1] to logits). Conditional models keep ``labels`` fixed. The model and
    classifier are frozen (no parameter gradient) and used in eval mode."""
    device = next(model.parameters()).device
    model.eval().requires_grad_(False)
    classifier.model.eval().requires_grad_(False)
    classifier.to(device)
    gen = lambda z: model.generate(z, labels)  # noqa: E731
    z0 = z0.to(device)
    z = edit_latents(gen, classifier.classify, z0, target, amount, steps, step_size, progress)
    with torch.no_grad():
        before, after = gen(z0).float(), gen(z).float()
        lb, la = classifier.classify(before), classifier.classify(after)
        scores = edit_scores(lb.cpu(), la.cpu(), target, amount, ignore)
        judged = None
        if judge is not None:
            judge.model.eval()
            judge.to(device)
            jb, ja = judge.classify(before).cpu(), judge.classify(after).cpu()
            judged = edit_scores(jb, ja, target, amount, ignore)
    return EditResult(before.cpu(), after.cpu(), (z - z0).norm(dim=1).cpu(), scores, judged)


def foreground_centre(images: Tensor, threshold: float = AREA_THRESHOLD) -> Tensor:
    """(B, 2) the mean (column, row) of the pixels brighter than ``threshold`` in images
    (B, C, H, W) in [-1, 1], as fractions of the side in [0, 1] (pixel centres; 0 = left / top);
    NaN for an image with no such pixel. A check of position edits that needs no classifier."""
    _, _, h, w = images.shape
    mask = (images.amax(dim=1) > threshold).float()  # (B, H, W)
    cols = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    rows = (torch.arange(h, dtype=torch.float32) + 0.5) / h
    total = mask.sum((1, 2))
    x = (mask * cols[None, None, :]).sum((1, 2)) / total
    y = (mask * rows[None, :, None]).sum((1, 2)) / total
    return torch.stack([x, y], dim=1)


def before_after_rows(
    before: Tensor, after: Tensor, columns: int = 8, fill: float = -1.0
) -> Tensor:
    """(n, C, H, W) pairs -> images for a grid of min(columns, n) columns: each group of
    ``columns`` samples as a row before the edit, then the same samples after. A last partial
    group is padded with images of value ``fill`` (black)."""
    n = len(before)
    cols = min(columns, n)
    pad = -n % cols
    if pad:
        blank = torch.full((pad, *before.shape[1:]), fill, dtype=before.dtype)
        before, after = torch.cat([before, blank]), torch.cat([after, blank])
    rows = []
    for g in range(len(before) // cols):
        rows += [before[g * cols : (g + 1) * cols], after[g * cols : (g + 1) * cols]]
    return torch.cat(rows)
