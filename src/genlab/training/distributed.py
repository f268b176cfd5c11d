"""Data parallel training on PyTorch's own engine: ``torch.distributed`` processes launched by
``torchrun`` (which sets RANK, LOCAL_RANK and WORLD_SIZE), gradients averaged by
``DistributedDataParallel``.

A model owns its update (DESIGN.md), so DDP cannot wrap the model as one module: ``train_step``
calls its networks (encoder, generator, discriminator, ...) in whatever order its objective
needs. Instead each top-level network with trainable weights gets its own DDP wrapper, and the
wrappers are swapped into the model only for the length of a ``train_step`` (``DataParallel``).
Outside it (sampling, evaluation, EMA, checkpoints) the model is the plain single-process
module, so rank 0 can sample or save without the other ranks joining a collective.

What a model must follow under DDP (the registry-wide test in tests/training checks it):
every grad-enabled call of a network goes through its ``forward`` and is followed by one
backward through it before its next grad-enabled call; a network held fixed in another
network's update is entered with ``models.base.frozen``.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from genlab.core.errors import ConfigError
from genlab.training import speed

# Training noise of rank r is seeded with seed + r * RANK_SEED_STRIDE: the ranks draw different
# latents (else every rank would make the same fakes), rank 0 the same as a single process.
RANK_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the job; ``world == 1`` for a plain single-process run."""

    rank: int = 0
    local_rank: int = 0
    world: int = 1
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_world() -> int:
    """WORLD_SIZE as set by torchrun; 1 when started as a single process."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ConfigError("WORLD_SIZE must be an integer (it is set by torchrun)") from None


def setup(device: str, backend: str = "auto", timeout_min: float = 30.0) -> DistEnv:
    """Join the process group of a torchrun launch (once per process) and say where we are.

    ``device`` is the run's device setting; ``backend`` "auto" is NCCL for CUDA, gloo for CPU."""
    world = launched_world()
    if world <= 1:
        return DistEnv()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if backend == "auto":
        backend = "nccl" if cuda else "gloo"
    if backend == "nccl" and not cuda:
        raise ConfigError("train.dist_backend=nccl needs device=cuda; use gloo on CPU")
    if device.startswith("cuda:"):
        msg = f"device={device} names one GPU; under torchrun use device=cuda (rank r takes"
        raise ConfigError(f"{msg} cuda:LOCAL_RANK)")
    if cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_min))
    return DistEnv(rank, local, world, dist.get_backend())


def process_device(device: torch.device, env: DistEnv) -> torch.device:
    """The device of this process: ``cuda:LOCAL_RANK`` for a CUDA job, else ``device``."""
    if env.enabled and device.type == "cuda":
        return torch.device("cuda", env.local_rank)
    return device


def broadcast_object(obj: Any, env: DistEnv) -> Any:
    """Rank 0's ``obj`` on every rank (e.g. the run directory named from the clock)."""
    if not env.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any, env: DistEnv) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not env.enabled:
        return [obj]
    out: list[Any] = [None] * env.world
    dist.all_gather_object(out, obj)
    return out


def mean_over_ranks(values: dict[str, float], env: DistEnv, device: torch.device) -> dict:
    """The mean of each logged scalar over the ranks (one all-reduce): the job's loss, not
    rank 0's; every rank gets the same numbers, so all of them stop together on a NaN."""
    if not env.enabled or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(values, (t / env.world).tolist(), strict=True))


def any_rank(flag: bool, env: DistEnv, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any (a Ctrl-C seen by one process)."""
    if not env.enabled:
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


class DistributedNet(DistributedDataParallel):
    """DDP whose attributes fall through to the wrapped network, so ``train_step`` can still
    read ``self.generator.latent_dim``. Only ``forward`` is synchronised: a method reached
    through the fall-through runs unsynchronised and must not be used to train."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            return getattr(self.module, name)

    def __getitem__(self, index: int) -> nn.Module:  # a Sequential network's layers
        return self.module[index]


def _average_grad(param: torch.Tensor, world: int) -> None:
    dist.all_reduce(param.grad)
    param.grad.div_(world)


class DataParallel:
    """DDP over each trainable top-level network of ``model``, active inside ``active()``.

    Trainable parameters owned by the model itself (a learned likelihood scale) are no
    network's: their gradient is averaged by an all-reduce hook when it is accumulated.
    Buffers are copied from rank 0 once, not at each forward (``forward_sync_buffers=False``):
    batch-norm running statistics stay per rank unless ``sync_batchnorm`` (CUDA) makes them
    global; rank 0's are the ones saved."""

    def __init__(self, model: nn.Module, env: DistEnv, device: torch.device, *, sync_bn: bool):
        if sync_bn:
            if device.type != "cuda":
                raise ConfigError("train.sync_batchnorm needs CUDA (torch's SyncBatchNorm)")
            for name, child in list(model.named_children()):
                setattr(model, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
        ids = [device.index] if device.type == "cuda" else None
        self.wrapped = [
            (parent, name, DistributedNet(
                net, device_ids=ids, forward_sync_buffers=False, gradient_as_bucket_view=True
            ))
            for parent, name, net in speed.networks(model)
        ]  # fmt: skip
        for p in model.parameters(recurse=False):
            if p.requires_grad:
                dist.broadcast(p.data, src=0)
                p.register_post_accumulate_grad_hook(lambda q: _average_grad(q, env.world))

    @contextmanager
    def active(self) -> Iterator[None]:
        for parent, name, wrapper in self.wrapped:
            parent._modules[name] = wrapper
        try:
            yield
        finally:
            for parent, name, wrapper in self.wrapped:
                parent._modules[name] = wrapper.module
