"""Encoder / decoder networks for the autoencoder families, MLP or convolutional.

An encoder maps (B, C, H, W) images to (B, out_dim) through a linear last layer, so the caller
reads a code, or a (mu, logvar) pair, from it. A decoder maps (B, latent_dim) codes to a
pre-activation (B, C, H, W): the caller picks sigmoid logits, tanh or a Gaussian mean.
``conv_blocks`` splits a convolutional trunk into its stride-2 stages so intermediate features
can be read (the learned similarity of a VAE-GAN).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import nn

from genlab.nn.conv import ConvDecoder, ConvEncoder, Upsample
from genlab.nn.layers import LayerFactory
from genlab.nn.mlp import mlp

Arch = Literal["mlp", "conv"]


def image_encoder(
    shape: Sequence[int],
    out_dim: int,
    *,
    arch: Arch,
    width: int,
    hidden: Sequence[int],
    factory: LayerFactory,
    extra_inputs: int = 0,
    bias: bool = True,
    mlp_norm: bool = False,
) -> nn.Module:
    """(B, C + extra_inputs, H, W) -> (B, out_dim). conv: ``ConvEncoder`` (first width
    ``width``) + linear, the extra inputs as constant channels; mlp: flatten (the extra inputs
    appended as features: (B, C*H*W + extra_inputs)) + ``hidden`` widths with ``bias``, and
    ``factory``'s normalisation only with ``mlp_norm``."""
    c, h, w = shape
    if arch == "conv":
        trunk = ConvEncoder(c + extra_inputs, h, width, factory)
        return nn.Sequential(trunk, nn.Linear(trunk.features, out_dim))
    net = mlp(
        [c * h * w + extra_inputs, *hidden, out_dim],
        factory=factory if mlp_norm else None,
        bias=bias,
    )
    return nn.Sequential(nn.Flatten(), net)


def image_decoder(
    latent_dim: int,
    shape: Sequence[int],
    *,
    arch: Arch,
    width: int,
    hidden: Sequence[int],
    factory: LayerFactory,
    upsample: Upsample = "transposed",
    bias: bool = True,
    mlp_norm: bool = False,
) -> nn.Module:
    """(B, latent_dim) -> pre-activation (B, C, H, W), mirroring ``image_encoder``; conv
    doubles the size with ``upsample`` layers."""
    c, h, w = shape
    if arch == "conv":
        return ConvDecoder(latent_dim, c, h, width, factory, upsample)
    net = mlp(
        [latent_dim, *reversed(hidden), c * h * w],
        factory=factory if mlp_norm else None,
        bias=bias,
    )
    return nn.Sequential(net, nn.Unflatten(1, (c, h, w)))


def conv_blocks(trunk: ConvEncoder) -> nn.ModuleList:
    """The stride-2 stages of ``trunk`` as separate modules, each (conv, [norm], activation) and
    each halving the side; the trailing flatten is dropped. Running them in order gives the
    trunk's output before flattening, with every stage's features on the way."""
    blocks: list[nn.Module] = []
    current: list[nn.Module] = []
    for layer in trunk.net:
        if isinstance(layer, nn.Flatten):
            break
        current.append(layer)
        # ConvEncoder ends every stage with its activation: that closes a block.
        if isinstance(layer, nn.LeakyReLU):
            blocks.append(nn.Sequential(*current))
            current = []
    return nn.ModuleList(blocks)
