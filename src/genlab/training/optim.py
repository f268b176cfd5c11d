"""Optimizers from the train config; models call this from ``configure_optimizers``."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from genlab.config import TrainConfig

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
