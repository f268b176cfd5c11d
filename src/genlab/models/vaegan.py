"""VAE-GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric",
arXiv:1512.09300).

A VAE whose decoder is also a GAN generator, and whose reconstruction error is measured in the
features of the GAN's discriminator instead of in pixels. With Dis_l(x) the output of the
discriminator's ``feature_layer``-th block, per image (Algorithm 1 of the paper):

    L_prior = KL(q(z|x) || N(0, I))
    L_llike = -log N(Dis_l(x) | Dis_l(x~), I) = 1/2 ||Dis_l(x) - Dis_l(x~)||^2 (+ const),
              x~ = Dec(z), z ~ q(z|x)
    L_GAN   = log Dis(x) + log(1 - Dis(x~)) + log(1 - Dis(x_p)),   x_p = Dec(z_p), z_p ~ N(0, I)

and each network follows its own objective, all gradients taken at the same weights:
encoder on L_prior + L_llike, decoder on gamma * L_llike - L_GAN (the generator half of the loss
pair, non-saturating by default, on both fakes), discriminator on L_GAN (the discriminator half,
with x~ and x_p pooled as fakes).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from genlab.core.config import ModelConfig, TrainConfig
from genlab.core.errors import ConfigError
from genlab.core.registry import MODELS
from genlab.data.base import Batch, DataSpec
from genlab.losses.adversarial import ADVERSARIAL_LOSSES
from genlab.losses.likelihood import gaussian_kl_std_normal
from genlab.models.base import GenerativeModel, evaluating, require_image_data
from genlab.models.optim import make_optimizer
from genlab.nn.autoencoder_nets import conv_blocks, image_decoder, image_encoder
from genlab.nn.conv import ConvEncoder, dcgan_init
from genlab.nn.layers import LayerFactory, Norm


class VAEGANConfig(ModelConfig):
    latent_dim: int = Field(32, ge=1, description="size of z")
    width: int = Field(
        32, ge=1, description="channels of the encoder's first (decoder's last) layer"
    )
    d_width: int = Field(32, ge=1, description="channels of the discriminator's first layer")
    norm: Literal["batch", "layer", "none"] = Field("batch", description="encoder/decoder norm")
    d_norm: Norm = Field("batch", description="discriminator normalisation")
    loss: Literal[tuple(ADVERSARIAL_LOSSES)] = Field(  # type: ignore[valid-type]
        "nonsaturating", description="adversarial loss pair"
    )
    gamma: float = Field(
        0.01, ge=0, description="weight of L_llike against the GAN loss in the decoder's update"
    )
    feature_layer: int = Field(2, ge=1, description="discriminator block whose output is Dis_l")


def feature_nll(real: Tensor, fake: Tensor) -> Tensor:
    """-log N(real | fake, I) up to its constant: 1/2 sum of squared differences per example,
    (B, ...) -> (B,). Zero exactly when the features agree."""
    return 0.5 * (real - fake).pow(2).flatten(1).sum(1)


class FeatureDiscriminator(nn.Module):
    """(B, C, S, S) -> (logits (B,), features of block ``feature_layer`` (B, c, s, s)).

    The DCGAN trunk of ``ConvEncoder`` cut into its stride-2 blocks, then a linear head."""

    def __init__(self, spec: DataSpec, width: int, factory: LayerFactory, feature_layer: int):
        super().__init__()
        c, size, _ = spec.shape
        trunk = ConvEncoder(c, size, width, factory)
        self.blocks = conv_blocks(trunk)
        if feature_layer > len(self.blocks):
            raise ConfigError(
                f"model.feature_layer={feature_layer}, but the discriminator has "
                f"{len(self.blocks)} block(s) at {size}x{size}; use 1 to {len(self.blocks)}"
            )
        self.feature_layer = feature_layer
        self.head = nn.Sequential(nn.Flatten(), factory.linear(trunk.features, 1))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = x
        for i, block in enumerate(self.blocks, start=1):
            x = block(x)
            if i == self.feature_layer:
                features = x
        return self.head(x).squeeze(1), features


@MODELS.register("vaegan", help="VAE-GAN: VAE with a discriminator-feature reconstruction loss")
class VAEGAN(GenerativeModel):
    Config = VAEGANConfig
    ema_target = "decoder"

    def __init__(self, cfg: VAEGANConfig, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        require_image_data(cfg.name, spec)
        d, factory = cfg.latent_dim, LayerFactory(norm=cfg.norm)
        nets = {"arch": "conv", "width": cfg.width, "hidden": (), "factory": factory}
        self.encoder = image_encoder(spec.shape, 2 * d, **nets)  # -> (mu, logvar)
        # The decoder is the GAN generator: tanh puts its images in [-1, 1].
        self.decoder = nn.Sequential(image_decoder(d, spec.shape, **nets), nn.Tanh())
        d_factory = LayerFactory(norm=cfg.d_norm)
        self.discriminator = FeatureDiscriminator(spec, cfg.d_width, d_factory, cfg.feature_layer)
        dcgan_init(self)
        self.loss_pair = ADVERSARIAL_LOSSES[cfg.loss]

    # ------------------------------------------------------------------ encoder contract
    @property
    def code_dim(self) -> int:
        return self.cfg.latent_dim

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, H, W) in [-1, 1] -> (mu, logvar), each (B, latent_dim)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def encode(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """The posterior mean (B, latent_dim). ``labels`` are ignored."""
        return self.posterior(x)[0]

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """(B, latent_dim) -> images (B, C, H, W) in [-1, 1]."""
        return self.decoder(z)

    def reconstruct(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        with evaluating(self):
            return self.decode(self.encode(x))

    # ------------------------------------------------------------------ training
    def configure_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        return {
            "encoder": make_optimizer(self.encoder.parameters(), train),
            "decoder": make_optimizer(self.decoder.parameters(), train),
            "discriminator": make_optimizer(self.discriminator.parameters(), train, train.lr_d),
        }

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        """The scalar terms of Algorithm 1 for a batch (B, C, H, W), with their graphs."""
        b = len(x)
        mu, logvar = self.posterior(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        fakes = self.decoder(torch.cat([z, torch.randn_like(mu)]))  # (2B, ...): x~ then x_p
        # One discriminator pass over real and fakes, so Dis_l(x) and Dis_l(x~) go through the
        # same batch statistics and their difference measures the images, not the batches.
        logits, features = self.discriminator(torch.cat([x, fakes]))
        d_real, d_fake = logits[:b], logits[b:]
        # Dis_l(x) is a fixed target for the encoder and decoder.
        llike = feature_nll(features[:b].detach(), features[b : 2 * b]).mean()
        return {
            "kl": gaussian_kl_std_normal(mu, logvar).mean(),
            "llike": llike,
            "d_loss": self.loss_pair.d(d_real, d_fake),
            "g_loss": self.loss_pair.g(d_fake),
            "mse": (fakes[:b] - x).pow(2).mean().detach() / 4,  # per pixel on the [0, 1] scale
        }

    def train_step(self, batch: Batch, optimizers, step: int) -> dict[str, Tensor]:
        t = self.losses(batch["x"])
        for opt in optimizers.values():
            opt.zero_grad(set_to_none=True)
        # Each objective reaches only its own network's weights (``inputs=``), so the three
        # updates use gradients at the same weights, as in Algorithm 1.
        enc = list(self.encoder.parameters())
        dec = list(self.decoder.parameters())
        self.backward(t["kl"] + t["llike"], inputs=enc, retain_graph=True)
        self.backward(self.cfg.gamma * t["llike"] + t["g_loss"], inputs=dec, retain_graph=True)
        self.backward(t["d_loss"], inputs=list(self.discriminator.parameters()))
        self.step(*optimizers.values())
        return {k: v.detach() for k, v in t.items()}

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Generator contract: z (n, latent_dim) -> images (n, C, H, W) in [-1, 1]."""
        return self.decode(z.to(self.device))

    def sample(self, n, *, labels=None, generator=None) -> Tensor:
        with evaluating(self):
            return self.generate(self.latent_noise(n, self.cfg.latent_dim, generator))
