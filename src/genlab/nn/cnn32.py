"""The 32x32 "standard CNN" of the CIFAR-10 GAN comparisons: Miyato et al. 2018, "Spectral
Normalization for Generative Adversarial Networks" (arXiv:1802.05957), Table 3, the network
behind their standard-CNN rows of Table 2 and PyTorch-StudioGAN's ``deep_conv`` backbone.

Generator, z (B, Z) -> (B, C, 32, 32) pre-activation (the caller adds the Tanh):

    dense Z -> 4 x 4 x 8w, norm, ReLU                      (B, 8w, 4, 4)
    deconv 4x4 stride 2 -> 4w, norm, ReLU                  (B, 4w, 8, 8)
    deconv 4x4 stride 2 -> 2w, norm, ReLU                  (B, 2w, 16, 16)
    deconv 4x4 stride 2 -> w,  norm, ReLU                  (B, w, 32, 32)
    conv 3x3 stride 1 -> C                                 (B, C, 32, 32)

with w = 64 in the paper (widths 512, 256, 128, 64). The norm after the dense layer runs over
its 4 * 4 * 8w features, as in the authors' Chainer code (chainer-gan-lib ``DCGANGenerator``);
StudioGAN's ``deep_conv`` has no norm or activation there.

Discriminator, x (B, C, 32, 32) -> features (B, 8w * 4 * 4); the caller's dense layer gives the
score:

    conv 3x3 s1 -> w, conv 4x4 s2 -> w       (B, w, 16, 16)
    conv 3x3 s1 -> 2w, conv 4x4 s2 -> 2w     (B, 2w, 8, 8)
    conv 3x3 s1 -> 4w, conv 4x4 s2 -> 4w     (B, 4w, 4, 4)
    conv 3x3 s1 -> 8w                        (B, 8w, 4, 4), flattened

each conv followed by LeakyReLU(0.1) (the slope the paper gives for all its lReLUs), with
w = 64 (widths 64, 64, 128, 128, 256, 256, 512). The dense layer reads the flattened 4x4x512
maps, as the authors' code does; StudioGAN sums them over the 4x4 positions instead. Every
layer comes from the factory, so spectral norm (SN-GAN) or a norm after each conv but the first
(DCGAN's batch norm, WGAN-GP's layer norm) is switched there. Biases are dropped where a
batch/instance norm follows, whose mean subtraction would cancel them.
"""

from __future__ import annotations

import itertools

from torch import Tensor, nn

from genlab.nn.layers import LayerFactory

SIZE = 32  # the only image side these networks take
BASE = 4  # side of the smallest maps
SLOPE = 0.1  # LeakyReLU slope of every discriminator layer (Miyato et al. 2018, Table 3)
G_MULTIPLES = (8, 4, 2, 1)  # generator widths in units of w, from the dense layer down
# Discriminator convs: (width in units of w, kernel, stride); padding 1 throughout, so a
# 3x3 stride-1 conv keeps the side and a 4x4 stride-2 conv halves it.
D_LAYERS = ((1, 3, 1), (1, 4, 2), (2, 3, 1), (2, 4, 2), (4, 3, 1), (4, 4, 2), (8, 3, 1))


class CNN32Generator(nn.Module):
    """(B, latent_dim) -> (B, channels, 32, 32) pre-activation; ``width`` w = 64 is the paper's
    network (see the module docstring for the layers)."""

    def __init__(self, latent_dim: int, channels: int, width: int, factory: LayerFactory) -> None:
        super().__init__()
        widths = [width * m for m in G_MULTIPLES]
        bias = factory.bias_before_norm
        dense = widths[0] * BASE * BASE
        layers: list[nn.Module] = [
            factory.linear(latent_dim, dense, bias=bias),
            factory.norm1d(dense),
            nn.ReLU(inplace=True),
            nn.Unflatten(1, (widths[0], BASE, BASE)),  # (B, 8w, 4, 4)
        ]
        for c_in, c_out in itertools.pairwise(widths):  # each doubles the side
            layers += [factory.conv_t(c_in, c_out, 4, 2, 1, bias=bias), factory.norm2d(c_out)]
            layers.append(nn.ReLU(inplace=True))
        layers.append(factory.conv(widths[-1], channels, 3, 1, 1))  # (B, C, 32, 32)
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class CNN32Encoder(nn.Module):
    """(B, channels, 32, 32) -> (B, 8w * 4 * 4): the discriminator's seven convs, flattened.
    No norm after the first conv (DCGAN); ``features`` and ``out_shape`` as ``ConvEncoder``."""

    def __init__(self, channels: int, width: int, factory: LayerFactory) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for i, (multiple, k, s) in enumerate(D_LAYERS):
            c_out = width * multiple
            first = i == 0
            layers.append(
                factory.conv(c_in, c_out, k, s, 1, bias=first or factory.bias_before_norm)
            )
            if not first:
                layers.append(factory.norm2d(c_out))
            layers.append(nn.LeakyReLU(SLOPE, inplace=True))
            c_in = c_out
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.features = c_in * BASE * BASE
        self.out_shape = (c_in, BASE, BASE)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
