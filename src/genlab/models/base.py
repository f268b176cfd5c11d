"""The model contract (DESIGN.md): a model owns its update, the trainer owns time.

Every model implements ``configure_optimizers``, ``train_step`` (its own zero_grad / backward /
step, so GANs and critic iterations need no special trainer) and ``sample``.

Models with an encoder (AE, DAE, VAE, AAE, VAE-GAN) also implement, with ``labels`` (B,) int64
used only by class-conditional models (``cfg.num_classes`` set) and ignored otherwise:

- ``code_dim: int``, the width of a latent code;
- ``encode(x, labels=None) -> (B, code_dim)``: the deterministic code of (B, C, H, W) images in
  [-1, 1] (the posterior mean for VAEs, the probabilities for a categorical latent);
- ``decode(z, labels=None) -> (B, C, H, W)`` in [-1, 1]: the mean image of a code;
- ``reconstruct(x, labels=None)``: ``decode(encode(x))`` in eval mode without gradients.

The latent tools (interpolation, attribute vectors, traversals, scatter plots) use only these.
Models with a likelihood (VAEs) add ``log_importance_weights(x, k, labels=None, generator=None)
-> (k, B)``: log p(x, z_i) - log q(z_i | x) for k posterior samples z_i, in nats; its mean over
k is the ELBO and its log-mean-exp the IWAE bound (``genlab eval``).

Models that generate from a latent (GAN and its variants, VAE, AE / DAE, AAE, VAE-GAN) also
implement the generator contract (``has_generator``):

- ``latent_dim: int``, the width of the latent noise z;
- ``generate(z, labels=None) -> samples``: latents (n, latent_dim) -> what ``sample`` returns
  (images (n, C, H, W) in [-1, 1], or points), in the module's current mode (callers wrap it
  in ``evaluating``); ``sample(n)`` is ``generate`` of latent noise z ~ N(0, I) drawn with its
  generator. Where the prior is not N(0, I) the model maps N(0, I) onto it: the AE through the
  Gaussian fitted to its codes, a lognormal VAE by exp, a categorical VAE by a per-group argmax
  (uniform groups); an AAE with a mixture prior reads z as a code and samples its prior instead.
- class-conditional generators have ``num_classes: int`` and take labels (n,) int64 (None:
  0, 1, ..., K-1, 0, ...); attribute-conditional ones have ``num_attrs: int`` and take (n, A)
  float 0/1; both may add ``sample_labels(n, labels=None, generator=None)``, the checked labels
  or the defaults that ``sample`` uses. Unconditional generators ignore labels.

Truncation, interpolation and class grids (``genlab.models.sampling``, ``genlab sample``) use
only this.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import ClassVar

import torch
from torch import Tensor, nn

from genlab.core.config import ModelConfig, TrainConfig
from genlab.core.errors import ConfigError
from genlab.core.registry import MODELS
from genlab.data.base import Batch, DataSpec


# "x": (B, C, H, W) in [-1, 1] or (B, D) points; "y": (B,) int64 labels when the data has them;
# "attrs": (B, A) float 0/1 binary attributes when the data has them.
class GenerativeModel(nn.Module):
    Config: ClassVar[type[ModelConfig]]
    # Name of the submodule that ``train.ema`` averages and sampling uses (generator/decoder).
    ema_target: ClassVar[str | None] = None

    def __init__(self, cfg: ModelConfig, spec: DataSpec) -> None:
        super().__init__()
        self.cfg = cfg
        self.spec = spec

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def configure_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(
        self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer], step: int
    ) -> dict[str, Tensor | float]:
        """One update. Returns detached scalars to log; the trainer syncs them only when it logs."""
        raise NotImplementedError

    def batches_for_step(self, step: int) -> int:
        """How many batches the trainer hands to ``train_step`` at ``step``: they arrive
        stacked along dim 0 (k * batch_size rows), so a model that updates k times in a step
        (a GAN's critic iterations) reads a fresh batch for each update. Default 1."""
        return 1

    def sample(
        self, n: int, *, labels: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """n samples: images (n, C, H, W) in [-1, 1], or points (n, D)."""
        raise NotImplementedError

    # The fp16 gradient scaler (train.precision=fp16), set by the trainer; None otherwise.
    grad_scaler: torch.amp.GradScaler | None = None

    def backward(self, loss: Tensor, **kwargs) -> None:
        """``loss.backward(**kwargs)``, scaled by the fp16 gradient scaler when there is one.
        Models call this and ``step`` instead of the tensor's and optimizer's own methods."""
        (loss if self.grad_scaler is None else self.grad_scaler.scale(loss)).backward(**kwargs)

    def step(self, *optimizers: torch.optim.Optimizer) -> None:
        """Step each optimizer; under fp16 through the scaler (which unscales the gradients and
        skips a step whose gradients overflowed), then one scale update."""
        if self.grad_scaler is None:
            for opt in optimizers:
                opt.step()
            return
        for opt in optimizers:
            self.grad_scaler.step(opt)
        self.grad_scaler.update()

    def latent_noise(
        self,
        n: int,
        dim: int,
        generator: torch.Generator | None,
        device: torch.device | None = None,
    ) -> Tensor:
        """Standard normal (n, dim) on ``device`` (default: the model's); drawn on the
        generator's device. Callers in a training step pass ``device``, which saves a walk
        over the parameters per call."""
        device = self.device if device is None else device
        gen_device = generator.device if generator is not None else device
        return torch.randn(n, dim, generator=generator, device=gen_device).to(device)


def require_image_data(name: str, spec: DataSpec) -> None:
    """The one-line error of an image model built on other data (2-D points, clicks)."""
    if spec.kind != "image":
        raise ConfigError(f"model {name!r} needs image data; use an image dataset such as digits")


def has_encoder(model: nn.Module) -> bool:
    """True for models that implement the encoder contract above."""
    return all(hasattr(model, a) for a in ("encode", "decode", "reconstruct", "code_dim"))


def has_generator(model: nn.Module) -> bool:
    """True for models that implement the generator contract above."""
    return hasattr(model, "generate") and isinstance(getattr(model, "latent_dim", None), int)


@contextmanager
def evaluating(module: nn.Module) -> Iterator[None]:
    """Eval mode and no grad inside, the previous mode restored after."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        module.train(was_training)


@contextmanager
def frozen(net: nn.Module) -> Iterator[None]:
    """``net``'s weights get no gradient inside: a generator's update through a fixed
    discriminator. Under data parallel training the pass through ``net`` is also kept out of
    its gradient synchronisation (DDP ``no_sync``), since no gradient of it will arrive."""
    net.requires_grad_(False)
    try:
        with getattr(net, "no_sync", nullcontext)():
            yield
    finally:
        net.requires_grad_(True)


def build_model(cfg: ModelConfig, spec: DataSpec) -> GenerativeModel:
    """Instantiate the registered model ``cfg.name`` for data described by ``spec``."""
    return MODELS.get(cfg.name)(cfg, spec)
