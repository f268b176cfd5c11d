"""The speed options of ``train.*`` (docs/performance.md): mixed precision, channels-last memory
layout, ``torch.compile`` of each network, and the learning-rate rule of data parallel runs.
Each is a function of the config and the model, so the trainer and ``genlab bench`` apply
exactly the same thing."""

from __future__ import annotations

import math
import os
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn

from genlab.core.config import TrainConfig
from genlab.core.errors import ConfigError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(train: TrainConfig, device: torch.device) -> AbstractContextManager:
    """The autocast context of a training step: bf16 or fp16 on CPU or CUDA, none for fp32.
    Matmuls and convolutions run in the low precision; losses and reductions stay fp32
    (PyTorch's autocast op lists)."""
    if train.precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[train.precision])


def grad_scaler(train: TrainConfig, device: torch.device) -> torch.amp.GradScaler | None:
    """fp16 needs loss scaling so that small gradients do not flush to zero; bf16 has fp32's
    exponent range and does not."""
    if train.precision != "fp16":
        return None
    if device.type not in ("cuda", "cpu"):
        raise ConfigError(f"train.precision=fp16 is not supported on {device.type}")
    return torch.amp.GradScaler(device.type)


def networks(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, name, network) for each network of a model with trainable weights: its
    top-level modules, and the entries of a top-level ModuleDict / ModuleList (a container
    has no forward of its own). What compile and DDP wrap."""
    found = []
    for name, child in model.named_children():
        if isinstance(child, nn.ModuleDict | nn.ModuleList):
            found += [(child, sub_name, sub) for sub_name, sub in child.named_children()]
        else:
            found.append((model, name, child))
    return [(pa, n, net) for pa, n, net in found if any(p.requires_grad for p in net.parameters())]


def trainable_networks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, network) of ``networks``: the model's networks with trainable weights."""
    return [(name, net) for _, name, net in networks(model)]


def apply_memory_format(model: nn.Module, train: TrainConfig, image_data: bool) -> None:
    """Channels-last (NHWC) weights for convolution networks on image data."""
    if train.channels_last and image_data:
        model.to(memory_format=torch.channels_last)


def to_memory_format(batch: dict[str, torch.Tensor], train: TrainConfig) -> None:
    """Channels-last images (B, C, H, W) in place of a batch, when ``train.channels_last``."""
    x = batch["x"]
    if train.channels_last and x.dim() == 4:
        batch["x"] = x.contiguous(memory_format=torch.channels_last)


def compile_networks(model: nn.Module, train: TrainConfig) -> None:
    """``torch.compile`` each trainable network in place (parameter names are unchanged, so
    checkpoints stay interchangeable with uncompiled runs). The model's own Python (losses,
    critic iterations) stays eager; each network compiles on its first call."""
    if train.compile:
        separate_inductor_cache()
        for _, net in trainable_networks(model):
            net.compile()


def separate_inductor_cache() -> None:
    """Under ``ATEN_CPU_CAPABILITY`` (a restricted instruction set), keep torch.compile's kernel
    cache apart from the unrestricted one: torch 2.13 reuses a cached CPU kernel built for the
    other instruction set, and its call fails (``SystemError ... returned a result with an
    exception set``). A ``TORCHINDUCTOR_CACHE_DIR`` other than torch's default is left alone."""
    capability = os.environ.get("ATEN_CPU_CAPABILITY")
    if not capability:
        return
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    default = os.path.abspath(default_cache_dir())
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR", default) == default:  # torch sets it when read
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = f"{default}_{capability.lower()}"


def lr_factor(train: TrainConfig, world: int) -> float:
    """The learning-rate multiplier of ``train.lr_scale`` for ``world`` processes: 1, world
    (Goyal et al. 2017, arXiv:1706.02677, for SGD) or sqrt(world) (often used with Adam)."""
    return {"none": 1.0, "linear": float(world), "sqrt": math.sqrt(world)}[train.lr_scale]


def scaled(train: TrainConfig, world: int) -> TrainConfig:
    """``train`` with ``lr`` and ``lr_d`` multiplied by ``lr_factor``."""
    f = lr_factor(train, world)
    if f == 1.0:
        return train
    lr_d = None if train.lr_d is None else train.lr_d * f
    return train.model_copy(update={"lr": train.lr * f, "lr_d": lr_d})
