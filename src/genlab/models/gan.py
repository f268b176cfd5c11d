"""Generative adversarial networks (Goodfellow et al. 2014, arXiv:1406.2661) as one class.

Every variant is a configuration of ``GAN``: registry defaults plus a preset with the paper's
training hyperparameters (docs/models/gan.md has each objective and the command of its figure).

- ``gan``: MLP networks for 2-D data; ``dcgan`` (Radford et al. 2016, arXiv:1511.06434):
  strided conv nets, batch norm, the non-saturating loss. ``model.arch=cnn32`` swaps in the
  32x32 "standard CNN" of the CIFAR-10 comparisons (``genlab.nn.cnn32``) for any variant.
- ``wgan`` (Arjovsky et al. 2017, arXiv:1701.07875): the Wasserstein loss, critic weights
  clipped to [-c, c] after every critic step, 5 critic steps per generator step (100 at the
  first 25 generator steps and every 500th, as the authors' code).
- ``wgan_gp`` (Gulrajani et al. 2017, arXiv:1704.00028): the Wasserstein loss plus the gradient
  penalty of ``genlab.losses.penalties`` (lambda = 10), no batch norm in the critic.
- ``sngan`` (Miyato et al. 2018, arXiv:1802.05957): spectral norm on every discriminator layer
  (switched by the layer factory), the hinge loss.
- ``cgan`` (Mirza & Osindero 2014, arXiv:1411.1784): G and D see a condition: a class label
  (``batch["y"]``) or a binary attribute vector (``batch["attrs"]``). G joins its one-hot /
  embedding / attribute vector to z; D joins it to its input (``concat`` for MLPs, constant
  ``channels`` for conv nets) or adds the projection term c^T V phi(x) of Miyato & Koyama 2018
  (arXiv:1802.05637) to its output.

The loss pair comes from ``ADVERSARIAL_LOSSES`` (BCE pairs take per-sample targets for label
smoothing and flipping), normalisation and spectral norm from the layer factory.
"""

from __future__ import annotations

import itertools
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from genlab.core.config import ModelConfig, TrainConfig
from genlab.core.errors import ConfigError
from genlab.core.registry import MODELS
from genlab.data.base import Batch, DataSpec
from genlab.losses.adversarial import ADVERSARIAL_LOSSES, LossPair, discriminator_targets
from genlab.losses.penalties import gradient_penalty
from genlab.models.base import GenerativeModel, evaluating, frozen
from genlab.models.optim import make_optimizer
from genlab.nn.cnn32 import SIZE as CNN32_SIZE
from genlab.nn.cnn32 import CNN32Encoder, CNN32Generator
from genlab.nn.conv import ConvDecoder, ConvEncoder, dcgan_init
from genlab.nn.layers import (
    JOINS,
    Attributes,
    ConditionalGenerator,
    Discriminator,
    LayerFactory,
    Norm,
    OneHot,
    Scale,
    join_none,
)
from genlab.nn.mlp import mlp


class GANConfig(ModelConfig):
    arch: Literal["mlp", "conv", "cnn32"] = Field(
        "conv", description="network family; cnn32: the 32x32 standard CNN of Miyato et al. 2018"
    )
    latent_dim: int = Field(100, ge=1)
    g_width: int = Field(64, ge=1, description="conv, cnn32: generator channels at the output end")
    d_width: int = Field(64, ge=1, description="conv, cnn32: D channels of the first layer")
    hidden: list[int] = Field([128, 128], description="mlp: hidden widths of G and D")
    loss: Literal[tuple(ADVERSARIAL_LOSSES)] = "nonsaturating"  # type: ignore[valid-type]
    g_norm: Norm = "batch"
    d_norm: Norm = "batch"
    spectral_norm: bool = Field(False, description="spectral norm on the discriminator")
    n_critic: int = Field(1, ge=1, description="discriminator updates per generator update")
    fresh_real: bool = Field(
        True,
        description="each D step reads its own real batch (as the papers); false: one "
        "batch for all n_critic steps of a generator step",
    )
    critic_burst: int = Field(
        0,
        ge=0,
        description="WGAN schedule: this many D steps at the first burst_first "
        "generator steps and at every burst_every-th (0 = off; the WGAN code uses 100)",
    )
    burst_first: int = Field(25, ge=0, description="generator steps that open with a burst")
    burst_every: int = Field(500, ge=1, description="a burst at every this-many generator steps")
    clip: float | None = Field(
        None, gt=0, description="WGAN: clip every critic weight to [-clip, clip] after its step"
    )
    gp_weight: float = Field(0.0, ge=0, description="gradient penalty weight (WGAN-GP); 0 = off")
    real_label: float = Field(
        1.0, gt=0, le=1, description="BCE losses: D's target for real samples (0.9 = smoothing)"
    )
    label_flip: float = Field(
        0.0, ge=0, lt=0.5, description="BCE losses: chance that a sample's D target is swapped"
    )
    condition: Literal["none", "labels", "attrs"] = Field(
        "none", description="conditional GAN: on class labels or binary attribute vectors"
    )
    d_condition: Literal["concat", "channels", "projection"] = Field(
        "projection", description="how D sees the condition: input concat (mlp), channels (conv)"
    )
    embed_dim: int | None = Field(
        None, ge=1, description="labels: width of G's learned label embedding; None = one-hot"
    )
    pack: int = Field(
        1, ge=1, description="PacGAN: D judges this many samples at once (1 = one at a time)"
    )
    scale: float = Field(
        1.0,
        gt=0,
        description="points: G emits scale x its net's output and D reads x / scale, so both "
        "nets work near unit size (the WGAN-GP toy code divides its mixtures by their std)",
    )


# ----------------------------------------------------------------------------- networks


def mlp_trunk(d_in: int, hidden: list[int], factory: LayerFactory) -> nn.Sequential:
    """Flatten, then linear + norm + LeakyReLU(0.2) per hidden width: (B, ...) -> (B, F)."""
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in itertools.pairwise([d_in, *hidden]):
        layers += [factory.linear(a, b), factory.norm1d(b), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers)


def build_generator(cfg: GANConfig, spec: DataSpec, code_dim: int) -> nn.Module:
    """(B, latent_dim + code_dim) -> samples of ``spec.shape``; images pass a Tanh ([-1, 1])."""
    factory = LayerFactory(norm=cfg.g_norm)
    z = cfg.latent_dim + code_dim
    if cfg.arch == "conv":
        c, h, _ = spec.shape
        return nn.Sequential(ConvDecoder(z, c, h, cfg.g_width, factory), nn.Tanh())
    if cfg.arch == "cnn32":
        return nn.Sequential(CNN32Generator(z, spec.shape[0], cfg.g_width, factory), nn.Tanh())
    dim = int(torch.tensor(spec.shape).prod())
    out: list[nn.Module] = [nn.Unflatten(1, spec.shape)]
    if spec.kind == "image":
        out.append(nn.Tanh())
    if cfg.scale != 1.0:
        out.append(Scale(cfg.scale))
    return nn.Sequential(mlp([z, *cfg.hidden, dim], factory=factory), *out)


def build_discriminator(cfg: GANConfig, spec: DataSpec, cond_dim: int) -> Discriminator:
    """D for samples of ``spec.shape`` and a condition vector of ``cond_dim`` (0: none), the
    conv or MLP trunk widened by the joined condition, every layer from the factory."""
    factory = LayerFactory(norm=cfg.d_norm, spectral=cfg.spectral_norm)
    join = JOINS[cfg.d_condition] if cond_dim else join_none
    extra = cond_dim if join is not join_none else 0  # channels or features joined to x
    if cfg.arch == "conv":
        c, h, _ = spec.shape
        trunk: nn.Module = ConvEncoder(c * cfg.pack + extra, h, cfg.d_width, factory)
        features = trunk.features
    elif cfg.arch == "cnn32":
        trunk = CNN32Encoder(spec.shape[0] * cfg.pack + extra, cfg.d_width, factory)
        features = trunk.features
    else:
        d_in = int(torch.tensor(spec.shape).prod()) * cfg.pack + extra
        trunk = mlp_trunk(d_in, cfg.hidden, factory)
        features = cfg.hidden[-1] if cfg.hidden else d_in
    project = None
    if cond_dim and cfg.d_condition == "projection":
        project = factory.linear(cond_dim, features, bias=False)
    return Discriminator(trunk, factory.linear(features, 1), join, project)


def check_config(cfg: GANConfig, spec: DataSpec, pair: LossPair) -> None:
    """One-line errors for options that do not fit together or do not fit the data."""
    if cfg.arch != "mlp" and spec.kind != "image":
        raise ConfigError(f"model.arch={cfg.arch} needs image data; use model.arch=mlp for points")
    if cfg.arch == "cnn32" and spec.shape[1:] != (CNN32_SIZE, CNN32_SIZE):
        raise ConfigError(
            f"model.arch=cnn32 is a 32x32 network, but the images are {spec.shape[1]}x"
            f"{spec.shape[2]}; set data.image_size=32 or use model.arch=conv"
        )
    if (cfg.real_label != 1.0 or cfg.label_flip > 0) and pair.d_soft is None:
        bce = ", ".join(k for k, v in ADVERSARIAL_LOSSES.items() if v.d_soft is not None)
        raise ConfigError(
            f"model.real_label / model.label_flip set targets of a BCE loss ({bce}); "
            f"model.loss={cfg.loss} has none: use a BCE loss or leave them at 1.0 / 0.0"
        )
    if cfg.gp_weight > 0 and cfg.d_norm == "batch":
        raise ConfigError(
            "model.gp_weight penalises each sample's gradient, which batch norm mixes across "
            "the batch; set model.d_norm=layer (or none)"
        )
    if cfg.condition == "labels" and spec.num_classes is None:
        raise ConfigError(
            "model.condition=labels needs labelled data, but this dataset has no labels; use "
            "a labelled dataset such as digits or set model.condition=none"
        )
    if cfg.condition == "attrs" and not spec.attr_names:
        raise ConfigError(
            "model.condition=attrs needs data with binary attributes (such as shapes); "
            "this dataset has none"
        )
    if cfg.pack > 1 and (cfg.condition != "none" or cfg.gp_weight > 0):
        raise ConfigError(
            "model.pack > 1 joins samples for D, which fits neither a per-sample condition nor "
            "a per-sample gradient penalty; set model.pack=1"
        )
    if cfg.scale != 1.0 and spec.kind != "points":
        raise ConfigError(
            f"model.scale={cfg.scale} rescales point data; {spec.kind} data has a fixed "
            "range, so leave model.scale=1"
        )
    if cfg.embed_dim is not None and cfg.condition != "labels":
        raise ConfigError("model.embed_dim embeds class labels; it needs model.condition=labels")
    wrong = "channels" if cfg.arch == "mlp" else "concat"
    if cfg.condition != "none" and cfg.d_condition == wrong:
        fits = "concat" if cfg.arch == "mlp" else "channels"
        raise ConfigError(
            f"model.d_condition={wrong} does not fit model.arch={cfg.arch}; "
            f"use {fits} or projection"
        )


# ----------------------------------------------------------------------------- model


@MODELS.register(
    "gan",
    defaults={"arch": "mlp", "latent_dim": 16, "g_norm": "none", "d_norm": "none"},
    help="GAN with MLP networks (2-D data)",
)
@MODELS.register("dcgan", defaults={"arch": "conv"}, help="DCGAN: conv nets, batch norm, NS loss")
@MODELS.register(
    "wgan",
    defaults={"loss": "wasserstein", "clip": 0.01, "n_critic": 5, "critic_burst": 100},
    help="WGAN: Wasserstein critic with clipped weights",
)
@MODELS.register(
    "wgan_gp",
    defaults={"loss": "wasserstein", "gp_weight": 10.0, "n_critic": 5, "d_norm": "layer"},
    help="WGAN-GP: Wasserstein critic with a gradient penalty",
)
@MODELS.register(
    "sngan",
    defaults={"loss": "hinge", "spectral_norm": True, "d_norm": "none", "n_critic": 5},
    help="SN-GAN: spectrally normalised discriminator, hinge loss",
)
@MODELS.register(
    "cgan",
    defaults={"condition": "labels"},
    help="conditional GAN: class labels or attributes, projection discriminator",
)
class GAN(GenerativeModel):
    """A generator G(z [, labels]) and a discriminator D(x [, labels]) trained with one loss
    pair. Subclasses may swap ``generator`` / ``discriminator`` and reuse ``train_step``: it only
    calls ``noise``, ``fake`` and ``critic``."""

    Config = GANConfig
    ema_target = "generator"
    data_kinds: tuple[str, ...] = ("image", "points")  # what these networks read

    def __init__(self, cfg: GANConfig, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        if spec.kind not in self.data_kinds:
            hint = "; for token sequences use gsgan" if spec.kind == "sequences" else ""
            kinds = " or ".join(self.data_kinds)
            raise ConfigError(f"model {cfg.name!r} reads {kinds} data, not {spec.kind}{hint}")
        self.loss_pair = ADVERSARIAL_LOSSES[cfg.loss]
        check_config(cfg, spec, self.loss_pair)
        labels, attrs = cfg.condition == "labels", cfg.condition == "attrs"
        # Class-conditional: the number of classes; attribute-conditional: of attributes.
        self.num_classes: int | None = spec.num_classes if labels else None
        self.num_attrs: int | None = len(spec.attr_names or ()) if attrs else None
        cond_dim = self.num_classes or self.num_attrs or 0
        code: nn.Module | None = None
        if labels:
            k = self.num_classes
            code = nn.Embedding(k, cfg.embed_dim) if cfg.embed_dim else OneHot(k)
        elif attrs:
            code = Attributes()
        code_dim = 0 if code is None else (cfg.embed_dim or cond_dim)
        self.generator = build_generator(cfg, spec, code_dim)
        if code is not None:
            self.generator = ConditionalGenerator(self.generator, code)
        self.discriminator = build_discriminator(cfg, spec, cond_dim)
        if cfg.arch in ("conv", "cnn32"):  # N(0, 0.02), as the DCGAN and SN-GAN code
            dcgan_init(self)
        if attrs:  # training frequency of each attribute: the default of ``sample``
            self.register_buffer("attr_freq", torch.full((cond_dim,), 0.5))
            self.register_buffer("attr_seen", torch.zeros((), dtype=torch.int64))

    # ------------------------------------------------------------------ generator contract
    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim

    def noise(
        self, b: int, device: torch.device, generator: torch.Generator | None = None
    ) -> Tensor:
        """Standard normal z (b, latent_dim) on ``device``, drawn on the generator's device."""
        return self.latent_noise(b, self.cfg.latent_dim, generator, device)

    def fake(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """G(z [, labels]) in the current mode, labels unchecked (training)."""
        return self.generator(z) if labels is None else self.generator(z, labels)

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Samples of latents z (n, latent_dim): images (n, C, H, W) in [-1, 1] or points;
        conditional models take ``labels`` as in ``sample_labels`` (None: the defaults)."""
        labels = self.sample_labels(len(z), labels)
        return self.fake(z.to(self.device), labels)

    def sample_labels(
        self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor | None:
        """The checked labels of n samples, or the defaults: classes 0, 1, ..., K-1, 0, ...
        (n,) int64; attributes (n, A) float 0/1 drawn with their training frequencies. None for
        an unconditional GAN (labels are ignored)."""
        if self.num_classes is not None:
            return self._class_labels(n, labels)
        if self.num_attrs is None:
            return None
        if labels is None:
            where = generator.device if generator is not None else self.device
            u = torch.rand(n, self.num_attrs, generator=generator, device=where)
            return (u.to(self.device) < self.attr_freq).float()
        labels = torch.as_tensor(labels)
        if labels.shape != (n, self.num_attrs) or not ((labels == 0) | (labels == 1)).all():
            raise ConfigError(f"labels must be ({n}, {self.num_attrs}) attribute values 0 or 1")
        return labels.to(self.device, torch.float32)

    def _class_labels(self, n: int, labels: Tensor | None) -> Tensor:
        k = self.num_classes
        if labels is None:
            return torch.arange(n, device=self.device) % k
        labels = torch.as_tensor(labels)
        bad_range = labels.numel() > 0 and (labels.min() < 0 or labels.max() >= k)
        if labels.shape != (n,) or labels.is_floating_point() or bad_range:
            raise ConfigError(f"labels must be {n} class ids in 0..{k - 1} (one per sample)")
        return labels.to(self.device, torch.int64)

    def sample(self, n, *, labels=None, generator=None) -> Tensor:
        """``generate`` of standard normal z: (n, C, H, W) in [-1, 1], or points (n, D)."""
        with evaluating(self):
            z = self.noise(n, self.device, generator)
            return self.generate(z, self.sample_labels(n, labels, generator))

    # ------------------------------------------------------------------ discriminator
    def condition_vector(self, labels: Tensor | None) -> Tensor | None:
        """What D sees of a condition: one-hot (B, K) or attributes (B, A) float; None when
        unconditional."""
        if self.num_classes is None and self.num_attrs is None:
            return None
        if labels is None:
            what = f"model.condition={self.cfg.condition}"
            raise ConfigError(f"this GAN is conditional ({what}); pass labels")
        if self.num_classes is not None:
            return F.one_hot(labels.long(), self.num_classes).float()
        return labels.float()

    def critic(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """Discriminator logits / critic scores, (B,); with ``pack`` m, (B / m,): one score for
        each m consecutive samples stacked along the channels (PacGAN, Lin et al. 2018,
        arXiv:1712.04086), which lets D see a batch's lack of variety. D reads x / ``scale``."""
        x = self.unscale(x)
        if self.cfg.pack > 1:
            x = x.reshape(len(x) // self.cfg.pack, -1, *x.shape[2:])
        c = self.condition_vector(labels)
        return (self.discriminator(x) if c is None else self.discriminator(x, c)).squeeze(1)

    def features(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """The discriminator's penultimate features phi(x), (B, F): the flattened last conv
        maps (F = channels x base x base) or the last hidden MLP layer (F = hidden[-1]), after
        the activation. Conditional models with an input join need the labels."""
        if self.cfg.pack > 1:
            raise ConfigError("a packed discriminator (model.pack > 1) has no per-sample features")
        return self.discriminator.features(self.unscale(x), self.condition_vector(labels))

    def unscale(self, x: Tensor) -> Tensor:
        """Data -> what D reads: x / ``scale`` (x itself at scale 1)."""
        return x if self.cfg.scale == 1.0 else x / self.cfg.scale

    # ------------------------------------------------------------------ training
    def configure_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        if train.batch_size % self.cfg.pack:
            raise ConfigError(
                f"train.batch_size={train.batch_size} must be a multiple of model.pack="
                f"{self.cfg.pack}"
            )
        return {
            "generator": make_optimizer(self.generator.parameters(), train),
            "discriminator": make_optimizer(self.discriminator.parameters(), train, train.lr_d),
        }

    def batch_labels(self, batch: Batch) -> Tensor | None:
        """The batch's condition: ``y`` (B,) or ``attrs`` (B, A); None when unconditional."""
        key = {"labels": "y", "attrs": "attrs"}.get(self.cfg.condition)
        if key is None:
            return None
        if key not in batch:
            raise ConfigError(f"model.condition={self.cfg.condition} but the batch has no {key!r}")
        return batch[key]

    @torch.no_grad()
    def track_attributes(self, attrs: Tensor) -> None:
        """Fold a batch of attributes (B, A) into the running frequencies (an exact mean)."""
        self.attr_seen += len(attrs)
        self.attr_freq.lerp_(attrs.float().mean(0), len(attrs) / self.attr_seen.float())

    def d_loss(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        """The discriminator half of the loss pair, with smoothed / flipped BCE targets."""
        if self.cfg.real_label == 1.0 and self.cfg.label_flip == 0.0:
            return self.loss_pair.d(d_real, d_fake)
        cfg = self.cfg
        n_real, n_fake = len(d_real), len(d_fake)
        t_real, t_fake = discriminator_targets(
            n_real, n_fake, cfg.real_label, cfg.label_flip, device=d_real.device
        )
        return self.loss_pair.d_soft(d_real, d_fake, t_real, t_fake)

    def discriminator_step(self, real: Tensor, labels: Tensor | None, opt) -> dict[str, Tensor]:
        """One D update on a real batch and fresh fakes: loss, [penalty], step, [clipping]."""
        b = real.shape[0]
        with torch.no_grad():
            fake = self.fake(self.noise(b, real.device), labels)
        d_real, d_fake = self.critic(real, labels), self.critic(fake, labels)
        loss = self.d_loss(d_real, d_fake)
        logs = {}
        if self.cfg.gp_weight > 0:
            eps = torch.rand(b, device=real.device)  # one interpolation weight per sample
            gp = gradient_penalty(lambda x: self.critic(x, labels), real, fake, eps)
            loss = loss + self.cfg.gp_weight * gp
            logs["gp"] = gp.detach()
        opt.zero_grad(set_to_none=True)
        self.backward(loss)
        self.step(opt)
        if self.cfg.clip is not None:
            self.clip_critic(self.cfg.clip)
        d = {"d_loss": loss.detach(), "d_real": d_real.detach().mean()}
        return {**d, "d_fake": d_fake.detach().mean(), **logs}

    @torch.no_grad()
    def clip_critic(self, c: float) -> None:
        """WGAN's Lipschitz constraint: every critic parameter clamped to [-c, c]."""
        for p in self.discriminator.parameters():
            p.clamp_(-c, c)

    def generator_step(self, b: int, labels: Tensor | None, device, opt) -> Tensor:
        """One G update on b fresh fakes; D's parameters need no gradient here."""
        with frozen(self.discriminator):
            g_loss = self.loss_pair.g(self.critic(self.fake(self.noise(b, device), labels), labels))
            opt.zero_grad(set_to_none=True)
            self.backward(g_loss)
            self.step(opt)
        return g_loss.detach()

    def critic_steps(self, step: int) -> int:
        """D updates before the generator update of ``step`` (0-based generator steps):
        ``n_critic``, or ``critic_burst`` at the first ``burst_first`` steps and every
        ``burst_every``-th, the schedule of the WGAN reference code (Arjovsky et al. 2017), which
        trains the critic close to optimality early on and now and then after."""
        cfg = self.cfg
        burst = cfg.critic_burst and (step < cfg.burst_first or step % cfg.burst_every == 0)
        return cfg.critic_burst if burst else cfg.n_critic

    def batches_for_step(self, step: int) -> int:
        """One real batch per D update with ``fresh_real``, else one for the whole step."""
        return self.critic_steps(step) if self.cfg.fresh_real else 1

    def train_step(self, batch: Batch, optimizers, step: int) -> dict[str, Tensor]:
        # k * B rows: with fresh_real, D update i reads rows [i B, (i + 1) B).
        k, n = self.batches_for_step(step), self.critic_steps(step)
        if len(batch["x"]) % k:
            raise ValueError(
                f"step {step} reads batches_for_step({step}) = {k} batches stacked along dim 0; "
                f"got {len(batch['x'])} rows"
            )
        reals = batch["x"].chunk(k)
        labels = self.batch_labels(batch)
        if self.num_attrs is not None:
            self.track_attributes(labels)
        conds = [None] * k if labels is None else labels.chunk(k)  # each real batch's labels
        for i in range(n):
            j = i % k
            logs = self.discriminator_step(reals[j], conds[j], optimizers["discriminator"])
        real = reals[-1]  # G's batch size and, conditional, its labels: the last D batch's
        g_loss = self.generator_step(len(real), conds[-1], real.device, optimizers["generator"])
        return {"d_loss": logs.pop("d_loss"), "g_loss": g_loss, **logs}
