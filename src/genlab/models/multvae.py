"""Mult-VAE and Mult-DAE: autoencoders of click histories with a multinomial likelihood
(Liang, Krishnan, Hoffman & Jebara 2018, "Variational Autoencoders for Collaborative Filtering",
arXiv:1802.05814).

A user's history x (I,) of 0/1 clicks is L2-normalised and corrupted by dropout (training
only), encoded by a tanh MLP and decoded to logits f(z) (I,); pi = softmax(f(z)) is a
distribution over all items, and the items a user has not clicked are ranked by it. The
multinomial log-likelihood of the history is, up to a constant that does not depend on pi,

    log p(x | z) = sum_i x_i log pi_i.

- ``multvae`` (Mult-VAE^PR): q(z|x) = N(mu(x), diag sigma^2(x)), p(z) = N(0, I), loss per user
  -E_q[log p(x|z)] + beta * KL(q || p), with beta = min(beta_cap, step / anneal_steps) growing
  linearly from 0 ("partially regularised": the paper caps it at 0.2). Ranking uses z = mu(x).
- ``multdae``: a deterministic code tanh(enc(x)), loss -log p(x | code), no KL. The corruption
  is the same input dropout.

Architectures of the paper: [I -> 600 -> 200 -> 600 -> I] for the VAE (``hidden: [600]``,
``latent_dim: 200``), [I -> 200 -> I] for the DAE (``hidden: []``); tanh between layers,
Xavier-uniform weights, N(0, 0.001) biases.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from genlab.core.config import ModelConfig, TrainConfig
from genlab.core.errors import ConfigError
from genlab.core.registry import MODELS
from genlab.data.base import Batch, DataSpec
from genlab.losses.likelihood import gaussian_kl_std_normal
from genlab.models.base import GenerativeModel, evaluating
from genlab.models.optim import make_optimizer
from genlab.nn.mlp import mlp


def multinomial_nll(logits: Tensor, x: Tensor) -> Tensor:
    """-sum_i x_i log softmax(logits)_i per user (B,), in nats, for counts x (B, I). The full
    multinomial log-likelihood adds log(N! / prod_i x_i!), N = sum_i x_i, which does not depend
    on the model (log N! for 0/1 clicks), so it is left out, as in the paper."""
    return -(F.log_softmax(logits, dim=1) * x).sum(1)


def kl_weight(step: int, cap: float, anneal_steps: int) -> float:
    """beta at update ``step`` (0-based): 0 at the first update, growing by 1 / anneal_steps per
    update up to ``cap`` (``anneal_steps`` = 0: ``cap`` throughout)."""
    if anneal_steps == 0:
        return cap
    return min(cap, step / anneal_steps)


class MultVAEConfig(ModelConfig):
    hidden: list[int] = Field([600], description="hidden widths between items and code")
    latent_dim: int = Field(200, ge=1, description="width of the code z")
    dropout: float = Field(0.5, ge=0, lt=1, description="input dropout rate during training")
    variational: bool = Field(True, description="true: Mult-VAE; false: Mult-DAE (no KL)")
    beta_cap: float = Field(0.2, ge=0, description="VAE: largest weight of the KL term")
    anneal_steps: int = Field(
        200_000, ge=0, description="VAE: updates for beta to grow by 1 (0 = beta_cap throughout)"
    )


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.normal_(m.bias, 0.0, 0.001)


@MODELS.register("multvae", help="Mult-VAE: VAE of click histories for recommendation")
@MODELS.register(
    "multdae",
    defaults={"variational": False, "hidden": []},
    help="Mult-DAE: denoising autoencoder of click histories for recommendation",
)
class MultVAE(GenerativeModel):
    Config = MultVAEConfig
    ema_target = "nets"  # the whole network: ranking uses the encoder and the decoder
    data_kind: ClassVar[str] = "interactions"

    def __init__(self, cfg: MultVAEConfig, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        if spec.kind != "interactions":
            raise ConfigError(
                f"model {cfg.name!r} needs click data (interactions); use --data clicks or "
                "--data movielens"
            )
        (items,) = spec.shape
        d, out = cfg.latent_dim, 2 * cfg.latent_dim if cfg.variational else cfg.latent_dim
        self.nets = nn.ModuleDict(
            {
                "encoder": mlp([items, *cfg.hidden, out], act=nn.Tanh),
                "decoder": mlp([d, *reversed(cfg.hidden), items], act=nn.Tanh),
            }
        )
        # The DAE's code passes through tanh like its hidden layers (the paper's code); the
        # VAE's mean and log-variance are linear.
        self.squash = nn.Identity() if cfg.variational else nn.Tanh()
        _init(self.nets)

    def _encode(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """Clicks (B, I) -> (mean code (B, d), log-variance (B, d) or None for the DAE)."""
        h = F.dropout(F.normalize(x, dim=1), self.cfg.dropout, self.training)
        out = self.nets["encoder"](h)
        if not self.cfg.variational:
            return self.squash(out), None
        mu, logvar = out.chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def encode(self, x: Tensor) -> Tensor:
        """Clicks (B, I) -> the deterministic code (B, latent_dim): the posterior mean (VAE)."""
        with evaluating(self):
            return self._encode(x)[0]

    def scores(self, x: Tensor) -> Tensor:
        """Clicks (B, I) 0/1 -> item logits (B, I) for ranking (eval mode, z = posterior mean);
        softmax over items gives the model's click distribution."""
        with evaluating(self):
            return self.nets["decoder"](self._encode(x)[0])

    # ------------------------------------------------------------------ contract
    def configure_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        return {"autoencoder": make_optimizer(self.parameters(), train)}

    def losses(self, x: Tensor, beta: float) -> dict[str, Tensor]:
        """Per-user terms (B,) of the objective on clicks (B, I), one reparameterised sample."""
        mu, logvar = self._encode(x)
        if logvar is None:
            nll = multinomial_nll(self.nets["decoder"](mu), x)
            return {"nll": nll, "loss": nll}
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        nll = multinomial_nll(self.nets["decoder"](z), x)
        kl = gaussian_kl_std_normal(mu, logvar)
        return {"nll": nll, "kl": kl, "loss": nll + beta * kl}

    def train_step(self, batch: Batch, optimizers, step: int) -> dict[str, Tensor | float]:
        opt = optimizers["autoencoder"]
        beta = kl_weight(step, self.cfg.beta_cap, self.cfg.anneal_steps)
        terms = self.losses(batch["x"], beta)
        opt.zero_grad(set_to_none=True)
        self.backward(terms["loss"].mean())
        self.step(opt)
        out: dict[str, Tensor | float] = {k: v.detach().mean() for k, v in terms.items()}
        if self.cfg.variational:
            out["beta"] = beta
        return out

    def sample(self, n, *, labels=None, generator=None) -> Tensor:
        """(n, I) item distributions softmax(decoder(z)), rows summing to 1, for z ~ N(0, I)
        (the VAE's prior). The DAE has no prior: its codes z = tanh(eps), eps ~ N(0, I), lie in
        its code range, but they probe the decoder rather than sample a generative model."""
        with evaluating(self):
            z = self.squash(self.latent_noise(n, self.cfg.latent_dim, generator))
            return F.softmax(self.nets["decoder"](z).float(), dim=1)
