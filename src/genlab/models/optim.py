"""Optimizers from the train config; models call this from ``configure_optimizers``."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from genlab.core.config import TrainConfig

# Optimizers with a fused CUDA kernel: one launch for every parameter's update.
FUSED = {"adam", "adamw", "sgd"}


def fast_options(params: list, optimizer: str) -> dict[str, bool]:
    """``fused=True`` when every parameter is on CUDA and the optimizer has a fused kernel;
    otherwise PyTorch's default (the multi-tensor ``foreach`` path)."""
    on_cuda = bool(params) and all(p.is_cuda for p in params)
    return {"fused": True} if on_cuda and optimizer in FUSED else {}


def make_optimizer(
    params: Iterable[nn.Parameter], train: TrainConfig, lr: float | None = None
) -> torch.optim.Optimizer:
    """Adam/AdamW use ``train.betas``; RMSprop and SGD ignore them. Fused kernels on CUDA."""
    lr = train.lr if lr is None else lr
    params = [p for p in params if p.requires_grad]
    fast = fast_options(params, train.optimizer)
    wd = train.weight_decay
    if train.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=train.betas, weight_decay=wd, **fast)
    if train.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=train.betas, weight_decay=wd, **fast)
    if train.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=wd)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd, **fast)


def decay_factor(kind: str, step: int, steps: int) -> float:
    """The lr multiplier before update ``step`` (0-based) of ``steps``: 1 for ``none``;
    ``linear`` falls from 1 at step 0 to 1/steps at the last update and would reach 0 at
    ``steps`` (the schedule of the WGAN-GP authors' CIFAR-10 ResNet runs, Gulrajani et al. 2017)."""
    return 1.0 if kind == "none" else 1.0 - step / steps


def apply_lr_decay(optimizers: dict, kind: str, step: int, steps: int) -> None:
    """Set every param group's lr to its starting lr (kept in the group as ``base_lr``, so it
    travels with the optimizer's state in a checkpoint) times ``decay_factor``."""
    f = decay_factor(kind, step, steps)
    for opt in optimizers.values():
        for group in opt.param_groups:
            group["lr"] = group.setdefault("base_lr", group["lr"]) * f
