"""Feature spaces of the image metrics: every FID, KID, precision/recall or nearest-neighbour
number is a distance in *some* feature space, and genlab cannot download Inception weights, so
each metric names the space its number comes from (``FeatureSpace.note``).

Three spaces, chosen by ``ctx.options["features"]`` (``--features``):

- ``inception``: InceptionV3 pool3 (2048-d), the network of the standard FID (Heusel et al.
  2017, arXiv:1706.08500), with weights from the file ``ctx.options["inception_weights"]``
  (``--inception-weights PATH``, the ``pt_inception-2015-12-05`` file of pytorch-fid). Only
  these numbers are comparable with published FIDs.
- ``classifier``: the penultimate layer of a small CNN genlab trains on the run's own labelled
  training split (``genlab.metrics.classifier``, cached on disk). Comparable between runs on
  the same data and resolution; its test accuracy is in the note.
- ``random``: a randomly initialised conv net with a fixed seed, for unlabelled data without
  weights. Random embeddings still separate image statistics (Naeem et al. 2020,
  arXiv:2002.09797, use them for precision/recall/density/coverage), but the numbers are only
  comparable between runs of the same data and resolution.

``auto`` (the default) is ``inception`` when a weights path is given, else ``classifier`` when
the data has class labels, else ``random``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.core.errors import ConfigError
from genlab.metrics.base import EvalContext
from genlab.metrics.classifier import ClassifierNet, batched_map, domain_classifier
from genlab.nn.inception import load_fid_inception

CHOICES = ("auto", "classifier", "inception", "random")
RANDOM_SEED = 0
RANDOM_WIDTH = 32
RANDOM_DIM = 256
FALLBACK_LIMITS = (
    "not comparable with Inception FID; comparable only between runs of the same data and "
    "resolution"
)


@dataclass
class FeatureSpace:
    """A frozen network mapping images to feature vectors, with the words that qualify every
    number computed in it."""

    name: str  # "digits classifier", "inception-v3 pool3", "random conv (fallback)"
    note: str  # printed with every metric that uses it
    dim: int
    extract: Callable[[Tensor], Tensor] = field(repr=False)  # one batch -> (b, dim)
    classify: Callable[[Tensor], Tensor] | None = field(default=None, repr=False)  # -> (b, K)
    shape: tuple[int, ...] | None = None  # (C, H, W) the space accepts; None = any image
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    batch_size: int = 256

    def features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) floats in [-1, 1] -> (B, dim) float32 on the CPU; batched, no grad."""
        return self._map(self.extract, x)

    def logits(self, x: Tensor) -> Tensor | None:
        """(B, C, H, W) in [-1, 1] -> (B, K) class logits (for the Inception Score), or None
        when the space has no classifier."""
        return None if self.classify is None else self._map(self.classify, x)

    def _map(self, fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ConfigError(f"{self.name} takes images (B, C, H, W); got shape {tuple(x.shape)}")
        if not x.is_floating_point():  # uint8 pixels would be read as values up to 255
            raise TypeError(f"{self.name} takes floats in [-1, 1]; convert uint8 with to_model")
        if self.shape is not None and tuple(x.shape[1:]) != self.shape:
            raise ConfigError(
                f"{self.name} was built for images {self.shape}; got {tuple(x.shape[1:])}"
            )
        if len(x) == 0:
            return torch.zeros(0, self.dim)
        return batched_map(fn, x, self.device, self.batch_size)


def feature_space(ctx: EvalContext) -> FeatureSpace:
    """The feature space that ``ctx.options`` asks for, built once per context (memoised in
    ``ctx.cache``, so FID, KID and precision/recall of one evaluation share it)."""
    choice = str(ctx.options.get("features") or "auto")
    weights = ctx.options.get("inception_weights")
    key = f"feature_space:{choice}:{weights}"
    if key not in ctx.cache:
        ctx.cache[key] = _build(ctx, choice, weights)
    return ctx.cache[key]


def _build(ctx: EvalContext, choice: str, weights: str | None) -> FeatureSpace:
    spec = ctx.model.spec
    if choice not in CHOICES:
        raise ConfigError(f"--features {choice!r}: choose from {', '.join(CHOICES)}")
    if spec.kind != "image":
        raise ConfigError(
            f"image metrics need image data; this run's data {ctx.cfg.data.name!r} is {spec.kind}"
        )
    if choice == "auto":
        choice = "inception" if weights else "classifier" if spec.num_classes else "random"
    if choice == "inception":
        if not weights:
            raise ConfigError(
                "--features inception needs the FID Inception weights: pass --inception-weights "
                "PATH (pt_inception-2015-12-05-6726825d.pth), or use --features classifier/random"
            )
        return inception_space(weights, ctx.device, ctx.batch_size)
    if choice == "classifier":
        if not spec.num_classes:
            raise ConfigError(
                f"--features classifier needs labelled data; {ctx.cfg.data.name!r} has no class "
                "labels here. Use --features random, or --inception-weights PATH"
            )
        return classifier_space(ctx, spec.shape)
    return random_space(spec.shape, ctx.device, ctx.batch_size)


def classifier_space(ctx: EvalContext, shape: tuple[int, ...]) -> FeatureSpace:
    """The penultimate layer of the run's domain classifier (trained and cached on first use)."""
    clf = domain_classifier(ctx.data, target="labels", progress=ctx.progress).to(ctx.device)
    name = f"{ctx.data.name} classifier"
    note = f"{name}, {clf.describe()}, {clf.dim}-d"
    return FeatureSpace(
        name, note, clf.dim, clf.embed, clf.classify, tuple(shape), ctx.device, ctx.batch_size
    )


def inception_space(weights: str | Path, device: torch.device, batch_size: int) -> FeatureSpace:
    """InceptionV3 pool3 features and its 1008 bias-free logits (the Inception Score's),
    weights loaded from ``weights``."""
    net = load_fid_inception(weights).to(device).eval()
    note = (
        f"inception-v3 pool3 (FID network, weights {Path(weights).name}), 2048-d, "
        "pytorch-fid input convention (u/127.5 - 1, torch bilinear resize)"
    )
    return FeatureSpace(
        "inception-v3 pool3", note, 2048, net.pool3, net.score_logits, None, device, batch_size
    )


def random_net(channels: int, size: int, seed: int = RANDOM_SEED) -> nn.Module:
    """A randomly initialised conv trunk, the same weights for a given (channels, size, seed)
    on every machine: built under a private RNG so the caller's random state is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ClassifierNet(channels, size, outputs=1, width=RANDOM_WIDTH, feature_dim=RANDOM_DIM)
    return net.eval()


def random_space(shape: tuple[int, ...], device: torch.device, batch_size: int) -> FeatureSpace:
    """The fallback: features of ``random_net`` (no training, no download)."""
    channels, size = shape[0], shape[-1]
    net = random_net(channels, size).to(device)

    def embed(x: Tensor) -> Tensor:
        # An untrained net's features are tiny (FID ~1e-5); rescaled to length sqrt(d), each
        # coordinate is of order 1, so FID and KID (whose kernel divides x.y by d) read sensibly.
        return F.normalize(net.embed(x), dim=1) * RANDOM_DIM**0.5

    note = (
        f"random conv (fallback), seed {RANDOM_SEED}, {RANDOM_DIM}-d, rescaled to length "
        f"sqrt(d): {FALLBACK_LIMITS}"
    )
    return FeatureSpace(
        "random conv (fallback)", note, RANDOM_DIM, embed, None, tuple(shape), device, batch_size
    )


__all__ = ["CHOICES", "FeatureSpace", "feature_space"]
