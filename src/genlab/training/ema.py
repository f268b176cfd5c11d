"""Exponential moving average of one submodule (the generator or decoder).

shadow <- d * shadow + (1 - d) * current for parameters, with the warm-up
d = min(decay, (1 + t) / (10 + t)) at update t (as TensorFlow's ExponentialMovingAverage with
num_updates) so early averages are not dominated by the random initial weights; buffers
(batch-norm running statistics) are copied. Sampling with ``swapped`` uses the averaged
weights (Yazici et al. 2019, arXiv:1806.04498, show EMA generators give better samples)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


class EMA:
    def __init__(self, module: nn.Module, decay: float) -> None:
        self.module, self.decay = module, decay
        self.shadow: dict[str, Tensor] = {
            k: v.detach().clone() for k, v in module.state_dict().items()
        }
        # The live tensors, paired with their shadows once: no module traversal per step.
        params = dict(module.named_parameters())
        live = module.state_dict(keep_vars=True)
        averaged = [k for k in self.shadow if k in params and self.shadow[k].is_floating_point()]
        copied = [k for k in self.shadow if k not in averaged]
        self._avg = ([self.shadow[k] for k in averaged], [live[k] for k in averaged])
        self._copy = ([self.shadow[k] for k in copied], [live[k] for k in copied])

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Fold in the current weights after update number ``step`` (1-based)."""
        weight = 1.0 - self.decay_at(step)
        for shadow, value in zip(*self._avg, strict=True):
            shadow.lerp_(value, weight)
        for shadow, value in zip(*self._copy, strict=True):
            shadow.copy_(value)

    @contextmanager
    def swapped(self) -> Iterator[None]:
        """Inside, the module holds the averaged weights; its own are restored after."""
        own = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        self.module.load_state_dict(self.shadow)
        try:
            yield
        finally:
            self.module.load_state_dict(own)

    def state_dict(self) -> dict[str, Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        for k, v in state.items():
            self.shadow[k].copy_(v)
