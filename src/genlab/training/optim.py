"""Optimizers from the train config; models call this from ``configure_optimizers``."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from genlab.config import TrainConfig


def make_optimizer(
    params: Iterable[nn.Parameter], train: TrainConfig, lr: float | None = None
) -> torch.optim.Optimizer:
    """Adam/AdamW use ``train.betas``; RMSprop and SGD ignore them."""
    lr = train.lr if lr is None else lr
    params = [p for p in params if p.requires_grad]
    if train.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=train.betas, weight_decay=train.weight_decay)
    if train.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=train.betas, weight_decay=train.weight_decay)
    if train.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=train.weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=train.weight_decay)
