"""Variational autoencoder (Kingma & Welling 2014, arXiv:1312.6114).

q(z|x) = N(mu(x), diag sigma^2(x)), p(z) = N(0, I), p(x|z) Bernoulli on pixel intensities in
[0, 1] or Gaussian on [-1, 1]. The loss per image, in nats, is
    recon + beta * KL = -E_q[log p(x|z)] + beta * KL(q(z|x) || p(z)),
estimated with one reparameterised sample z = mu + sigma * eps (beta = 1 is the negative ELBO;
beta-VAE, Higgins et al. 2017, weighs the KL term).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from genlab.config import ModelConfig, TrainConfig
from genlab.data.base import DataSpec
from genlab.data.pixels import from_unit, to_unit
from genlab.errors import ConfigError
from genlab.losses.likelihood import bernoulli_nll, gaussian_kl_std_normal, gaussian_nll
from genlab.models.base import Batch, GenerativeModel, evaluating
from genlab.nn.conv import ConvDecoder, ConvEncoder, dcgan_init
from genlab.nn.layers import LayerFactory
from genlab.nn.mlp import mlp
from genlab.registry import MODELS
from genlab.training.optim import make_optimizer


class VAEConfig(ModelConfig):
    arch: Literal["mlp", "conv"] = Field("conv", description="encoder/decoder family")
    latent_dim: int = Field(16, ge=1)
    hidden: list[int] = Field([512, 256], description="mlp: hidden widths (encoder order)")
    width: int = Field(32, ge=1, description="conv: channels of the first encoder layer")
    norm: Literal["batch", "layer", "none"] = Field("batch", description="conv: normalisation")
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    sigma: float | None = Field(None, gt=0, description="gaussian std on [-1, 1]; None = learned")
    beta: float = Field(1.0, ge=0, description="weight of the KL term")


@MODELS.register("vae", help="variational autoencoder, MLP or convolutional")
class VAE(GenerativeModel):
    Config = VAEConfig
    ema_target = "decoder"

    def __init__(self, cfg: VAEConfig, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        if spec.kind != "image":
            raise ConfigError("model 'vae' needs image data; use an image dataset such as digits")
        c, h, w = spec.shape
        d, factory = cfg.latent_dim, LayerFactory(norm=cfg.norm)
        if cfg.arch == "conv":
            trunk = ConvEncoder(c, h, cfg.width, factory)
            self.encoder = nn.Sequential(trunk, nn.Linear(trunk.features, 2 * d))
            self.decoder = ConvDecoder(d, c, h, cfg.width, factory)
            dcgan_init(self)
        else:
            pixels = c * h * w
            self.encoder = nn.Sequential(nn.Flatten(), mlp([pixels, *cfg.hidden, 2 * d]))
            self.decoder = nn.Sequential(
                mlp([d, *reversed(cfg.hidden), pixels]), nn.Unflatten(1, (c, h, w))
            )
        # Gaussian likelihood: one learned log-std for all pixels unless fixed by config.
        log_sigma = math.log(cfg.sigma) if cfg.sigma else 0.0
        self.log_sigma = nn.Parameter(torch.tensor(log_sigma), requires_grad=cfg.sigma is None)

    # ------------------------------------------------------------------ encoder / decoder
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, H, W) in [-1, 1] -> (mu, logvar), each (B, latent_dim)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def decode(self, z: Tensor) -> Tensor:
        """(B, latent_dim) -> the mean image (B, C, H, W) in [-1, 1]."""
        out = self.decoder(z)
        if self.cfg.likelihood == "bernoulli":
            return from_unit(torch.sigmoid(out))
        return out.clamp(-1.0, 1.0)

    def reconstruct(self, x: Tensor) -> Tensor:
        """Decode the posterior mean: (B, C, H, W) -> (B, C, H, W) in [-1, 1]."""
        with evaluating(self):
            return self.decode(self.encode(x)[0])

    def nll(self, out: Tensor, x: Tensor) -> Tensor:
        """-log p(x|z) per image (B,), from the decoder's raw output."""
        if self.cfg.likelihood == "bernoulli":
            return bernoulli_nll(out, to_unit(x))
        return gaussian_nll(out, x, self.log_sigma)

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        """Per-image terms (B,) of the objective with one reparameterised sample."""
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        recon = self.nll(self.decoder(z), x)
        kl = gaussian_kl_std_normal(mu, logvar)
        return {"recon": recon, "kl": kl, "loss": recon + self.cfg.beta * kl}

    # ------------------------------------------------------------------ contract
    def configure_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        return {"vae": make_optimizer(self.parameters(), train)}

    def train_step(self, batch: Batch, optimizers, step: int) -> dict[str, Tensor]:
        opt = optimizers["vae"]
        terms = self.losses(batch["x"])
        loss = terms["loss"].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        out = {k: v.detach().mean() for k, v in terms.items()}
        if self.cfg.likelihood == "gaussian":
            out["sigma"] = self.log_sigma.detach().exp()
        return out

    def sample(self, n, *, labels=None, generator=None) -> Tensor:
        with evaluating(self):
            return self.decode(self.latent_noise(n, self.cfg.latent_dim, generator))
