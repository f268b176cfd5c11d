"""Variational autoencoder (Kingma & Welling 2014, arXiv:1312.6114) and its variants as one class.

The loss per image, in nats, is recon + beta * KL = -E_q[log p(x|z)] + beta * KL(q(z|x) || p(z)),
estimated with one reparameterised sample (beta = 1 is the negative ELBO; beta-VAE, Higgins et
al. 2017, weighs the KL term). p(x|z) is Bernoulli on pixel intensities in [0, 1] or Gaussian on
[-1, 1]. The posterior family (``model.posterior``) is chosen once, from ``POSTERIORS``:

- ``gaussian``: q = N(mu, diag sigma^2), p = N(0, I), z = mu + sigma * eps;
- ``lognormal``: z = exp(mu + sigma * eps), p = LogNormal(0, 1) per dimension;
- ``categorical``: G groups of K classes, p uniform; trained through the Gumbel-Softmax
  relaxation (Jang, Gu & Poole 2017, arXiv:1611.01144; Maddison et al. 2017, arXiv:1611.00712)
  with an annealed temperature, sampled and evaluated with hard one-hot codes.

With ``model.num_classes`` set it is a conditional VAE (Sohn, Lee & Yan 2015, "Learning
Structured Output Representation using Deep Conditional Generative Models"; conditioning as in
Kingma et al. 2014, arXiv:1406.5298): the one-hot label joins the encoder's input and the code.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from genlab.core.config import ModelConfig, TrainConfig
from genlab.core.errors import ConfigError
from genlab.core.registry import MODELS
from genlab.data.base import Batch, DataSpec
from genlab.data.pixels import from_unit, to_unit
from genlab.losses import latent as L
from genlab.losses.likelihood import bernoulli_nll, gaussian_kl_std_normal, gaussian_nll
from genlab.models.base import GenerativeModel, evaluating, require_image_data
from genlab.models.optim import make_optimizer
from genlab.nn.autoencoder_nets import image_decoder, image_encoder
from genlab.nn.conv import dcgan_init
from genlab.nn.layers import LayerFactory

Params = dict[str, Tensor]  # posterior parameters: {"mu", "logvar"} (B, d) or {"logits"} (B, G, K)


class VAEConfig(ModelConfig):
    arch: Literal["mlp", "conv"] = Field("conv", description="encoder/decoder family")
    latent_dim: int = Field(16, ge=1, description="size of z (gaussian, lognormal)")
    hidden: list[int] = Field([512, 256], description="mlp: hidden widths; [] = linear")
    bias: bool = Field(True, description="mlp: bias in the linear layers")
    width: int = Field(32, ge=1, description="conv: channels of the first encoder layer")
    norm: Literal["batch", "layer", "none"] = Field("batch", description="conv: normalisation")
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    sigma: float | None = Field(None, gt=0, description="gaussian std on [-1, 1]; None = learned")
    beta: float = Field(1.0, ge=0, description="weight of the KL term")
    posterior: Literal["gaussian", "lognormal", "categorical"] = "gaussian"
    categorical_dims: int = Field(20, ge=1, description="categorical: groups (latent variables)")
    categories: int = Field(10, ge=2, description="categorical: classes per group")
    tau0: float = Field(1.0, gt=0, description="categorical: initial Gumbel-Softmax temperature")
    tau_min: float = Field(0.5, gt=0, description="categorical: temperature floor")
    anneal_rate: float = Field(3e-5, ge=0, description="categorical: tau decay per step")
    straight_through: bool = Field(False, description="categorical: hard one-hot forward pass")
    num_classes: int | None = Field(None, ge=2, description="conditional VAE: the data's classes")


# ----------------------------------------------------------------------------- posteriors
# Each family maps the encoder's output (B, num_params) to its parameters, and gives the
# reparameterised training sample, the KL, the code, the exact sample / densities for
# importance weights, and prior samples. ``z`` is always what the decoder reads (B, code_dim).


class GaussianPosterior:
    """q(z|x) = N(mu, diag exp(logvar)), p(z) = N(0, I). The code is mu."""

    def __init__(self, cfg: VAEConfig) -> None:
        self.code_dim = cfg.latent_dim
        self.num_params = 2 * cfg.latent_dim

    def params(self, out: Tensor) -> Params:
        mu, logvar = out.chunk(2, dim=1)
        return {"mu": mu, "logvar": logvar.clamp(-30.0, 20.0)}

    def code(self, p: Params) -> Tensor:
        return p["mu"]

    def latent(self, code: Tensor) -> Tensor:
        return code

    def from_noise(self, eps: Tensor) -> Tensor:  # N(0, I) noise -> a prior sample (generate)
        return eps

    def rsample(self, p: Params, step: int) -> Tensor:
        return p["mu"] + torch.exp(0.5 * p["logvar"]) * torch.randn_like(p["mu"])

    def kl(self, p: Params) -> Tensor:
        return gaussian_kl_std_normal(p["mu"], p["logvar"])

    def sample(self, p: Params, generator: torch.Generator | None) -> Tensor:
        eps = L.draw(torch.randn, tuple(p["mu"].shape), generator, p["mu"])
        return p["mu"] + torch.exp(0.5 * p["logvar"]) * eps

    def log_q(self, z: Tensor, p: Params) -> Tensor:
        return L.gaussian_log_prob(z, p["mu"], p["logvar"])

    def log_p(self, z: Tensor) -> Tensor:
        return L.std_normal_log_prob(z)

    def prior(self, n: int, generator: torch.Generator | None, like: Tensor) -> Tensor:
        return L.draw(torch.randn, (n, self.code_dim), generator, like)

    def logs(self, step: int) -> dict[str, float]:
        return {}


class LogNormalPosterior(GaussianPosterior):
    """z = exp(u), u ~ N(mu, diag exp(logvar)); p(z) = LogNormal(0, 1) per dimension. The code
    is mu, the mean of log z (the log of the posterior median); decoding a code applies exp."""

    def latent(self, code: Tensor) -> Tensor:
        return torch.exp(code)

    def from_noise(self, eps: Tensor) -> Tensor:
        return torch.exp(eps)

    def rsample(self, p: Params, step: int) -> Tensor:
        return torch.exp(super().rsample(p, step))

    def kl(self, p: Params) -> Tensor:
        return L.lognormal_kl_std(p["mu"], p["logvar"])

    def sample(self, p: Params, generator: torch.Generator | None) -> Tensor:
        return torch.exp(super().sample(p, generator))

    def log_q(self, z: Tensor, p: Params) -> Tensor:
        return L.lognormal_log_prob(z, p["mu"], p["logvar"])

    def log_p(self, z: Tensor) -> Tensor:
        return L.std_lognormal_log_prob(z)

    def prior(self, n: int, generator: torch.Generator | None, like: Tensor) -> Tensor:
        return torch.exp(super().prior(n, generator, like))


class CategoricalPosterior:
    """G independent categoricals of K classes, q = softmax(logits) per group, p uniform.
    Training decodes Gumbel-Softmax samples at temperature tau(step); the code is the
    probabilities; sampling and importance weights use hard one-hot z. z is (B, G*K)."""

    def __init__(self, cfg: VAEConfig) -> None:
        self.cfg = cfg
        self.groups, self.k = cfg.categorical_dims, cfg.categories
        self.code_dim = self.num_params = self.groups * self.k

    def tau(self, step: int) -> float:
        c = self.cfg
        return L.gumbel_temperature(step, c.tau0, c.tau_min, c.anneal_rate)

    def params(self, out: Tensor) -> Params:
        return {"logits": out.view(-1, self.groups, self.k)}

    def code(self, p: Params) -> Tensor:
        return torch.softmax(p["logits"], dim=-1).flatten(1)

    def latent(self, code: Tensor) -> Tensor:
        return code

    def from_noise(self, eps: Tensor) -> Tensor:  # the argmax of iid N(0, 1) is uniform
        index = eps.view(-1, self.groups, self.k).argmax(-1)
        return F.one_hot(index, self.k).to(eps.dtype).flatten(1)

    def rsample(self, p: Params, step: int) -> Tensor:
        hard = self.cfg.straight_through
        return L.gumbel_softmax(p["logits"], self.tau(step), hard=hard).flatten(1)

    def kl(self, p: Params) -> Tensor:
        return L.categorical_kl_uniform(p["logits"])

    def sample(self, p: Params, generator: torch.Generator | None) -> Tensor:
        return L.categorical_sample(p["logits"], generator).flatten(1)

    def log_q(self, z: Tensor, p: Params) -> Tensor:
        return L.categorical_log_prob(z.view_as(p["logits"]), p["logits"])

    def log_p(self, z: Tensor) -> Tensor:
        return L.uniform_categorical_log_prob(z.view(-1, self.groups, self.k))

    def prior(self, n: int, generator: torch.Generator | None, like: Tensor) -> Tensor:
        return L.uniform_categorical_sample(n, self.groups, self.k, generator, like).flatten(1)

    def logs(self, step: int) -> dict[str, float]:
        return {"tau": self.tau(step)}


POSTERIORS = {
    "gaussian": GaussianPosterior,
    "lognormal": LogNormalPosterior,
    "categorical": CategoricalPosterior,
}


# ----------------------------------------------------------------------------- model


def check_classes(cfg: VAEConfig, spec: DataSpec) -> None:
    """A conditional VAE needs labelled data with exactly ``cfg.num_classes`` classes."""
    if cfg.num_classes is None:
        return
    if spec.num_classes is None:
        raise ConfigError(
            f"model.num_classes={cfg.num_classes} needs labelled data, but this dataset has no "
            "labels; remove model.num_classes or use a labelled dataset such as digits"
        )
    if spec.num_classes != cfg.num_classes:
        raise ConfigError(
            f"model.num_classes={cfg.num_classes} but the data has {spec.num_classes} classes; "
            f"set model.num_classes={spec.num_classes}"
        )


@MODELS.register("vae", help="variational autoencoder: gaussian/lognormal/categorical, cVAE")
class VAE(GenerativeModel):
    Config = VAEConfig
    ema_target = "decoder"

    def __init__(self, cfg: VAEConfig, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        require_image_data(cfg.name, spec)
        check_classes(cfg, spec)
        self.family = POSTERIORS[cfg.posterior](cfg)
        self.code_dim: int = self.family.code_dim
        y = cfg.num_classes or 0  # one-hot label width joined to the input and to z
        nets = {"arch": cfg.arch, "width": cfg.width, "hidden": cfg.hidden, "bias": cfg.bias}
        nets["factory"] = LayerFactory(norm=cfg.norm)
        # conv: the label as constant input channels; mlp: as extra input features.
        self.encoder = image_encoder(spec.shape, self.family.num_params, extra_inputs=y, **nets)
        self.decoder = image_decoder(self.code_dim + y, spec.shape, **nets)
        if cfg.arch == "conv":
            dcgan_init(self)
        # Gaussian likelihood: one learned log-std for all pixels unless fixed by config.
        log_sigma = math.log(cfg.sigma) if cfg.sigma else 0.0
        self.log_sigma = nn.Parameter(torch.tensor(log_sigma), requires_grad=cfg.sigma is None)

    # ------------------------------------------------------------------ conditioning
    def _one_hot(self, labels: Tensor | None, like: Tensor) -> Tensor | None:
        """(B,) int64 labels -> (B, num_classes) one-hot in ``like``'s dtype; None when the
        model is unconditional (labels are then ignored)."""
        if self.cfg.num_classes is None:
            return None
        if labels is None:
            raise ConfigError(
                f"this VAE is class-conditional (model.num_classes={self.cfg.num_classes}); "
                "pass labels (B,) int64"
            )
        return F.one_hot(labels.to(like.device).long(), self.cfg.num_classes).to(like.dtype)

    def _encoder_input(self, x: Tensor, labels: Tensor | None) -> Tensor:
        y = self._one_hot(labels, x)
        if y is None:
            return x
        if self.cfg.arch == "mlp":
            return torch.cat([x.flatten(1), y], 1)
        return torch.cat([x, y[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)

    def _decoder_out(self, z: Tensor, labels: Tensor | None) -> Tensor:
        """The decoder's raw output (logits or Gaussian mean) for latent z (B, code_dim)."""
        y = self._one_hot(labels, z)
        return self.decoder(z if y is None else torch.cat([z, y], 1))

    # ------------------------------------------------------------------ encoder contract
    def posterior(self, x: Tensor, labels: Tensor | None = None) -> Params:
        """q(z|x) of (B, C, H, W) images in [-1, 1]: {"mu", "logvar"} (B, latent_dim) for the
        gaussian and lognormal families (of log z for lognormal), {"logits"} (B, G, K) for the
        categorical one."""
        return self.family.params(self.encoder(self._encoder_input(x, labels)))

    def encode(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """The deterministic code (B, code_dim): mu (gaussian), mu of log z (lognormal), the
        flattened probabilities (categorical)."""
        return self.family.code(self.posterior(x, labels))

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """A code (B, code_dim) as from ``encode`` -> the mean image (B, C, H, W) in [-1, 1]."""
        return self._mean_image(self._decoder_out(self.family.latent(z), labels))

    def reconstruct(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """decode(encode(x)) in eval mode: (B, C, H, W) -> (B, C, H, W) in [-1, 1]."""
        with evaluating(self):
            return self.decode(self.encode(x, labels), labels)

    def _mean_image(self, out: Tensor) -> Tensor:
        if self.cfg.likelihood == "bernoulli":
            return from_unit(torch.sigmoid(out))
        return out.clamp(-1.0, 1.0)

    # ------------------------------------------------------------------ generator contract
    @property
    def latent_dim(self) -> int:
        return self.code_dim

    @property  # class-conditional when set
    def num_classes(self) -> int | None:
        return self.cfg.num_classes

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """N(0, I) noise (n, code_dim) mapped onto the prior -> images as from ``sample``."""
        z = z.to(self.log_sigma.device)  # the model's device
        if self.cfg.num_classes is not None:
            labels = self._sample_labels(len(z), labels, z.device)
        return self._mean_image(self._decoder_out(self.family.from_noise(z), labels))

    # ------------------------------------------------------------------ objective
    def nll(self, out: Tensor, x: Tensor) -> Tensor:
        """-log p(x|z) per image (B,), from the decoder's raw output."""
        if self.cfg.likelihood == "bernoulli":
            return bernoulli_nll(out, to_unit(x))
        return gaussian_nll(out, x, self.log_sigma)

    def losses(self, x: Tensor, labels: Tensor | None = None, step: int = 0) -> dict[str, Tensor]:
        """Per-image terms (B,) of the objective with one reparameterised sample."""
        p = self.posterior(x, labels)
        recon = self.nll(self._decoder_out(self.family.rsample(p, step), labels), x)
        kl = self.family.kl(p)
        return {"recon": recon, "kl": kl, "loss": recon + self.cfg.beta * kl}

    def log_importance_terms(
        self,
        x: Tensor,
        k: int,
        labels: Tensor | None = None,
        generator: torch.Generator | None = None,
        max_rows: int = 4096,
    ) -> dict[str, Tensor]:
        """For k exact samples z_i ~ q(z|x) (hard one-hot for the categorical family), each
        (k, B) in nats: "log_px_z" = log p(x|z_i), "log_pz" = log p(z_i), "log_qz" = log q(z_i|x).
        Eval mode, no autograd; the decoder sees at most ``max_rows`` images at a time."""
        if k < 1:
            raise ConfigError(f"k={k}: the number of importance samples must be at least 1")
        b = x.shape[0]
        chunk = max(1, min(k, max_rows // max(b, 1)))
        parts = []
        with evaluating(self):
            p = self.posterior(x, labels)
            for start in range(0, k, chunk):
                c = min(chunk, k - start)
                # Rows ordered (sample, image): row s * B + i is sample s of image i.
                pc = {n: v.repeat(c, *[1] * (v.dim() - 1)) for n, v in p.items()}
                lc = None if labels is None else labels.repeat(c)
                z = self.family.sample(pc, generator)
                log_px = -self.nll(self._decoder_out(z, lc), x.repeat(c, 1, 1, 1))
                terms = (log_px, self.family.log_p(z), self.family.log_q(z, pc))
                parts.append(torch.stack(terms).view(3, c, b))
        out = torch.cat(parts, dim=1)
        return {"log_px_z": out[0], "log_pz": out[1], "log_qz": out[2]}

    def log_importance_weights(
        self,
        x: Tensor,
        k: int,
        labels: Tensor | None = None,
        generator: torch.Generator | None = None,
        max_rows: int = 4096,
    ) -> Tensor:
        """log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x), (k, B) in nats; the mean over k
        estimates the ELBO, the log-mean-exp is the IWAE bound (Burda et al. 2016)."""
        t = self.log_importance_terms(x, k, labels, generator, max_rows)
        return t["log_px_z"] + t["log_pz"] - t["log_qz"]

    # ------------------------------------------------------------------ training contract
    def configure_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        return {"vae": make_optimizer(self.parameters(), train)}

    def train_step(self, batch: Batch, optimizers, step: int) -> dict[str, Tensor | float]:
        opt = optimizers["vae"]
        terms = self.losses(batch["x"], batch.get("y"), step)
        loss = terms["loss"].mean()
        opt.zero_grad(set_to_none=True)
        self.backward(loss)
        self.step(opt)
        out: dict[str, Tensor | float] = {k: v.detach().mean() for k, v in terms.items()}
        if self.cfg.likelihood == "gaussian":
            out["sigma"] = self.log_sigma.detach().exp()
        return {**out, **self.family.logs(step)}

    def sample(self, n, *, labels=None, generator=None) -> Tensor:
        """n images (n, C, H, W) in [-1, 1] decoded from prior samples; a conditional VAE takes
        labels (n,) int64, by default 0, 1, ..., K-1, 0, 1, ... (a grid shows every class)."""
        like = self.log_sigma  # the model's device and dtype
        if self.cfg.num_classes is not None:
            labels = self._sample_labels(n, labels, like.device)
        with evaluating(self):
            z = self.family.prior(n, generator, like)
            return self._mean_image(self._decoder_out(z, labels))

    def _sample_labels(self, n: int, labels: Tensor | None, device: torch.device) -> Tensor:
        k = self.cfg.num_classes
        if labels is None:
            return torch.arange(n, device=device) % k
        labels = torch.as_tensor(labels)
        bad_range = labels.numel() > 0 and (labels.min() < 0 or labels.max() >= k)
        if labels.shape != (n,) or labels.is_floating_point() or bad_range:
            raise ConfigError(f"labels must be {n} integers in 0..{k - 1} (one per sample)")
        return labels.to(device)
