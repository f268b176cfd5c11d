"""Likelihood metrics of models with an encoder: ELBO, the importance-weighted bound, recon error.

For k samples z_i ~ q(z|x), the log importance weights are w_i = log p(x, z_i) - log q(z_i|x).
Their mean is an unbiased estimate of the ELBO; their log-mean-exp is the IWAE bound
(Burda, Grosse & Salakhutdinov 2016, arXiv:1509.00519),

    ELBO <= L_k = E[log (1/k) sum_i exp(w_i)] <= L_{k+1} <= log p(x),

so ``nll`` reports -L_k, an upper bound on the negative log-likelihood that tightens with k.
Both are in nats per image under the model's pixel likelihood (a Bernoulli likelihood on grey
intensities is a density of that model, not of 8-bit pixels). ``recon`` is the mean squared
error per pixel of ``reconstruct(x)`` on the [0, 1] scale.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from genlab.core.errors import ConfigError
from genlab.data.pixels import to_unit
from genlab.metrics.base import EvalContext, MetricResult, register_metric
from genlab.models.base import evaluating, has_encoder

LIKELIHOOD = "an image likelihood (vae and its variants)"


def _stats(per_item: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error of the mean of a 1-D tensor."""
    values = per_item.double()
    se = values.std().item() / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return values.mean().item(), se


def _require(ctx: EvalContext, what: str, ok: bool, needs: str) -> None:
    if not ok:
        raise ConfigError(
            f"metric {what!r} needs {needs}; this run's model is {ctx.cfg.model.name!r}"
        )


def _log_weights(ctx: EvalContext, k: int) -> torch.Tensor:
    """(k, N) log importance weights over the evaluation split, computed once per k."""
    key = f"log_weights_k{k}"
    if key not in ctx.cache:
        split, gen = ctx.eval_split(), ctx.generator(offset=1)
        parts = []
        batches = tqdm(
            list(ctx.batches(split)), desc=f"importance samples (k={k})", disable=not ctx.progress
        )
        with evaluating(ctx.model):
            for batch in batches:
                w = ctx.model.log_importance_weights(
                    batch["x"], k, labels=batch.get("y"), generator=gen
                )
                parts.append(w.double().cpu())
        ctx.cache[key] = torch.cat(parts, dim=1)
    return ctx.cache[key]


def _k(ctx: EvalContext) -> int:
    k = int(ctx.options.get("k", 1000))
    if k < 1:
        raise ConfigError(f"--k {k}: the number of importance samples must be at least 1")
    return k


@register_metric("elbo", help="test ELBO, nats/image (mean of the k importance log weights)")
def elbo(ctx: EvalContext, param: int | None) -> list[MetricResult]:
    _require(ctx, "elbo", hasattr(ctx.model, "log_importance_weights"), LIKELIHOOD)
    k = _k(ctx)
    w = _log_weights(ctx, k)  # (k, N)
    value, se = _stats(w.mean(0))
    note = f"ELBO averaged over {k} posterior samples per image, seed {ctx.seed}"
    return [MetricResult("elbo", value, se, "nats/image", w.shape[1], note)]


@register_metric("nll", help="negative log-likelihood bound -IWAE_k, nats/image (k=--k)")
def nll(ctx: EvalContext, param: int | None) -> list[MetricResult]:
    _require(ctx, "nll", hasattr(ctx.model, "log_importance_weights"), LIKELIHOOD)
    k = _k(ctx)
    w = _log_weights(ctx, k)
    iwae = torch.logsumexp(w, dim=0) - math.log(k)  # (N,)
    value, se = _stats(-iwae)
    note = f"upper bound -IWAE with k={k} importance samples (Burda et al. 2016), seed {ctx.seed}"
    return [MetricResult("nll", value, se, "nats/image", w.shape[1], note)]


@register_metric("recon", help="reconstruction mean squared error per pixel on [0, 1]")
def recon(ctx: EvalContext, param: int | None) -> list[MetricResult]:
    _require(ctx, "recon", has_encoder(ctx.model), "a model with an encoder")
    errors = []
    for batch in ctx.batches(ctx.eval_split()):
        x = batch["x"]
        x_hat = ctx.model.reconstruct(x, labels=batch.get("y"))
        errors.append((to_unit(x_hat) - to_unit(x)).pow(2).flatten(1).mean(1).cpu())
    value, se = _stats(torch.cat(errors))
    note = "decoded posterior mean / code, pixels on [0, 1]"
    return [MetricResult("recon", value, se, "mse/pixel", sum(len(e) for e in errors), note)]
