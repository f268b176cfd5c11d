"""Training throughput of genlab's ``vae`` conv networks inside pythae's own VAE and trainer.

The encoder and decoder are the modules genlab builds for ``vae`` at 32x32 on digits (width 32,
latent 16); pythae supplies everything else: its ``VAE`` model (reparameterisation, BCE
reconstruction loss, KL), its ``TrainingPipeline`` / ``BaseTrainer`` loop, its DataLoader over a
``BaseDataset``, its Adam step, its callbacks and progress bar. The timing comes from a pythae
``TrainingCallback``: a mark when an epoch's loop begins and one after every optimizer step, so a
step's interval holds the DataLoader fetch, forward, backward, Adam and the trainer's bookkeeping.
Intervals of the last, incomplete batch of an epoch and the work between epochs are left out
(reported separately as ``images_per_s_incl_epoch_ends``).

``--paired`` runs one step of genlab's own loop (``genlab_side.GenlabStepper``) after each pythae
step, outside pythae's intervals, so both sides see the same machine load step by step; it
reports both rates and their ratio.

Prints one JSON object. Run it in the peers environment (see README.md):
    python benchmarks/peers/pythae_vae.py --steps 30 --warmup 5 --repeats 3 [--paired]
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from importlib.metadata import version

import torch
from genlab_side import (  # in this script's folder
    BATCH,
    GenlabStepper,
    arguments,
    genlab_setup,
    loader_ms_per_batch,
    paired_rates,
    rate_incl_epoch_ends,
    rates,
    report,
)
from pythae.models import VAE, VAEConfig
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from pythae.pipelines import TrainingPipeline
from pythae.trainers import BaseTrainerConfig
from pythae.trainers.training_callbacks import TrainingCallback

from genlab.data.pixels import from_unit


class GenlabEncoder(BaseEncoder):
    """genlab's conv encoder: x in [0, 1] (B, 1, 32, 32) -> mu, log-variance (B, 16) each.
    genlab's nets read [-1, 1], so the input is mapped there first, as genlab's VAE sees it."""

    def __init__(self, net: torch.nn.Module) -> None:
        BaseEncoder.__init__(self)
        self.net = net

    def forward(self, x: torch.Tensor) -> ModelOutput:
        mu, logvar = self.net(from_unit(x)).chunk(2, dim=1)
        return ModelOutput(embedding=mu, log_covariance=logvar)


class GenlabDecoder(BaseDecoder):
    """genlab's conv decoder: z (B, 16) -> Bernoulli means in (0, 1), (B, 1, 32, 32). pythae's
    "bce" loss reads probabilities, so the decoder's logits pass a sigmoid, as pythae's own
    decoders end."""

    def __init__(self, net: torch.nn.Module) -> None:
        BaseDecoder.__init__(self)
        self.net = net

    def forward(self, z: torch.Tensor) -> ModelOutput:
        return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))


class StepTimer(TrainingCallback):
    """Times each training step: from the end of the previous one (or the start of the epoch's
    loop) to its end. With a ``partner`` (``--paired``), runs one genlab step after each pythae
    step, outside pythae's intervals, and keeps its seconds too."""

    def __init__(self, partner: GenlabStepper | None = None) -> None:
        self.partner = partner
        self.epochs: list[list[float]] = []  # step seconds, per epoch
        self.partner_epochs: list[list[float]] = []  # the partner's, after each of those
        self.spans: list[list[float]] = []  # [start, end] of each epoch's loop

    def on_train_step_begin(self, training_config, **kwargs) -> None:  # once per epoch
        self.last = time.perf_counter()
        self.epochs.append([])
        self.partner_epochs.append([])
        self.spans.append([self.last, self.last])

    def on_train_step_end(self, training_config, **kwargs) -> None:  # once per batch
        now = time.perf_counter()
        self.epochs[-1].append(now - self.last)
        self.spans[-1][1] = now
        if self.partner is not None:
            self.partner_epochs[-1].append(self.partner())
        self.last = time.perf_counter()


def throughput(timer: StepTimer, n: int, warmup: int, steps: int) -> dict[str, float]:
    """``rates`` of the full steps (an epoch's last step is its partial batch of n % 128
    images, left out) and, unpaired, the rate over the epochs after the first one with their
    epoch-end work and partial batches; paired, genlab's rates and the ratios."""
    drop = 1 if n % BATCH else 0

    def full(epochs: list[list[float]]) -> list[float]:
        return [s for epoch in epochs for s in epoch[: len(epoch) - drop]]

    out = rates(full(timer.epochs), warmup, steps)
    if timer.partner is None:
        out["images_per_s_incl_epoch_ends"] = rate_incl_epoch_ends(timer.spans, n)
    else:
        out.update(paired_rates(full(timer.epochs), full(timer.partner_epochs), warmup, steps))
    return out


def run_once(warmup: int, steps: int, paired: bool) -> dict[str, float]:
    load = os.getloadavg()[0]
    cfg, data, model = genlab_setup("vae")  # data.train.x: uint8 (N, 1, 32, 32)
    x = data.train.x.float().div(255.0)  # (N, 1, 32, 32) in [0, 1]: pythae's BCE target
    n = len(x)
    epochs = max(2, math.ceil((warmup + steps) / (n // BATCH)))  # >= 2: see throughput()
    vae_cfg = VAEConfig(
        input_dim=(1, 32, 32), latent_dim=model.cfg.latent_dim, reconstruction_loss="bce"
    )
    vae = VAE(vae_cfg, encoder=GenlabEncoder(model.encoder), decoder=GenlabDecoder(model.decoder))
    partner = GenlabStepper("vae", epochs * math.ceil(n / BATCH)) if paired else None
    timer = StepTimer(partner)
    with tempfile.TemporaryDirectory() as out:
        train_cfg = BaseTrainerConfig(
            output_dir=out,
            per_device_train_batch_size=BATCH,
            num_epochs=epochs,
            learning_rate=cfg.train.lr,
            optimizer_cls="Adam",
            optimizer_params={"betas": tuple(cfg.train.betas)},
            no_cuda=True,
            seed=cfg.seed,
        )
        pipeline = TrainingPipeline(training_config=train_cfg, model=vae)
        pipeline(train_data=x, callbacks=[timer])
        loader_ms = loader_ms_per_batch(pipeline.trainer.train_loader)
    if partner is not None:
        partner.close()
    return {
        **throughput(timer, n, warmup, steps),
        "loader_ms_per_batch": loader_ms,
        "parameters": sum(p.numel() for p in vae.parameters()),
        "load_1min": load,
    }


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0], paired="a genlab step after each pythae step")
    run = lambda: run_once(args.warmup, args.steps, args.paired)  # noqa: E731
    report(
        "pythae",
        version("pythae"),
        "vae (genlab conv nets, width 32, latent 16, Bernoulli/BCE)",
        args,
        run,
    )


if __name__ == "__main__":
    main()
