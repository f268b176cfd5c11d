"""Architecture sizes: the size formulas against real torch layers, for every supported size."""

import pytest
import torch
from torch import nn

from genlab.core.errors import ConfigError
from genlab.nn.conv import ConvDecoder, ConvEncoder, conv_out, conv_t_out, size_plan
from genlab.nn.layers import LayerFactory
from genlab.nn.mlp import mlp


@pytest.mark.parametrize(
    ("n", "k", "s", "p"), [(28, 4, 2, 1), (7, 3, 1, 0), (9, 4, 2, 1), (5, 5, 3, 2)]
)
def test_size_formulas_match_torch(n, k, s, p):
    x = torch.zeros(1, 1, n, n)
    assert nn.Conv2d(1, 1, k, s, p)(x).shape[-1] == conv_out(n, k, s, p)
    assert nn.ConvTranspose2d(1, 1, k, s, p)(x).shape[-1] == conv_t_out(n, k, s, p)


@pytest.mark.parametrize(
    ("size", "plan"),
    [(8, (1, 4)), (16, (2, 4)), (28, (2, 7)), (32, (3, 4)), (64, (4, 4)), (12, (1, 6))],
)
def test_size_plan(size, plan):
    assert size_plan(size) == plan


@pytest.mark.parametrize("size", [7, 9, 6, 36])
def test_unreachable_size_is_a_clear_error(size):
    with pytest.raises(ConfigError, match=f"image size {size}"):
        size_plan(size)


@pytest.mark.parametrize("size", [8, 16, 28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_conv_trunks_reach_every_size(size, channels):
    factory = LayerFactory()
    enc = ConvEncoder(channels, size, 8, factory)
    dec = ConvDecoder(5, channels, size, 8, factory)
    x = torch.randn(2, channels, size, size)
    assert enc(x).shape == (2, enc.features)
    assert dec(torch.randn(2, 5)).shape == (2, channels, size, size)


def test_factory_switches_norm_and_spectral_norm():
    sn = LayerFactory(norm="none", spectral=True)
    conv = sn.conv(3, 4, 3, 1, 1)
    assert hasattr(conv, "parametrizations") and isinstance(sn.norm2d(4), nn.Identity)
    assert isinstance(LayerFactory("batch").norm2d(4), nn.BatchNorm2d)
    assert isinstance(LayerFactory("layer").norm2d(4), nn.GroupNorm)


def test_mlp_layout():
    net = mlp([2, 16, 16, 1])
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 16), (16, 16), (16, 1)]
    assert isinstance(net[-1], nn.Linear)  # no activation after the output layer
