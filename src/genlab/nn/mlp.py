"""Multi-layer perceptrons."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from torch import nn

from genlab.nn.layers import LayerFactory


def mlp(
    sizes: Sequence[int],
    *,
    act: type[nn.Module] = nn.ReLU,
    factory: LayerFactory | None = None,
    bias: bool = True,
) -> nn.Sequential:
    """Linear layers between consecutive ``sizes`` with norm + activation between them (none
    after the last): ``mlp([2, 128, 128, 1])`` is a 2-hidden-layer network. ``bias=False``
    drops every linear layer's bias."""
    factory = factory or LayerFactory(norm="none")
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(itertools.pairwise(sizes)):
        last = i == len(sizes) - 2
        layers.append(factory.linear(d_in, d_out, bias=bias))
        if not last:
            layers += [factory.norm1d(d_out), act()]
    return nn.Sequential(*layers)
