"""Bare training loops for ``genlab bench``: the same networks, optimizers and objective as a
genlab model, written as a PyTorch user would write them by hand: float batches already on the
device, forward, loss, ``zero_grad``, ``backward``, ``step``, nothing else (no data pipeline,
no logged scalars, no EMA, no checks). Timed beside genlab's own step, they turn the
framework's overhead into a measured ratio.

Each builder returns a step function ``step(x)`` for a model it can mirror exactly, or None;
``bare_step`` tries them in order. Models without a mirror are benchmarked without a ratio.
The bench runs them under the same autocast as genlab's step (with no gradient scaler under
``train.precision=fp16``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.models.base import GenerativeModel
from genlab.models.gan import GAN
from genlab.models.vae import VAE

Step = Callable[[Tensor], None]


def vae_loop(model: GenerativeModel, opts: dict) -> Step | None:
    """A Gaussian-posterior, Bernoulli-likelihood, unconditional VAE: the negative ELBO with one
    reparameterised sample, per image, averaged over the batch."""
    cfg = model.cfg
    if not isinstance(model, VAE) or cfg.num_classes is not None:
        return None
    if (cfg.posterior, cfg.likelihood) != ("gaussian", "bernoulli"):
        return None
    encoder, decoder, opt, beta = model.encoder, model.decoder, opts["vae"], cfg.beta

    def step(x: Tensor) -> None:  # x (B, C, H, W) in [-1, 1]
        mu, logvar = encoder(x).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        recon = F.binary_cross_entropy_with_logits(decoder(z), (x + 1) / 2, reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        loss = (recon + beta * kl) / len(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def gan_loop(model: GenerativeModel, opts: dict) -> Step | None:
    """An unconditional GAN with the non-saturating loss, one D update per G update, no
    penalty, clipping, packing or soft labels (gan, dcgan)."""
    cfg = model.cfg
    if type(model) is not GAN or cfg.loss != "nonsaturating" or cfg.n_critic != 1:
        return None
    plain = (cfg.gp_weight, cfg.clip, cfg.pack, cfg.condition) == (0.0, None, 1, "none")
    if not plain or (cfg.real_label, cfg.label_flip) != (1.0, 0.0):
        return None
    g, d, latent = model.generator, model.discriminator, cfg.latent_dim
    opt_g, opt_d = opts["generator"], opts["discriminator"]

    def step(x: Tensor) -> None:
        b = len(x)
        with torch.no_grad():
            fake = g(torch.randn(b, latent, device=x.device))
        d_loss = F.softplus(-d(x)).mean() + F.softplus(d(fake)).mean()  # -log D(x) - log(1-D(G))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        d.requires_grad_(False)  # G's update needs no gradient of D's weights
        g_loss = F.softplus(-d(g(torch.randn(b, latent, device=x.device)))).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        d.requires_grad_(True)

    return step


LOOPS = (vae_loop, gan_loop)


def bare_step(model: GenerativeModel, opts: dict) -> Step | None:
    """The hand-written step of ``model``'s networks, or None when none mirrors it."""
    for build in LOOPS:
        step = build(model, opts)
        if step is not None:
            return step
    return None
