"""DCGAN-style convolutional trunks that adapt to the image size (Radford et al. 2016,
arXiv:1511.06434): strided convolutions instead of pooling, no fully connected hidden layers.

Sizes follow n_out = floor((n_in + 2p - k) / s) + 1 for a convolution and
n_out = s (n_in - 1) - 2p + k for a transposed one. With k=4, s=2, p=1 both exactly halve or
double an even size, so an image of size S is reached from a base size B by doubling
``n_up`` times, where B is found by halving S while it is even and the half is at least 4
(64 -> 4 in 4 steps, 32 -> 4 in 3, 28 -> 7 in 2, 8 -> 4 in 1).

A decoder doubles either with those transposed convolutions (``upsample="transposed"``) or with
a nearest-neighbour resize followed by a k=3, s=1, p=1 convolution (``upsample="nearest"``,
which keeps the size). Odena et al. 2016, "Deconvolution and Checkerboard Artifacts"
(https://distill.pub/2016/deconv-checkerboard/): in a stride-2 transposed convolution even and
odd output pixels are painted by different kernel taps, so unless the learned weights balance
exactly the output carries a period-2 checkerboard; resize-then-convolve applies the same taps
to every output pixel, so it has no such built-in period.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from torch import Tensor, nn

from genlab.core.errors import ConfigError
from genlab.nn.layers import LayerFactory


def conv_out(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def conv_t_out(n: int, k: int, s: int, p: int) -> int:
    return s * (n - 1) - 2 * p + k


def size_plan(size: int) -> tuple[int, int]:
    """(number of stride-2 stages, base size) for a square image of side ``size``."""
    n, base = 0, size
    while base % 2 == 0 and base // 2 >= 4:
        base //= 2
        n += 1
    if n == 0 or base > 8:
        raise ConfigError(
            f"image size {size} cannot be reached by doubling a base of 4 to 8 "
            f"(k=4, s=2, p=1 layers); use a size such as 8, 16, 28, 32 or 64"
        )
    return n, base


Upsample = Literal["transposed", "nearest"]


def _double_transposed(factory: LayerFactory, c_in: int, c_out: int, bias: bool) -> list[nn.Module]:
    return [factory.conv_t(c_in, c_out, 4, 2, 1, bias=bias)]


def _double_nearest(factory: LayerFactory, c_in: int, c_out: int, bias: bool) -> list[nn.Module]:
    return [
        nn.Upsample(scale_factor=2, mode="nearest"),
        factory.conv(c_in, c_out, 3, 1, 1, bias=bias),
    ]


# The layers that double the side of a (B, c_in, n, n) map to (B, c_out, 2n, 2n).
UPSAMPLERS: dict[str, Callable[[LayerFactory, int, int, bool], list[nn.Module]]] = {
    "transposed": _double_transposed,
    "nearest": _double_nearest,
}


def dcgan_init(module: nn.Module) -> None:
    """N(0, 0.02) weights for conv/linear layers, N(1, 0.02) for batch-norm scales (DCGAN)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            # Under spectral norm the trainable tensor is the parametrization's original.
            sn = getattr(m, "parametrizations", None)
            weight = sn.weight.original if sn is not None else m.weight
            nn.init.normal_(weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class ConvEncoder(nn.Module):
    """(B, C, S, S) -> (B, features): stride-2 convs doubling the width from ``width``, then
    flatten. No norm on the first layer (DCGAN); LeakyReLU(0.2)."""

    def __init__(self, channels: int, size: int, width: int, factory: LayerFactory) -> None:
        super().__init__()
        n, base = size_plan(size)
        layers: list[nn.Module] = []
        c_in, c_out = channels, width
        for i in range(n):
            first = i == 0
            bias = first or factory.bias_before_norm
            layers.append(factory.conv(c_in, c_out, 4, 2, 1, bias=bias))
            if not first:
                layers.append(factory.norm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_in, c_out = c_out, c_out * 2
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.features = c_in * base * base
        self.out_shape = (c_in, base, base)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """(B, latent) -> (B, C, S, S) pre-activation: a transposed conv to the base size, then
    stride-2 doublings (``upsample``, see ``UPSAMPLERS``) halving the width down to ``width``;
    ReLU and norm between layers, none after the last (the caller picks tanh, sigmoid logits or
    a Gaussian mean)."""

    def __init__(
        self,
        latent_dim: int,
        channels: int,
        size: int,
        width: int,
        factory: LayerFactory,
        upsample: Upsample = "transposed",
    ) -> None:
        super().__init__()
        n, base = size_plan(size)
        if upsample not in UPSAMPLERS:
            raise ConfigError(f"upsample {upsample!r}: choose from {', '.join(UPSAMPLERS)}")
        double = UPSAMPLERS[upsample]
        c = width * 2 ** (n - 1)
        bias = factory.bias_before_norm
        layers: list[nn.Module] = [
            nn.Unflatten(1, (latent_dim, 1, 1)),
            factory.conv_t(latent_dim, c, base, 1, 0, bias=bias),  # 1x1 -> base x base
            factory.norm2d(c),
            nn.ReLU(inplace=True),
        ]
        for _ in range(n - 1):
            layers += [*double(factory, c, c // 2, bias), factory.norm2d(c // 2)]
            layers.append(nn.ReLU(inplace=True))
            c //= 2
        layers += double(factory, c, channels, True)  # last doubling, no norm
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)
