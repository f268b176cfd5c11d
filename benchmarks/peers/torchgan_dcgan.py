"""Training throughput of genlab's ``dcgan`` networks inside torchgan's own Trainer.

The generator and discriminator are the modules genlab builds for ``dcgan`` at 32x32 on digits
(latent 100, widths 64, batch norm, DCGAN init), wrapped in torchgan's ``Generator`` /
``Discriminator`` base classes; torchgan supplies everything else: its ``Trainer`` (models and
Adam optimizers built from its dict), ``MinimaxGeneratorLoss(nonsaturating=True)`` and
``MinimaxDiscriminatorLoss`` with their ``train_ops`` (the updates), its logger (loss and
gradient-norm bookkeeping every iteration), fed by a torch DataLoader. Timing: the loader handed
to ``Trainer`` is wrapped to mark the moment the trainer asks for each batch, so an interval is
one full iteration (fetch + ``train_iter`` + logging); the end-of-epoch work (checkpoint, sample
grid) falls between epochs and is left out (reported separately as
``images_per_s_incl_epoch_ends``). ``--paired`` runs one step of genlab's own loop
(``genlab_side.GenlabStepper``) after each torchgan iteration, outside torchgan's intervals, so
both sides see the same machine load; it reports both rates and their ratio.

torchvision: torchgan imports it at import time but uses only ``utils.make_grid`` and
``utils.save_image`` (the end-of-epoch sample grid) and ``models.inception_v3`` (its Inception
score metric, unused here). The PyPI torchvision wheels do not load with the CPU torch build, so
``stand_in_torchvision`` registers a small module with those two image helpers (and an
``inception_v3`` that refuses) in ``sys.modules`` of this process only. Nothing of it runs inside
the timed iterations.

Prints one JSON object. Run it in the peers environment (see README.md):
    python benchmarks/peers/torchgan_dcgan.py --steps 30 --warmup 5 --repeats 3 [--paired]
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
import types
from importlib.metadata import version

import numpy as np
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
from PIL import Image


def make_grid(images, nrow=8, padding=2, normalize=False, **kwargs):
    """(B, C, H, W) -> one (C, H', W') grid, as torchvision's; torchgan passes the value range
    as ``range``, torchvision's old name for ``value_range``."""
    if normalize:
        lo, hi = kwargs.get("value_range") or kwargs.get("range") or (images.min(), images.max())
        images = (images.clamp(lo, hi) - lo) / max(float(hi - lo), 1e-5)
    b, c, h, w = images.shape
    cols = min(nrow, b)
    rows = math.ceil(b / cols)
    grid = images.new_zeros(c, rows * (h + padding) + padding, cols * (w + padding) + padding)
    for i in range(b):
        r, k = divmod(i, cols)
        y, x = padding + r * (h + padding), padding + k * (w + padding)
        grid[:, y : y + h, x : x + w] = images[i]
    return grid


def save_image(grid, path, **kwargs) -> None:
    """A (C, H, W) grid in [0, 1] -> PNG."""
    if grid.dim() == 4:
        grid = make_grid(grid, **kwargs)
    pixels = (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    Image.fromarray(np.squeeze(pixels, 2) if pixels.shape[2] == 1 else pixels).save(path)


def stand_in_torchvision() -> None:
    """Register the stand-in ``torchvision`` (see the module docstring) before torchgan loads."""
    tv = types.ModuleType("torchvision")
    tv.utils = types.ModuleType("torchvision.utils")
    tv.utils.make_grid, tv.utils.save_image = make_grid, save_image
    tv.models = types.ModuleType("torchvision.models")

    def inception_v3(*args, **kwargs):
        raise RuntimeError("the torchvision stand-in has no Inception network")

    tv.models.inception_v3 = inception_v3
    sys.modules.update({"torchvision": tv, "torchvision.utils": tv.utils})
    sys.modules["torchvision.models"] = tv.models
    # tensorboardX / visdom are not installed; say so instead of letting torchgan probe.
    os.environ.setdefault("TENSORBOARD_LOGGING", "0")
    os.environ.setdefault("VISDOM_LOGGING", "0")


stand_in_torchvision()

from torchgan.losses import MinimaxDiscriminatorLoss, MinimaxGeneratorLoss  # noqa: E402
from torchgan.models import Discriminator, Generator  # noqa: E402
from torchgan.trainer import Trainer  # noqa: E402

from genlab.data.pixels import to_model  # noqa: E402


class GenlabGenerator(Generator):
    """genlab's DCGAN generator: z (B, 100) -> images (B, 1, 32, 32) in [-1, 1]."""

    def __init__(self, net: torch.nn.Module, encoding_dims: int) -> None:
        super().__init__(encoding_dims)
        self.net = net

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class GenlabDiscriminator(Discriminator):
    """genlab's DCGAN discriminator: images (B, 1, 32, 32) -> logits (B, 1)."""

    def __init__(self, net: torch.nn.Module, input_dims: int) -> None:
        super().__init__(input_dims)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MarkedLoader:
    """A DataLoader that times each iteration of the trainer: from the moment it asks for a
    batch to the moment it asks for the next one. With a ``partner`` (``--paired``), runs one
    genlab step in between, outside torchgan's intervals, and keeps its seconds too."""

    def __init__(self, loader, partner: GenlabStepper | None = None) -> None:
        self.loader, self.batch_size = loader, loader.batch_size
        self.partner, self.partner_seconds = partner, []
        self.epochs: list[list[float]] = []  # iteration seconds, per epoch
        self.spans: list[list[float]] = []  # [start, end] of each epoch's iterations

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        last = time.perf_counter()
        seconds, span = [], [last, last]
        self.epochs.append(seconds)
        self.spans.append(span)
        for batch in self.loader:
            yield batch
            span[1] = time.perf_counter()  # the trainer is done with this batch
            seconds.append(span[1] - last)
            if self.partner is not None:
                self.partner_seconds.append(self.partner())
            last = time.perf_counter()


def throughput(loader: MarkedLoader, warmup: int, steps: int) -> dict[str, float]:
    """``rates`` of the iterations and, unpaired, the rate over the epochs after the first one
    with their end-of-epoch work; paired, genlab's rates and the ratio."""
    iterations = [s for epoch in loader.epochs for s in epoch]
    out = rates(iterations, warmup, steps)
    if loader.partner is None:
        out["images_per_s_incl_epoch_ends"] = rate_incl_epoch_ends(
            loader.spans, BATCH * len(loader)
        )
    else:
        out.update(paired_rates(iterations, loader.partner_seconds, warmup, steps))
    return out


def run_once(warmup: int, steps: int, paired: bool) -> dict[str, float]:
    load = os.getloadavg()[0]
    cfg, data, gan = genlab_setup("dcgan")
    # The same images genlab trains on, as genlab's models see them: float in [-1, 1].
    dataset = torch.utils.data.TensorDataset(to_model(data.train.x), data.train.y)
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, drop_last=True)
    epochs = max(2, math.ceil((warmup + steps) / len(loader)))  # >= 2: see throughput()
    partner = GenlabStepper("dcgan", epochs * len(loader)) if paired else None
    marked = MarkedLoader(loader, partner)
    adam = {"name": torch.optim.Adam, "args": {"lr": cfg.train.lr, "betas": cfg.train.betas}}
    models = {
        "generator": {
            "name": GenlabGenerator,
            "args": {"net": gan.generator, "encoding_dims": cfg.model.latent_dim},
            "optimizer": adam,
        },
        "discriminator": {
            "name": GenlabDiscriminator,
            "args": {"net": gan.discriminator, "input_dims": 1},
            "optimizer": adam,
        },
    }
    losses = [MinimaxGeneratorLoss(nonsaturating=True), MinimaxDiscriminatorLoss()]
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(
            models,
            losses,
            device=torch.device("cpu"),
            epochs=epochs,
            sample_size=64,
            checkpoints=f"{out}/model/gan",
            recon=f"{out}/images",
        )
        trainer(marked)
    if partner is not None:
        partner.close()
    nets = (trainer.generator, trainer.discriminator)
    return {
        **throughput(marked, warmup, steps),
        "loader_ms_per_batch": loader_ms_per_batch(loader),
        "parameters": sum(p.numel() for net in nets for p in net.parameters()),
        "load_1min": load,
    }


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0], paired="a genlab step after each torchgan one")
    run = lambda: run_once(args.warmup, args.steps, args.paired)  # noqa: E731
    report(
        "torchgan",
        version("torchgan"),
        "dcgan (genlab nets, latent 100, widths 64, NS loss)",
        args,
        run,
    )


if __name__ == "__main__":
    main()
