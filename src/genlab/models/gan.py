"""Generative adversarial networks (Goodfellow et al. 2014, arXiv:1406.2661) as one class.

Variants are configurations: ``dcgan`` (Radford et al. 2016, arXiv:1511.06434) is this GAN with
convolutional networks, batch norm and the non-saturating loss; the 2-D ``gan`` uses MLPs. The
loss pair comes from ``ADVERSARIAL_LOSSES``, normalisation and spectral norm from the layer
factory, so later variants (WGAN, SN-GAN, ...) are presets, not new classes.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from genlab.config import ModelConfig, TrainConfig
from genlab.data.base import DataSpec
from genlab.errors import ConfigError
from genlab.losses.adversarial import ADVERSARIAL_LOSSES
from genlab.models.base import Batch, GenerativeModel, evaluating
from genlab.nn.conv import ConvDecoder, ConvEncoder, dcgan_init
from genlab.nn.layers import LayerFactory, Norm
from genlab.nn.mlp import mlp
from genlab.registry import MODELS
from genlab.training.optim import make_optimizer


class GANConfig(ModelConfig):
    arch: Literal["mlp", "conv"] = Field("conv", description="network family")
    latent_dim: int = Field(100, ge=1)
    g_width: int = Field(64, ge=1, description="conv: generator channels at the output end")
    d_width: int = Field(64, ge=1, description="conv: discriminator channels of the first layer")
    hidden: list[int] = Field([128, 128], description="mlp: hidden widths of G and D")
    loss: Literal[tuple(ADVERSARIAL_LOSSES)] = "nonsaturating"  # type: ignore[valid-type]
    g_norm: Norm = "batch"
    d_norm: Norm = "batch"
    spectral_norm: bool = Field(False, description="spectral norm on the discriminator")
    n_critic: int = Field(1, ge=1, description="discriminator updates per generator update")


@MODELS.register(
    "gan",
    defaults={"arch": "mlp", "latent_dim": 16, "g_norm": "none", "d_norm": "none"},
    help="GAN with MLP networks (2-D data)",
)
@MODELS.register("dcgan", defaults={"arch": "conv"}, help="DCGAN: conv nets, batch norm, NS loss")
class GAN(GenerativeModel):
    Config = GANConfig
    ema_target = "generator"

    def __init__(self, cfg: GANConfig, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        g_factory = LayerFactory(norm=cfg.g_norm)
        d_factory = LayerFactory(norm=cfg.d_norm, spectral=cfg.spectral_norm)
        if cfg.arch == "conv":
            if spec.kind != "image":
                raise ConfigError("model.arch=conv needs image data; use model.arch=mlp for points")
            c, h, _ = spec.shape
            # Tanh output: images live in [-1, 1] inside models.
            self.generator = nn.Sequential(
                ConvDecoder(cfg.latent_dim, c, h, cfg.g_width, g_factory), nn.Tanh()
            )
            trunk = ConvEncoder(c, h, cfg.d_width, d_factory)
            self.discriminator = nn.Sequential(trunk, d_factory.linear(trunk.features, 1))
            dcgan_init(self)
        else:
            dim = int(torch.tensor(spec.shape).prod())
            out: list[nn.Module] = [nn.Unflatten(1, spec.shape)]
            if spec.kind == "image":
                out.append(nn.Tanh())
            self.generator = nn.Sequential(
                mlp([cfg.latent_dim, *cfg.hidden, dim], factory=g_factory), *out
            )
            self.discriminator = nn.Sequential(
                nn.Flatten(),
                mlp([dim, *cfg.hidden, 1], act=lambda: nn.LeakyReLU(0.2), factory=d_factory),
            )
        self.loss_pair = ADVERSARIAL_LOSSES[cfg.loss]

    def configure_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        return {
            "generator": make_optimizer(self.generator.parameters(), train),
            "discriminator": make_optimizer(self.discriminator.parameters(), train, train.lr_d),
        }

    def critic(self, x: Tensor) -> Tensor:
        """Discriminator logits / critic scores, (B,)."""
        return self.discriminator(x).squeeze(1)

    def train_step(self, batch: Batch, optimizers, step: int) -> dict[str, Tensor]:
        real = batch["x"]
        opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]
        b = real.shape[0]
        for _ in range(self.cfg.n_critic):
            with torch.no_grad():
                fake = self.generator(torch.randn(b, self.cfg.latent_dim, device=real.device))
            d_real, d_fake = self.critic(real), self.critic(fake)
            d_loss = self.loss_pair.d(d_real, d_fake)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        # Generator update; D's parameters need no gradient here.
        self.discriminator.requires_grad_(False)
        fake = self.generator(torch.randn(b, self.cfg.latent_dim, device=real.device))
        g_loss = self.loss_pair.g(self.critic(fake))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        self.discriminator.requires_grad_(True)
        return {
            "d_loss": d_loss.detach(),
            "g_loss": g_loss.detach(),
            "d_real": d_real.detach().mean(),
            "d_fake": d_fake.detach().mean(),
        }

    def sample(self, n, *, labels=None, generator=None) -> Tensor:
        with evaluating(self):
            return self.generator(self.latent_noise(n, self.cfg.latent_dim, generator))
