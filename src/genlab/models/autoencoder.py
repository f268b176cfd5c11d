"""Deterministic and denoising autoencoders.

Autoencoder: Hinton & Salakhutdinov 2006, "Reducing the Dimensionality of Data with Neural
Networks", Science 313(5786):504-507, doi:10.1126/science.1127647. An encoder maps an image x
to a code z = f(x), a decoder maps it back, and the loss per image is a reconstruction error
summed over pixels (mean over the batch): ``mse`` = sum (g(z) - x)^2 on [-1, 1] images, or
``bce`` = the Bernoulli negative log-likelihood of the [0, 1] intensities given decoder logits.

Denoising autoencoder: Vincent et al. 2008, "Extracting and Composing Robust Features with
Denoising Autoencoders", ICML, doi:10.1145/1390156.1390294. The encoder sees a corrupted
x~ ~ q(x~ | x), the loss compares g(f(x~)) with the clean x. ``dae`` is this class with
corruption switched on by its registry defaults. Salt-and-pepper noise is from Vincent et al.
2010, "Stacked Denoising Autoencoders", JMLR 11:3371-3408.

Sampling: an autoencoder has no prior. ``sample`` decodes codes drawn from the Gaussian fitted to
the aggregate code distribution, N(m, S) with m, S the running mean and covariance of the codes
the encoder produced during training (buffers, so they are saved with the weights and need no
extra pass over the data). For a DAE these are codes of corrupted inputs: the codes the decoder
was trained to map to clean images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field, ValidationInfo, field_validator
from torch import Tensor

from genlab.core.config import ModelConfig, TrainConfig
from genlab.core.registry import MODELS
from genlab.data.base import Batch, DataSpec
from genlab.data.pixels import from_unit, to_unit
from genlab.losses.likelihood import bernoulli_nll
from genlab.models.base import GenerativeModel, evaluating, require_image_data
from genlab.models.optim import make_optimizer
from genlab.nn.autoencoder_nets import image_decoder, image_encoder
from genlab.nn.conv import Upsample, dcgan_init
from genlab.nn.layers import LayerFactory

# ----------------------------------------------------------------------------- corruption
# Pure functions q(x~ | x): (B, C, H, W) in [-1, 1] -> same shape in [-1, 1]. Noise is drawn on
# the generator's device (a CPU generator works for CUDA images) and moved to the images.


def _draw(
    fn: Callable, shape: tuple[int, ...], x: Tensor, generator: torch.Generator | None
) -> Tensor:
    device = generator.device if generator is not None else x.device
    return fn(shape, generator=generator, device=device).to(x.device)


def _pixel_uniform(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """U[0, 1) per pixel position, (B, 1, H, W): all channels of a pixel are hit together."""
    return _draw(torch.rand, (x.shape[0], 1, *x.shape[2:]), x, generator)


def no_corruption(x: Tensor, level: float, generator: torch.Generator | None = None) -> Tensor:
    return x


def gaussian_corruption(
    x: Tensor, level: float, generator: torch.Generator | None = None
) -> Tensor:
    """x + level * eps, eps ~ N(0, 1) per value, clamped to [-1, 1]; level is a std in [-1, 1]
    pixel units (0.5 is a quarter of the [0, 1] range)."""
    noise = _draw(torch.randn, tuple(x.shape), x, generator)
    return (x + level * noise).clamp(-1.0, 1.0)


def mask_corruption(x: Tensor, level: float, generator: torch.Generator | None = None) -> Tensor:
    """Each pixel independently set to the background value -1 with probability ``level``
    (Vincent et al. 2008's masking noise, Bernoulli per pixel rather than a fixed count)."""
    hit = _pixel_uniform(x, generator) < level
    return torch.where(hit, torch.full_like(x, -1.0), x)


def salt_pepper_corruption(
    x: Tensor, level: float, generator: torch.Generator | None = None
) -> Tensor:
    """Each pixel replaced with probability ``level``: by +1 or -1 with equal odds. One uniform
    u per pixel decides both: u < level/2 -> +1, level/2 <= u < level -> -1."""
    u = _pixel_uniform(x, generator)
    out = torch.where(u < level, torch.full_like(x, -1.0), x)
    return torch.where(u < level / 2, torch.ones_like(x), out)


Corruption = Callable[[Tensor, float, torch.Generator | None], Tensor]
CORRUPTIONS: dict[str, Corruption] = {
    "none": no_corruption,
    "gaussian": gaussian_corruption,
    "mask": mask_corruption,
    "salt_pepper": salt_pepper_corruption,
}
# Corruptions whose level is a probability.
FRACTION_CORRUPTIONS = ("mask", "salt_pepper")


def corruption_problem(kind: str, level: float) -> str | None:
    """Why (kind, level) is not a valid corruption, or None when it is."""
    if kind not in CORRUPTIONS:
        return f"unknown corruption {kind!r}; choose from {', '.join(CORRUPTIONS)}"
    if not 0.0 <= level < float("inf"):
        return "the noise level must be a finite number >= 0"
    if kind in FRACTION_CORRUPTIONS and level > 1.0:
        return f"for {kind} the noise level is a fraction of pixels; use a value in [0, 1]"
    return None


def config_corruption_problem(kind: str, level: float) -> str | None:
    """As ``corruption_problem``, and a training corruption must do something: level > 0."""
    if kind != "none" and level == 0.0:
        return f"corruption {kind!r} with noise_level 0 changes nothing; set a level > 0"
    return corruption_problem(kind, level)


# ----------------------------------------------------------------------------- reconstruction


@dataclass(frozen=True)
class ReconLoss:
    """How decoder outputs (B, C, H, W) become a loss per image (B,) and a mean image."""

    loss: Callable[[Tensor, Tensor], Tensor]  # (decoder output, clean x in [-1, 1]) -> (B,)
    mean: Callable[[Tensor], Tensor]  # decoder output -> image in [-1, 1]


def squared_error(out: Tensor, x: Tensor) -> Tensor:
    """sum over pixels of (out - x)^2, on [-1, 1] images: (B, ...) -> (B,)."""
    return (out - x).pow(2).flatten(1).sum(1)


def bernoulli_error(logits: Tensor, x: Tensor) -> Tensor:
    """-log Bernoulli((x + 1) / 2 | sigmoid(logits)) summed over pixels: (B, ...) -> (B,)."""
    return bernoulli_nll(logits, to_unit(x))


RECON_LOSSES: dict[str, ReconLoss] = {
    "mse": ReconLoss(squared_error, lambda out: out.clamp(-1.0, 1.0)),
    "bce": ReconLoss(bernoulli_error, lambda logits: from_unit(torch.sigmoid(logits))),
}

# ----------------------------------------------------------------------------- code statistics


def update_moments(
    mean: Tensor, cov: Tensor, codes: Tensor, weight: float | Tensor
) -> tuple[Tensor, Tensor]:
    """Mean (D,) and covariance (D, D) of the mixture of the running Gaussian (weight 1 - w) and
    the batch ``codes`` (B, D) (weight w): the exact pooled moments, without the cancellation of
    E[zz^T] - mm^T. Weights 1, 1/2, 1/3, ... give the plain mean/covariance of all codes seen."""
    b_mean = codes.mean(0)
    centred = codes - b_mean
    b_cov = centred.T @ centred / codes.shape[0]  # biased (1/B): a moment, not an estimator
    new_mean = (1 - weight) * mean + weight * b_mean
    d_old, d_new = mean - new_mean, b_mean - new_mean
    new_cov = (1 - weight) * (cov + torch.outer(d_old, d_old))
    new_cov = new_cov + weight * (b_cov + torch.outer(d_new, d_new))
    return new_mean, new_cov


def gaussian_factor(cov: Tensor, jitter: float = 1e-5) -> Tensor:
    """Lower-triangular L with L L^T = cov + jitter * (mean variance + 1e-3) * I, (D, D), in
    float64 so a nearly singular covariance (a code dimension the encoder ignores) still
    factors."""
    c = cov.double()
    scale = jitter * (c.diagonal().mean().clamp_min(0) + 1e-3)
    eye = torch.eye(c.shape[0], dtype=c.dtype, device=c.device)
    return torch.linalg.cholesky(0.5 * (c + c.T) + scale * eye).to(cov.dtype)


# ----------------------------------------------------------------------------- model


class AEConfig(ModelConfig):
    arch: Literal["mlp", "conv"] = Field("conv", description="encoder/decoder family")
    latent_dim: int = Field(16, ge=1, description="width of the code z")
    hidden: list[int] = Field([512, 256], description="mlp: hidden widths (encoder order)")
    width: int = Field(32, ge=1, description="conv: channels of the first encoder layer")
    norm: Literal["batch", "layer", "none"] = Field(
        "batch", description="normalisation between hidden layers"
    )
    bias: bool = Field(True, description="mlp: biases in the linear layers")
    upsample: Upsample = Field(
        "transposed", description="conv decoder: transposed convs or nearest resize + 3x3 conv"
    )
    loss: Literal[tuple(RECON_LOSSES)] = Field(  # type: ignore[valid-type]
        "mse", description="mse on [-1, 1] images or bce on [0, 1] intensities"
    )
    corruption: Literal[tuple(CORRUPTIONS)] = Field(  # type: ignore[valid-type]
        "none", description="noise the encoder sees during training (denoising AE)"
    )
    noise_level: float = Field(
        0.0,
        ge=0,
        validate_default=True,  # checked against ``corruption`` even when left at 0
        description="gaussian: std in [-1, 1] units; mask, salt_pepper: fraction",
    )
    code_momentum: float = Field(
        0.01,
        gt=0,
        le=1,
        description="weight of a new batch in the running code mean/covariance (sampling)",
    )

    @field_validator("noise_level")
    @classmethod
    def _level_fits_kind(cls, level: float, info: ValidationInfo) -> float:
        problem = config_corruption_problem(info.data.get("corruption", "none"), level)
        if problem:
            raise ValueError(problem)
        return level


@MODELS.register(
    "dae",
    defaults={"corruption": "mask", "noise_level": 0.25},
    help="denoising autoencoder: the encoder sees a corrupted image",
)
@MODELS.register("ae", help="deterministic autoencoder, MLP or convolutional")
class Autoencoder(GenerativeModel):
    Config = AEConfig
    ema_target = "decoder"

    def __init__(self, cfg: AEConfig, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        require_image_data(cfg.name, spec)
        d, factory = cfg.latent_dim, LayerFactory(norm=cfg.norm)
        nets = {"arch": cfg.arch, "width": cfg.width, "hidden": cfg.hidden, "factory": factory}
        nets.update(bias=cfg.bias, mlp_norm=True)  # model.norm applies to the MLP too
        self.encoder = image_encoder(spec.shape, d, **nets)
        self.decoder = image_decoder(d, spec.shape, upsample=cfg.upsample, **nets)
        if cfg.arch == "conv":
            dcgan_init(self)
        self.recon = RECON_LOSSES[cfg.loss]
        self.corruption = CORRUPTIONS[cfg.corruption]
        # The sampler's Gaussian; N(0, I) until the first training step replaces it.
        self.register_buffer("code_mean", torch.zeros(d))
        self.register_buffer("code_cov", torch.eye(d))
        self.register_buffer("code_updates", torch.zeros((), dtype=torch.int64))

    # ------------------------------------------------------------------ encoder contract
    @property
    def code_dim(self) -> int:
        return self.cfg.latent_dim

    def encode(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """(B, C, H, W) in [-1, 1] -> codes (B, code_dim). ``labels`` are ignored."""
        return self.encoder(x)

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """(B, code_dim) -> the decoded image (B, C, H, W) in [-1, 1]. ``labels`` are ignored."""
        return self.recon.mean(self.decoder(z))

    def reconstruct(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """decode(encode(x)) in eval mode without gradients: (B, C, H, W) -> (B, C, H, W)."""
        with evaluating(self):
            return self.decode(self.encode(x))

    def corrupt(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The training corruption q(x~ | x) of this model's config; identity for a plain AE."""
        return self.corruption(x, self.cfg.noise_level, generator)

    # ------------------------------------------------------------------ training
    def configure_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        return {"ae": make_optimizer(self.parameters(), train)}

    def train_step(self, batch: Batch, optimizers, step: int) -> dict[str, Tensor]:
        x = batch["x"]
        z = self.encoder(self.corrupt(x))  # the encoder sees x~, the loss compares with x
        loss = self.recon.loss(self.decoder(z), x).mean()
        opt = optimizers["ae"]
        opt.zero_grad(set_to_none=True)
        self.backward(loss)
        self.step(opt)
        self.track_codes(z.detach())
        return {"loss": loss.detach()}

    @torch.no_grad()
    def track_codes(self, codes: Tensor) -> None:
        """Fold a batch of codes (B, code_dim) into the running mean and covariance. The batch
        weight is 1/t for the t-th batch (an exact running average) until that falls below
        ``code_momentum``, then stays there, so the stale codes of an early encoder fade out."""
        self.code_updates += 1
        # A (0-d) tensor, so the step never waits for the device to report the count.
        weight = (1.0 / self.code_updates.float()).clamp_min(self.cfg.code_momentum)
        mean, cov = update_moments(self.code_mean, self.code_cov, codes.float(), weight)
        self.code_mean.copy_(mean)
        self.code_cov.copy_(cov)

    # ------------------------------------------------------------------ sampling
    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Generator contract: N(0, I) noise (n, D) -> the decoded codes code_mean + L z
        (L L^T = code_cov): (n, C, H, W) in [-1, 1]. ``labels`` are ignored."""
        z = z.to(self.code_mean.device)
        return self.decode(self.code_mean + z @ gaussian_factor(self.code_cov).T)

    def sample(self, n, *, labels=None, generator=None) -> Tensor:
        """Decode n codes drawn from N(code_mean, code_cov): (n, C, H, W) in [-1, 1]."""
        with evaluating(self):
            return self.generate(self.latent_noise(n, self.code_dim, generator))  # eps (n, D)
