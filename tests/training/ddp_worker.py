"""Started by test_distributed.py under ``torchrun --nproc_per_node 2``: trains each tiny config
given on the command line on every rank and has rank 0 write, per config, the largest
difference between the ranks' weights (0 when DDP keeps them in step).

Usage: ddp_worker.py OUT_JSON RUNS_DIR LABEL=NAME[,override...] ...
A label ending in ``-unsynced`` trains without DDP: the negative control, whose ranks must
drift apart because each rank sees its own shard of the data. A label starting with
``noiseless`` trains with the VAE's reparameterisation noise set to zero (see
``noiseless_vae``)."""

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from genlab.core.config import build_config
from genlab.models.vae import GaussianPosterior
from genlab.training.trainer import Trainer


def noiseless_vae() -> None:
    """z = mu: the reparameterisation noise is the only randomness of a VAE step that depends
    on the process (each rank draws its own), so without it one process of batch 2B and two
    of batch B compute the same update. Shared by the test's single-process reference."""
    GaussianPosterior.rsample = lambda self, p, step: p["mu"]


def rank_spread(model: torch.nn.Module, world: int) -> float:
    vec = torch.cat([p.detach().flatten() for p in model.parameters()])
    vecs = [torch.empty_like(vec) for _ in range(world)]
    dist.all_gather(vecs, vec)
    return max((v - vecs[0]).abs().max().item() for v in vecs)


def main(out_json: str, runs: str, specs: list[str]) -> None:
    results = {}
    for spec in specs:
        label, _, rest = spec.partition("=")
        name, *overrides = rest.split(",")
        if label.startswith("noiseless"):
            noiseless_vae()
        cfg = build_config(name, preset=f"tiny_{name}", overrides=["train.steps=3", *overrides])
        trainer = Trainer(cfg, Path(runs) / label)
        if label.endswith("-unsynced"):
            trainer.parallel = None
        trainer.fit()
        results[label] = rank_spread(trainer.model, dist.get_world_size())
    if dist.get_rank() == 0:
        Path(out_json).write_text(json.dumps(results))
    dist.destroy_process_group()
    # Skip the interpreter's teardown: after many DDP trainers in one process it sometimes
    # aborts there ("terminate called without an active exception"), once the results are
    # written (docs/distributed.md, known issues). One run per process (the CLI) does not.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
