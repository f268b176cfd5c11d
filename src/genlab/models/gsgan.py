"""GAN for sequences of discrete tokens with the Gumbel-Softmax relaxation (Kusner &
Hernandez-Lobato 2016, arXiv:1611.04051; Jang, Gu & Poole 2017, arXiv:1611.01144).

A token sampled from softmax logits has no gradient, so the generator's output is relaxed: it
emits logits (B, L, V) and a Gumbel-Softmax head turns them into points of the simplex,
softmax((logits + g) / tau) with g standard Gumbel noise, which tend to one-hot samples as tau
-> 0. tau is annealed during training, tau(step) = max(tau_min, tau0 * exp(-rate * step)). The
discriminator reads one-hot sequences (B, L, V): real token ids are one-hot encoded, fakes are
the relaxed vectors. Everything else (loss pair, critic iterations, optimizers) is ``GAN``'s.

Sampling draws the tau -> 0 limit of what the discriminator saw in training: at each position
the token argmax(logits + g), g standard Gumbel noise, an exact sample of
Categorical(softmax(logits)) (the Gumbel-max trick). The noise is part of the model, so it is
part of the latent: ``latent_dim`` is z's width plus one standard normal per position and
token, mapped to Gumbel noise by the probability integral transform, and ``sample(n)`` is
``generate`` of N(0, I) latents (the generator contract of ``genlab.models.base``; truncation
and interpolation act on the noise too). The mode of each position given z, argmax(logits),
has far fewer distinct sequences (docs/models/gsgan.md measures both).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from genlab.core.errors import ConfigError
from genlab.core.registry import MODELS
from genlab.data.base import Batch, DataSpec
from genlab.losses.latent import gumbel_softmax, gumbel_temperature
from genlab.models.base import evaluating
from genlab.models.gan import GAN, GANConfig
from genlab.nn.layers import LayerFactory, Norm
from genlab.nn.mlp import mlp


class GSGANConfig(GANConfig):
    arch: Literal["mlp"] = Field("mlp", description="unused by gsgan: see g_arch and d_arch")
    latent_dim: int = Field(64, ge=1)
    g_arch: Literal["mlp", "gru"] = Field("mlp", description="generator z -> (L, V) logits")
    d_arch: Literal["mlp", "conv"] = Field("conv", description="discriminator of one-hots")
    g_width: int = Field(128, ge=1, description="gru: hidden units of the generator")
    d_width: int = Field(32, ge=1, description="conv: channels of the discriminator")
    hidden: list[int] = Field([256, 256], description="mlp: hidden widths of G and/or D")
    g_norm: Norm = "none"
    d_norm: Norm = "none"
    kernel: int = Field(3, ge=1, description="conv: window of each discriminator layer, tokens")
    d_layers: int = Field(2, ge=1, description="conv: discriminator conv layers")
    tau0: float = Field(1.0, gt=0, description="Gumbel-Softmax temperature at step 0")
    tau_min: float = Field(0.5, gt=0, description="lowest temperature of the annealing")
    anneal_rate: float = Field(3e-4, ge=0, description="tau = max(tau_min, tau0 exp(-rate step))")
    straight_through: bool = Field(
        False, description="fakes are hard one-hots with the relaxed gradient (Jang et al.)"
    )


def gumbel_from_normal(u: Tensor) -> Tensor:
    """Standard Gumbel noise from standard normal u, elementwise, by the probability integral
    transform: g = -log(-log Phi(u)), Phi the normal CDF (computed as log Phi for accuracy in
    the tails; clamped so that g stays finite)."""
    neg_log_phi = -torch.special.log_ndtr(u.double())
    return -torch.log(neg_log_phi.clamp_min(1e-300)).to(u.dtype)


class GumbelSoftmaxHead(nn.Module):
    """logits (B, L, V) -> relaxed one-hot (B, L, V) at the current temperature ``tau``, which
    the model sets before each step (a plain attribute: it follows from the step alone)."""

    def __init__(self, tau: float, hard: bool = False) -> None:
        super().__init__()
        self.tau, self.hard = tau, hard

    def forward(self, logits: Tensor) -> Tensor:
        return gumbel_softmax(logits, self.tau, hard=self.hard)

    def extra_repr(self) -> str:
        return f"tau={self.tau:.4g}, hard={self.hard}"


class GRUTokens(nn.Module):
    """z (B, Z) -> logits (B, L, V): a GRU run for L steps from h_0 = tanh(W z), reading z at
    every step, each hidden state projected to V logits. (A GRUCell loop rather than nn.GRU so
    every layer returns one tensor, which ``genlab arch`` measures.)"""

    def __init__(self, latent_dim: int, hidden: int, length: int, vocab: int) -> None:
        super().__init__()
        self.length = length
        self.init = nn.Linear(latent_dim, hidden)
        self.cell = nn.GRUCell(latent_dim, hidden)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, z: Tensor) -> Tensor:
        h = torch.tanh(self.init(z))
        states = []
        for _ in range(self.length):
            h = self.cell(z, h)
            states.append(h)
        return self.out(torch.stack(states, dim=1))  # (B, L, V)


class TokenConv(nn.Module):
    """A 1-D convolution over positions, (B, L, C_in) -> (B, L, C_out), stride 1, the window of
    ``k`` tokens centred (zero padding), then norm and LeakyReLU(0.2) per position. Written as
    a linear layer of the factory applied to each window, so spectral norm (of the (C_out,
    k C_in) matrix, as for any conv) and the 1-D norms (over batch and positions) apply."""

    def __init__(self, c_in: int, c_out: int, k: int, factory: LayerFactory) -> None:
        super().__init__()
        self.k = k
        self.linear = factory.linear(c_in * k, c_out, bias=factory.bias_before_norm)
        self.norm = factory.norm1d(c_out)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: Tensor) -> Tensor:
        b, length, c = x.shape
        left = (self.k - 1) // 2
        windows = F.pad(x, (0, 0, left, self.k - 1 - left)).unfold(1, self.k, 1)  # (B, L, C, k)
        h = self.linear(windows.reshape(b, length, c * self.k))  # (B, L, C_out)
        h = self.norm(h.reshape(b * length, -1)).view(b, length, -1)
        return self.act(h)


def token_generator(cfg: GSGANConfig, length: int, vocab: int, factory: LayerFactory):
    """z (B, Z) -> logits (B, L, V)."""
    if cfg.g_arch == "gru":
        return GRUTokens(cfg.latent_dim, cfg.g_width, length, vocab)
    net = mlp([cfg.latent_dim, *cfg.hidden, length * vocab], factory=factory)
    return nn.Sequential(*net, nn.Unflatten(1, (length, vocab)))


def token_discriminator(cfg: GSGANConfig, length: int, vocab: int, factory: LayerFactory):
    """One-hot or relaxed sequences (B, L, V) -> logits (B, 1)."""
    if cfg.d_arch == "mlp":
        sizes = [length * vocab, *cfg.hidden, 1]
        return nn.Sequential(
            nn.Flatten(), mlp(sizes, act=lambda: nn.LeakyReLU(0.2), factory=factory)
        )
    # No normalisation on the input layer (as DCGAN's discriminator).
    first = LayerFactory(norm="none", spectral=factory.spectral)
    layers = [TokenConv(vocab, cfg.d_width, cfg.kernel, first)]
    for _ in range(cfg.d_layers - 1):
        layers.append(TokenConv(cfg.d_width, cfg.d_width, cfg.kernel, factory))
    return nn.Sequential(*layers, nn.Flatten(), factory.linear(length * cfg.d_width, 1))


# The WGAN-GP objective (Gulrajani et al. 2017, arXiv:1704.00028): with the non-saturating loss
# the discriminator learns to tell relaxed vectors from one-hots and the generator collapses
# (docs/models/gsgan.md). No batch norm in the critic, as the per-sample penalty requires.
@MODELS.register(
    "gsgan",
    defaults={"loss": "wasserstein", "gp_weight": 10.0, "n_critic": 5},
    help="Gumbel-Softmax GAN for token sequences (data: sequences)",
)
class GSGAN(GAN):
    Config = GSGANConfig
    data_kinds = ("sequences",)

    def __init__(self, cfg: GSGANConfig, spec: DataSpec) -> None:
        if spec.kind != "sequences":
            raise ConfigError(
                f"model {cfg.name!r} needs token sequences; use --data sequences "
                f"(got {spec.kind} data)"
            )
        # GAN builds its MLP pair for the (L,) shape; both are replaced below, and the loss
        # pair and whatever else GAN sets up are kept.
        super().__init__(cfg, spec)
        (length,), vocab = spec.shape, len(spec.extra["vocab"])
        self.vocab_size = vocab
        g_factory = LayerFactory(norm=cfg.g_norm)
        d_factory = LayerFactory(norm=cfg.d_norm, spectral=cfg.spectral_norm)
        self.generator = nn.Sequential(
            token_generator(cfg, length, vocab, g_factory),
            GumbelSoftmaxHead(cfg.tau0, hard=cfg.straight_through),
        )
        self.discriminator = token_discriminator(cfg, length, vocab, d_factory)

    @property
    def head(self) -> GumbelSoftmaxHead:
        return self.generator[-1]

    def one_hot(self, tokens: Tensor) -> Tensor:
        """Token ids (B, L) int64 -> one-hot (B, L, V) float32."""
        if tokens.is_floating_point() or tokens.dim() != 2:
            raise ConfigError(
                f"gsgan reads token ids (B, L) int64, got {tuple(tokens.shape)} {tokens.dtype}"
            )
        return F.one_hot(tokens, self.vocab_size).float()

    def train_step(self, batch: Batch, optimizers, step: int) -> dict[str, Tensor]:
        cfg = self.cfg
        self.head.tau = gumbel_temperature(step, cfg.tau0, cfg.tau_min, cfg.anneal_rate)
        out = super().train_step({**batch, "x": self.one_hot(batch["x"])}, optimizers, step)
        return {**out, "tau": torch.tensor(self.head.tau)}

    @property
    def latent_dim(self) -> int:
        """Width of the whole latent of one sample: z (``cfg.latent_dim``) and one standard
        normal per position and token, which ``generate`` turns into the Gumbel noise."""
        return self.cfg.latent_dim + self.spec.shape[0] * self.vocab_size

    def logits(self, z: Tensor) -> Tensor:
        """z (B, cfg.latent_dim) -> the generator's logits (B, L, V), before the head."""
        return self.generator[0](z)

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Token ids (B, L) int64 of latents (B, latent_dim), standard normal for a sample:
        the first ``cfg.latent_dim`` are the generator's z, the rest u give the Gumbel noise g
        of every position and token, and each position takes argmax(logits + g). u = 0 gives
        every position its mode, argmax(logits). ``labels`` are ignored (unconditional)."""
        width = self.cfg.latent_dim
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ConfigError(
                f"gsgan latents are (n, {self.latent_dim}): z ({width}) and the Gumbel noise "
                f"({self.latent_dim - width}); got {tuple(z.shape)}"
            )
        z = z.to(self.device)
        logits = self.logits(z[:, :width])
        return (logits + gumbel_from_normal(z[:, width:]).view_as(logits)).argmax(-1)

    def sample(self, n, *, labels=None, generator=None) -> Tensor:
        """n token sequences, int64 (n, L): ``generate`` of N(0, I) latents."""
        with evaluating(self):
            return self.generate(self.latent_noise(n, self.latent_dim, generator))
