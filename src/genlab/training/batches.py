"""Batches sliced from one in-memory tensor, in a seeded order that survives a resume."""

from __future__ import annotations

import torch

from genlab.core.errors import ConfigError
from genlab.data.base import Batch, Split
from genlab.data.pixels import to_model


def _rows(x, index: torch.Tensor) -> torch.Tensor:
    """The rows ``index`` of a tensor, or of a scipy.sparse matrix densified to float32 (B, D):
    only the batch is ever dense, so a click matrix of any size trains in constant memory."""
    if isinstance(x, torch.Tensor):
        return x[index]
    return torch.from_numpy(x[index.numpy()].toarray().astype("float32", copy=False))


def resident(x, device: torch.device):
    """A split's tensor moved whole to the GPU when it takes under a quarter of the free GPU
    memory: batches are then sliced there, with no host-to-device copy per step. Elsewhere
    (CPU, sparse matrices, data too large) it stays where it is."""
    if device.type != "cuda" or not isinstance(x, torch.Tensor):
        return x
    free, _ = torch.cuda.mem_get_info(device)
    return x.to(device) if x.numel() * x.element_size() < free // 4 else x


class BatchStream:
    """Endless batches of a split: a fresh permutation each epoch, the incomplete last batch
    of an epoch dropped (so every step sees ``batch_size`` samples). ``state_dict`` captures the
    position exactly, so a resumed run sees the same batches as an uninterrupted one.

    Data parallel (``world`` processes): every process draws the same permutation, a step
    consumes one global batch of ``batch_size * world`` samples and process ``rank`` keeps its
    own slice of it, so each process sees its own shard of every epoch, and ``world`` processes
    of batch B see exactly the samples of one process of batch ``world * B``. The position is
    counted in samples, so a run resumes under any number of processes."""

    def __init__(
        self,
        split: Split,
        batch_size: int,
        seed: int,
        device: torch.device,
        *,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        if batch_size * world > len(split):
            per = f" x {world} processes" if world > 1 else ""
            raise ConfigError(
                f"train.batch_size={batch_size}{per} is larger than the training split "
                f"({len(split)} samples); lower it"
            )
        self.split, self.batch_size, self.device = split, batch_size, device
        self.rank, self.global_batch = rank, batch_size * world
        self.x, self.y = resident(split.x, device), resident(split.y, device)
        self.attrs = resident(split.attrs, device)
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch, self.pos = 0, 0
        self.perm = torch.randperm(len(split), generator=self.generator)

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> Batch:
        return self.take(1)

    def take(self, k: int) -> Batch:
        """The next k batches stacked along dim 0 (k * batch_size rows, batch after batch),
        exactly as k calls of ``next`` would slice them: a model that updates k times per step
        (a GAN's critic) reads a fresh batch for each update and the data is indexed once."""
        parts = []
        for _ in range(k):
            if self.pos + self.global_batch > len(self.perm):
                self.epoch, self.pos = self.epoch + 1, 0
                self.perm = torch.randperm(len(self.split), generator=self.generator)
            start = self.pos + self.rank * self.batch_size
            parts.append(self.perm[start : start + self.batch_size])
            self.pos += self.global_batch
        index = parts[0] if k == 1 else torch.cat(parts)
        x = self._take(self.x, index)
        batch = {"x": to_model(x) if x.dtype == torch.uint8 else x}
        if self.y is not None:
            batch["y"] = self._take(self.y, index)
        if self.attrs is not None:  # (B, A) float 0/1, for attribute-conditional models
            batch["attrs"] = self._take(self.attrs, index).float()
        return batch

    def _take(self, x, index: torch.Tensor) -> torch.Tensor:
        """Rows ``index`` of x on the training device, indexed where x lives."""
        if isinstance(x, torch.Tensor) and x.device != index.device:
            index = index.to(x.device, non_blocking=True)
        return _rows(x, index).to(self.device, non_blocking=True)

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "pos": self.pos,
            "perm": self.perm.clone(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self.perm = state["perm"].clone()
        self.generator.set_state(state["generator"])
