"""Domain classifiers: small CNNs genlab trains on a dataset's own training split, so that image
metrics have a feature space without downloading anything (``genlab.metrics.features``), the
``modes`` metric can read stacked digits, and latent editing can score attributes.

A classifier predicts either the class label (``target="labels"``, softmax cross-entropy) or
every binary attribute of ``Split.attrs`` at once (``target="attrs"``, one sigmoid per
attribute, binary cross-entropy). It is trained on the CPU with a fixed seed (Adam, a few
epochs), so the same data and recipe give the same weights, and measured on the test split.

Cache: ``$GENLAB_CACHE/classifiers/<sha256>.safetensors`` and ``<sha256>.json`` (accuracy,
recipe, data description), the hash taken over the data's bytes and the recipe, so a second call
loads instead of training. ``GENLAB_CACHE`` defaults to ``$XDG_CACHE_HOME/genlab``, else
``~/.cache/genlab``.

Data with ``spec.extra["stacked"]`` (``stacked_digits``) holds one base image per channel: its
classifier is the base dataset's classifier applied to each channel (``StackedClassifier``).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from genlab.core.config import DataConfig
from genlab.core.errors import ConfigError
from genlab.core.io import atomic_write, atomic_write_json, cache_root
from genlab.data import load_data
from genlab.data.base import DataBundle, Split
from genlab.data.pixels import to_model

VERSION = 1  # bump when training or the architecture changes: old cache entries are not used
TARGETS = ("labels", "attrs")


@dataclass(frozen=True)
class Recipe:
    """How a classifier is trained; part of the cache key."""

    width: int = 16  # channels of the first conv; doubled per stage up to 4x
    feature_dim: int = 128  # the penultimate layer: the feature space
    epochs: int = 20
    max_steps: int = 1000  # caps the work on large datasets (shapes: 100,000 images)
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    shift: int = 1  # random translation by up to this many pixels (augmentation)


def _unit(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class ClassifierNet(nn.Module):
    """(B, C, S, S) in [-1, 1] -> (B, outputs) logits. A 3x3 conv, then stages of a 3x3 conv and
    a stride-2 3x3 conv (batch norm, ReLU) until the side is at most 4, a 4x4 average pool and a
    linear layer to ``feature_dim`` (ReLU): ``embed`` returns that penultimate layer, ``head``
    maps it to logits."""

    def __init__(
        self, channels: int, size: int, outputs: int, width: int = 16, feature_dim: int = 128
    ) -> None:
        super().__init__()
        layers, c, side = _unit(channels, width, 1), width, size
        while side > 4:
            # Two convs per scale: with one, rotated shapes stay near chance (35 % vs 99.5 %
            # after 600 steps on 20,000 shapes).
            c_out = min(2 * c, 4 * width)
            layers += _unit(c, c, 1) + _unit(c, c_out, 2)
            c, side = c_out, (side - 1) // 2 + 1
        # A fixed 4x4 grid keeps where things are (attributes such as left/right need it).
        layers += [nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(16 * c, feature_dim), nn.ReLU()]
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(feature_dim, outputs)
        self.feature_dim = feature_dim

    def embed(self, x: Tensor) -> Tensor:
        return self.trunk(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x))


@dataclass
class TrainedClassifier:
    """A trained (or loaded) classifier and what it scored on the test split."""

    model: ClassifierNet
    target: str  # "labels" or "attrs"
    names: tuple[str, ...]  # class names, or attribute names
    accuracy: float  # in [0, 1]; the mean over attributes for target="attrs"
    n_test: int
    path: Path
    per_output: tuple[float, ...] = ()  # attrs: the accuracy of each attribute
    train_seconds: float | None = None  # None when loaded from the cache
    batch_size: int = 512

    dim = property(lambda self: self.model.feature_dim)
    device = property(lambda self: next(self.model.parameters()).device)

    def to(self, device: torch.device | str) -> TrainedClassifier:
        self.model.to(device)
        return self

    def describe(self) -> str:
        what = "test acc" if self.target == "labels" else "mean attribute test acc"
        # The cache key (a hash of data and recipe) tells two classifiers' numbers apart.
        return f"{what} {100 * self.accuracy:.1f} % (n={self.n_test}), id {self.path.stem[:8]}"

    def embed(self, x: Tensor) -> Tensor:
        """One batch (b, C, H, W) in [-1, 1] on ``device`` -> (b, dim) penultimate features."""
        return self.model.eval().embed(x)

    def classify(self, x: Tensor) -> Tensor:
        """One batch on ``device`` -> (b, K) logits (class logits, or one per attribute)."""
        return self.model.eval()(x)

    def features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) in [-1, 1], any device -> (B, dim) float32 on the CPU; no grad."""
        return batched_map(self.embed, x, self.device, self.batch_size)

    def logits(self, x: Tensor) -> Tensor:
        """(B, C, H, W) in [-1, 1] -> (B, K) float32 logits on the CPU; no grad."""
        return batched_map(self.classify, x, self.device, self.batch_size)

    def predict(self, x: Tensor) -> Tensor:
        """(B,) int64 class indices, or (B, A) bool attributes."""
        z = self.logits(x)
        return z.argmax(1) if self.target == "labels" else z > 0


def batched_map(fn, x: Tensor, device: torch.device, batch_size: int) -> Tensor:
    """``fn`` over (B, ...) in batches on ``device`` as float32, without gradients ->
    float32 on the CPU, concatenated."""
    with torch.no_grad():
        parts = [fn(c.to(device, torch.float32)).float().cpu() for c in x.split(batch_size)]
    return torch.cat(parts)


# ----------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    """Where classifiers are kept: ``$GENLAB_CACHE/classifiers``."""
    return cache_root() / "classifiers"


def _hash_tensor(h, t: Tensor | None) -> None:
    if t is None:
        h.update(b"none")
        return
    t = t.detach().cpu().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(memoryview(t.view(torch.uint8).numpy()))  # the raw bytes, whatever the dtype


def cache_key(bundle: DataBundle, target: str, recipe: Recipe) -> str:
    """sha256 hex of the recipe, target, architecture version and the data's tensors."""
    h = hashlib.sha256()
    h.update(json.dumps({"version": VERSION, "target": target, **asdict(recipe)}).encode())
    for split in (bundle.train, bundle.test):
        _hash_tensor(h, split.x)
        _hash_tensor(h, split.y if target == "labels" else split.attrs)
    return h.hexdigest()


# ----------------------------------------------------------------------------- training


def _targets(bundle: DataBundle, target: str) -> tuple[int, tuple[str, ...]]:
    """(number of outputs, their names) after checking the data has what ``target`` needs."""
    spec = bundle.spec
    if spec.kind != "image":
        raise ConfigError(f"a domain classifier needs image data; {bundle.name!r} is {spec.kind}")
    if target == "labels":
        if bundle.train.y is None or not spec.num_classes:
            raise ConfigError(
                f"dataset {bundle.name!r} has no class labels to train a classifier on; use "
                "labelled data (class sub-folders for imagefolder)"
            )
        k = spec.num_classes
        return k, tuple(spec.class_names or (str(i) for i in range(k)))
    if target == "attrs":
        if bundle.train.attrs is None or not spec.attr_names:
            raise ConfigError(f"dataset {bundle.name!r} has no binary attributes (try shapes)")
        return len(spec.attr_names), tuple(spec.attr_names)
    raise ConfigError(f"classifier target {target!r}: choose from {', '.join(TARGETS)}")


def _loss(logits: Tensor, split: Split, idx: Tensor, target: str) -> Tensor:
    if target == "labels":
        return F.cross_entropy(logits, split.y[idx])
    return F.binary_cross_entropy_with_logits(logits, split.attrs[idx].float())


def _shift(x: Tensor, most: int, gen: torch.Generator) -> Tensor:
    """Translate each image of (B, C, H, W) by up to ``most`` pixels each way; the background
    (-1, black) fills in. Augmentation: digits written a pixel off are still the same digit."""
    if most == 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (most,) * 4, value=-1.0)
    offset = torch.randint(0, (2 * most + 1) ** 2, (b,), generator=gen)
    out = torch.empty_like(x)
    for k in range((2 * most + 1) ** 2):  # one slice per offset: cheaper than a gather
        pick = offset == k
        dy, dx = divmod(k, 2 * most + 1)
        out[pick] = padded[pick, :, dy : dy + h, dx : dx + w]
    return out


def train_classifier(
    bundle: DataBundle, target: str, recipe: Recipe, progress: bool = True
) -> ClassifierNet:
    """Train a ``ClassifierNet`` on ``bundle.train`` on the CPU, deterministically."""
    outputs, _ = _targets(bundle, target)
    c, h, _ = bundle.spec.shape
    gen = torch.Generator().manual_seed(recipe.seed)
    with torch.random.fork_rng(devices=[]):  # weights drawn from the recipe's seed only
        torch.manual_seed(recipe.seed)
        model = ClassifierNet(c, h, outputs, recipe.width, recipe.feature_dim)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    x = bundle.train.x
    per_epoch = math.ceil(len(x) / recipe.batch_size)
    steps = min(recipe.epochs * per_epoch, recipe.max_steps)
    model.train()
    bar = tqdm(range(steps), desc=f"training {bundle.name} classifier", disable=not progress)
    perm = torch.randperm(len(x), generator=gen)
    for step in bar:
        if step % per_epoch == 0 and step:
            perm = torch.randperm(len(x), generator=gen)
        idx = perm[(step % per_epoch) * recipe.batch_size :][: recipe.batch_size]
        xb = _shift(to_model(x[idx]), recipe.shift, gen)
        loss = _loss(model(xb), bundle.train, idx, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return model.eval()


def score(
    model: ClassifierNet, split: Split, target: str, batch_size: int = 512
) -> tuple[float, tuple[float, ...]]:
    """(accuracy in [0, 1], per-attribute accuracies or ()) of ``model`` on ``split``."""
    with torch.no_grad():
        logits = torch.cat([model(to_model(c)) for c in split.x.split(batch_size)])
    if target == "labels":
        return float((logits.argmax(1) == split.y).double().mean()), ()
    per = ((logits > 0) == split.attrs).double().mean(0)
    return float(per.mean()), tuple(float(a) for a in per)


# ----------------------------------------------------------------------------- entry point


@dataclass
class _Meta:
    accuracy: float
    per_output: tuple[float, ...]
    n_test: int
    train_seconds: float


def _load(path: Path, meta_path: Path, model: ClassifierNet) -> _Meta | None:
    """The cached weights into ``model`` and their metadata, or None if the entry is unusable
    (then it is trained again and rewritten: a cache may always be rebuilt)."""
    from safetensors.torch import load_file

    try:
        meta = json.loads(meta_path.read_text())
        model.load_state_dict(load_file(str(path)))
        return _Meta(meta["accuracy"], tuple(meta["per_output"]), meta["n_test"], 0.0)
    except (OSError, ValueError, KeyError, RuntimeError):
        return None


def domain_classifier(
    bundle: DataBundle,
    target: str = "labels",
    recipe: Recipe | None = None,
    progress: bool = True,
) -> TrainedClassifier | StackedClassifier:
    """The classifier of ``bundle`` for ``target`` ("labels" or "attrs"): loaded from the cache,
    or trained on the training split, scored on the test split and cached."""
    recipe = recipe or Recipe()
    stacked = bundle.spec.extra.get("stacked")
    if stacked and target == "labels":
        return StackedClassifier.build(stacked, recipe, progress)
    outputs, names = _targets(bundle, target)
    key = cache_key(bundle, target, recipe)
    path = cache_dir() / f"{key}.safetensors"
    meta_path = path.with_suffix(".json")
    c, h, _ = bundle.spec.shape
    with torch.random.fork_rng(devices=[]):  # no draw from the caller's random stream
        model = ClassifierNet(c, h, outputs, recipe.width, recipe.feature_dim).eval()
    meta = _load(path, meta_path, model) if meta_path.is_file() else None
    seconds = None
    if meta is None:
        start = time.perf_counter()
        model = train_classifier(bundle, target, recipe, progress)
        seconds = time.perf_counter() - start
        acc, per = score(model, bundle.test, target)
        meta = _Meta(acc, per, len(bundle.test), seconds)
        _save(model, path, meta_path, bundle, target, recipe, names, meta)
    return TrainedClassifier(
        model, target, names, meta.accuracy, meta.n_test, path, meta.per_output, seconds
    )


def _save(model, path, meta_path, bundle, target, recipe, names, meta: _Meta) -> None:
    """Weights first, then the JSON: an entry counts only once its JSON exists."""
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda f: f.write(save(tensors)))
    data = {"name": bundle.name, "shape": list(bundle.spec.shape)}
    data.update(train=len(bundle.train), test=len(bundle.test))
    info = {"version": VERSION, "target": target, "names": list(names), "recipe": asdict(recipe)}
    result = {"accuracy": meta.accuracy, "per_output": list(meta.per_output), "n_test": meta.n_test}
    seconds = round(meta.train_seconds, 2)
    atomic_write_json(meta_path, {**result, "train_seconds": seconds, **info, "data": data})


# ----------------------------------------------------------------------------- stacked data


def combine_channels(log_probs: list[Tensor]) -> Tensor:
    """Per-channel log-probabilities, each (B, K) -> (B, K**C) log-probabilities of the joint
    mode under independence, mode index sum_i d_i K**(C-1-i) (digits 3, 0, 7 -> 307)."""
    out = log_probs[0]
    for lp in log_probs[1:]:
        out = (out[:, :, None] + lp[:, None, :]).flatten(1)
    return out


@dataclass
class StackedClassifier:
    """The classifier of data whose channels are independent base images (``stacked_digits``):
    the base dataset's classifier applied to every channel. Features are the channels' features
    side by side (C * dim); logits range over the K**C joint modes."""

    base: TrainedClassifier
    channels: int
    target: str = "labels"

    @classmethod
    def build(cls, stacked: dict, recipe: Recipe, progress: bool = True) -> StackedClassifier:
        """``stacked`` is ``spec.extra["stacked"]``: {"data": the base DataConfig fields,
        "channels": C}. The base classifier is trained on the base data's own training split."""
        base_data = load_data(DataConfig(**stacked["data"]))
        base = domain_classifier(base_data, "labels", recipe, progress)
        return cls(base, int(stacked["channels"]))

    model = property(lambda self: self.base.model)
    accuracy = property(lambda self: self.base.accuracy)  # per channel (one base image)
    n_test = property(lambda self: self.base.n_test)
    path = property(lambda self: self.base.path)
    device = property(lambda self: self.base.device)
    dim = property(lambda self: self.channels * self.base.dim)

    @property
    def names(self) -> tuple[str, ...]:
        names = [""]
        for _ in range(self.channels):
            names = [a + b for a in names for b in self.base.names]
        return tuple(names)

    def to(self, device: torch.device | str) -> StackedClassifier:
        self.base.to(device)
        return self

    def describe(self) -> str:
        return f"per-channel {self.base.describe()}"

    def _channels(self, x: Tensor) -> list[Tensor]:
        if x.shape[1] != self.channels:
            raise ConfigError(f"stacked images have {self.channels} channels; got {x.shape[1]}")
        return [x[:, i : i + 1] for i in range(self.channels)]

    def embed(self, x: Tensor) -> Tensor:
        return torch.cat([self.base.embed(c) for c in self._channels(x)], dim=1)

    def classify(self, x: Tensor) -> Tensor:
        lps = [self.base.classify(c).log_softmax(1) for c in self._channels(x)]
        return combine_channels(lps)

    def features(self, x: Tensor) -> Tensor:
        return batched_map(self.embed, x, self.device, self.base.batch_size)

    def logits(self, x: Tensor) -> Tensor:
        return batched_map(self.classify, x, self.device, self.base.batch_size)

    def predict(self, x: Tensor) -> Tensor:
        """(B, C, H, W) in [-1, 1] -> (B,) int64 joint modes sum_i d_i K**(C-1-i), d_i the base
        class read in channel i."""
        digits = torch.stack([self.base.predict(c) for c in self._channels(x)], dim=1)  # (B, C)
        return (digits * len(self.base.names) ** torch.arange(self.channels - 1, -1, -1)).sum(1)
