"""Adversarial autoencoder (Makhzani et al. 2015, "Adversarial Autoencoders", arXiv:1511.05644).

A deterministic encoder z = q(x), a decoder p(x|z) and a latent discriminator D(z). Where the VAE
pulls each posterior towards p(z) with a KL term, the AAE matches the *aggregated* posterior
q(z) = E_x[q(z|x)] to p(z) with a GAN played in latent space (a Jensen-Shannon objective): D
tells prior samples (real) from codes of data (fake) and the encoder, as the generator, learns
to fool it. Each step has the paper's two phases:

(a) reconstruction: encoder + decoder minimise -log p(x | z = q(x)), Bernoulli on [0, 1] pixels;
(b) regularisation: D minimises d(D(z_prior), D(q(x))), then the encoder minimises g(D(q(x))),
    with the (d, g) loss pair of ``ADVERSARIAL_LOSSES[model.loss]``.

Samples decode prior draws. The prior is ``gaussian`` or a ``mixture`` of Gaussians on a circle
(``genlab.losses.priors``).
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
from genlab.data.pixels import from_unit, to_unit
from genlab.losses.adversarial import ADVERSARIAL_LOSSES
from genlab.losses.likelihood import bernoulli_nll
from genlab.losses.priors import Prior, gaussian_prior, mixture_prior
from genlab.models.base import GenerativeModel, evaluating, frozen, require_image_data
from genlab.models.optim import make_optimizer
from genlab.nn.autoencoder_nets import image_decoder, image_encoder
from genlab.nn.conv import dcgan_init
from genlab.nn.layers import LayerFactory
from genlab.nn.mlp import mlp


class AAEConfig(ModelConfig):
    arch: Literal["mlp", "conv"] = Field("conv", description="encoder/decoder family")
    latent_dim: int = Field(8, ge=1, description="size of the code z")
    hidden: list[int] = Field([512, 256], description="mlp: hidden widths (encoder order)")
    width: int = Field(32, ge=1, description="conv: channels of the first encoder layer")
    norm: Literal["batch", "layer", "none"] = Field("batch", description="conv: normalisation")
    d_hidden: list[int] = Field([256, 256], description="hidden widths of the latent D(z)")
    loss: Literal[tuple(ADVERSARIAL_LOSSES)] = Field(  # type: ignore[valid-type]
        "nonsaturating", description="adversarial loss pair of the regularisation phase"
    )
    prior: Literal["gaussian", "mixture"] = Field("gaussian", description="p(z)")
    mixture_components: int = Field(10, ge=1, description="mixture: number of Gaussians")
    mixture_radius: float = Field(4.0, gt=0, description="mixture: radius of the circle of means")
    mixture_std: float = Field(0.5, gt=0, description="mixture: std of each Gaussian")


def build_prior(cfg: AAEConfig) -> Prior:
    """The prior the config names; a mixture needs two dimensions for its circle."""
    if cfg.prior == "gaussian":
        return gaussian_prior(cfg.latent_dim)
    if cfg.latent_dim < 2:
        raise ConfigError(
            f"model.prior=mixture places its means on a circle in the first two latent "
            f"dimensions; set model.latent_dim >= 2 (got {cfg.latent_dim})"
        )
    k, radius, std = cfg.mixture_components, cfg.mixture_radius, cfg.mixture_std
    return mixture_prior(cfg.latent_dim, k, radius, std)


@MODELS.register("aae", help="adversarial autoencoder: a GAN in latent space matches q(z) to p(z)")
class AAE(GenerativeModel):
    Config = AAEConfig
    ema_target = "decoder"

    def __init__(self, cfg: AAEConfig, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        require_image_data(cfg.name, spec)
        self.prior = build_prior(cfg)
        d, factory = cfg.latent_dim, LayerFactory(norm=cfg.norm)
        nets = {"arch": cfg.arch, "width": cfg.width, "hidden": cfg.hidden, "factory": factory}
        # The encoder's last layer is linear: codes are unbounded, like prior samples.
        self.encoder = image_encoder(spec.shape, d, **nets)
        self.decoder = image_decoder(d, spec.shape, **nets)  # Bernoulli logits
        if cfg.arch == "conv":
            dcgan_init(self)
        self.discriminator = mlp([d, *cfg.d_hidden, 1], act=lambda: nn.LeakyReLU(0.2))
        self.loss_pair = ADVERSARIAL_LOSSES[cfg.loss]

    # ------------------------------------------------------------------ encoder contract
    @property
    def code_dim(self) -> int:
        return self.cfg.latent_dim

    def encode(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """(B, C, H, W) in [-1, 1] -> codes (B, latent_dim). ``labels`` are ignored."""
        return self.encoder(x)

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """(B, latent_dim) -> the mean image (B, C, H, W) in [-1, 1]."""
        return from_unit(torch.sigmoid(self.decoder(z)))

    def reconstruct(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        with evaluating(self):
            return self.decode(self.encode(x))

    def critic(self, z: Tensor) -> Tensor:
        """D's logits for codes (B, latent_dim) -> (B,); high = "drawn from the prior"."""
        return self.discriminator(z).squeeze(1)

    # ------------------------------------------------------------------ training
    def configure_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        ae = [*self.encoder.parameters(), *self.decoder.parameters()]
        return {
            "autoencoder": make_optimizer(ae, train),  # phase (a)
            "discriminator": make_optimizer(self.discriminator.parameters(), train, train.lr_d),
            # Phase (b): the encoder as the generator of codes. Its own optimizer state, so
            # the adversarial steps are not scaled by the reconstruction gradients' moments.
            "encoder": make_optimizer(self.encoder.parameters(), train),
        }

    def train_step(self, batch: Batch, optimizers, step: int) -> dict[str, Tensor]:
        x = batch["x"]
        opt_ae, opt_d, opt_e = (optimizers[k] for k in ("autoencoder", "discriminator", "encoder"))
        # (a) reconstruction phase.
        recon = bernoulli_nll(self.decoder(self.encoder(x)), to_unit(x)).mean()
        opt_ae.zero_grad(set_to_none=True)
        self.backward(recon)
        self.step(opt_ae)
        # (b1) D: prior samples are "real", codes of the data are "fake".
        with torch.no_grad():
            codes = self.encoder(x)
        z_prior = self.prior.sample(len(x), device=x.device)
        d_loss = self.loss_pair.d(self.critic(z_prior), self.critic(codes))
        opt_d.zero_grad(set_to_none=True)
        self.backward(d_loss)
        self.step(opt_d)
        # (b2) the encoder fools D; D's parameters need no gradient here.
        with frozen(self.discriminator):
            codes = self.encoder(x)
            g_loss = self.loss_pair.g(self.critic(codes))
            opt_e.zero_grad(set_to_none=True)
            self.backward(g_loss)
            self.step(opt_e)
        return {
            "recon": recon.detach(),
            "d_loss": d_loss.detach(),
            "g_loss": g_loss.detach(),
            # Mean log p(z) of the codes: near E_p[log p(z)] when q(z) covers the prior's bulk.
            "code_logp": self.prior.log_prob(codes.detach()).mean(),
        }

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Generator contract: codes (n, latent_dim) -> images (n, C, H, W) in [-1, 1]; for the
        gaussian prior z ~ N(0, I) is a prior sample (``sample`` draws the mixture itself)."""
        return self.decode(z.to(self.device))

    def sample(self, n, *, labels=None, generator=None) -> Tensor:
        with evaluating(self):
            return self.generate(self.prior.sample(n, generator=generator, device=self.device))
