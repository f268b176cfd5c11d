"""The 32x32 standard CNN (Miyato et al. 2018, Table 3) as ``model.arch=cnn32``: the layer
sequence, widths, kernels and strides of G and D against the table, parameter counts against a
hand computation, spectral norm on every D layer of SN-GAN, shapes, conditioning, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genlab.core.config import build_config
from genlab.core.errors import ConfigError
from genlab.data.base import DataSpec
from genlab.models import build_model

CIFAR = DataSpec("image", (3, 32, 32), 10, tuple(f"c{i}" for i in range(10)))

# Table 3 of arXiv:1802.05957, written out: (kind, c_in, c_out, kernel, stride).
G_TABLE = [
    ("deconv", 512, 256, 4, 2),
    ("deconv", 256, 128, 4, 2),
    ("deconv", 128, 64, 4, 2),
    ("conv", 64, 3, 3, 1),
]
D_TABLE = [
    (3, 64, 3, 1),
    (64, 64, 4, 2),
    (64, 128, 3, 1),
    (128, 128, 4, 2),
    (128, 256, 3, 1),
    (256, 256, 4, 2),
    (256, 512, 3, 1),
]


def model(name: str, spec: DataSpec = CIFAR, **overrides):
    cfg = build_config(
        name, overrides={"model.arch": "cnn32", "model.latent_dim": 128, **overrides}
    )
    torch.manual_seed(0)
    return build_model(cfg.model, spec)


def layers(net: nn.Module, kinds) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, kinds)]


def test_generator_follows_the_table():
    g = model("dcgan").generator
    (dense,) = layers(g, nn.Linear)
    assert (dense.in_features, dense.out_features) == (128, 4 * 4 * 512)
    convs = layers(g, (nn.Conv2d, nn.ConvTranspose2d))
    kind = lambda c: "deconv" if isinstance(c, nn.ConvTranspose2d) else "conv"  # noqa: E731
    got = [(kind(c), c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs]
    assert got == G_TABLE
    # BN after the dense layer and after each deconv, none after the last conv; ReLUs, Tanh.
    norms = [m.num_features for m in layers(g, (nn.BatchNorm1d, nn.BatchNorm2d))]
    assert norms == [8192, 256, 128, 64]
    assert len(layers(g, nn.ReLU)) == 4 and isinstance(list(g.modules())[-1], nn.Tanh)


def test_discriminator_follows_the_table():
    d = model("sngan").discriminator
    convs = layers(d, nn.Conv2d)
    got = [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs]
    assert got == D_TABLE
    assert all(c.padding == (1, 1) for c in convs)
    relus = layers(d, nn.LeakyReLU)
    assert len(relus) == 7 and all(r.negative_slope == 0.1 for r in relus)
    (head,) = layers(d, nn.Linear)  # dense -> 1 on the flattened 4x4x512 maps
    assert (head.in_features, head.out_features) == (4 * 4 * 512, 1)


def test_shapes_through_the_networks():
    m = model("dcgan")
    x = m.sample(3, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 3, 32, 32) and x.abs().max() <= 1
    assert m.critic(x).shape == (3,)
    assert m.features(x).shape == (3, 512 * 4 * 4)
    maps = m.discriminator.trunk.net[:-1](x)  # before the flatten
    assert maps.shape == (3, 512, 4, 4)


def test_parameter_counts_match_a_hand_computation():
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    # G with batch norm: no bias before a norm (its mean would cancel it); a BN has 2 per unit.
    g = 128 * 8192 + 2 * 8192
    g += 512 * 256 * 16 + 2 * 256 + 256 * 128 * 16 + 2 * 128 + 128 * 64 * 16 + 2 * 64
    g += 64 * 3 * 9 + 3
    assert count(model("dcgan").generator) == g == 3_820_099
    # StudioGAN's deep_conv G (biases everywhere, no norm after the dense layer) has
    # 3,812,355, the number its CIFAR-10 DCGAN log prints: the same up to these terms.
    assert g - 2 * 8192 + 8192 + 256 + 128 + 64 == 3_812_355
    # SN-GAN's D: no norms, so every conv keeps its bias; the dense head has 8192 + 1.
    d = sum(i * o * k * k + o for i, o, k, _ in D_TABLE) + 8192 + 1
    assert count(model("sngan").discriminator) == d == 2_935_873


def test_sngan_normalises_every_discriminator_layer_and_no_generator_layer():
    m = model("sngan")
    weighted = layers(m.discriminator, (nn.Conv2d, nn.Linear))
    assert len(weighted) == 8  # seven convs and the head
    assert all(hasattr(w, "parametrizations") and "weight" in w.parametrizations for w in weighted)
    assert not any(hasattr(w, "parametrizations") for w in layers(m.generator, (nn.Conv2d,)))
    assert not layers(m.discriminator, (nn.BatchNorm2d, nn.GroupNorm))


@pytest.mark.parametrize(
    ("name", "norm", "count"), [("dcgan", nn.BatchNorm2d, 6), ("wgan_gp", nn.GroupNorm, 6)]
)
def test_discriminator_norms_follow_the_factory(name, norm, count):
    # Every conv but the first gets the variant's norm (DCGAN batch norm, WGAN-GP layer norm).
    assert len(layers(model(name).discriminator, norm)) == count


def test_width_scales_every_layer():
    m = model("dcgan", **{"model.g_width": 8, "model.d_width": 4})
    assert [c.out_channels for c in layers(m.generator, nn.ConvTranspose2d)] == [32, 16, 8]
    assert [c.out_channels for c in layers(m.discriminator, nn.Conv2d)] == [4, 4, 8, 8, 16, 16, 32]


def test_conditional_cnn32_trains_with_projection_and_channels():
    for join in ("projection", "channels"):
        m = model("cgan", **{"model.g_width": 4, "model.d_width": 4, "model.d_condition": join})
        labels = torch.arange(4) % 10
        x = m.sample(4, labels=labels, generator=torch.Generator().manual_seed(0))
        assert x.shape == (4, 3, 32, 32) and m.critic(x, labels).shape == (4,)


def test_grey_32x32_images_work():
    m = model("dcgan", DataSpec("image", (1, 32, 32), 10), **{"model.g_width": 4})
    assert m.sample(2).shape == (2, 1, 32, 32)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (DataSpec("image", (3, 28, 28), 10), "model.arch=cnn32 is a 32x32 network"),
        (DataSpec("points", (2,)), "model.arch=cnn32 needs image data"),
    ],
)
def test_wrong_data_is_a_one_line_config_error(spec, fragment):
    with pytest.raises(ConfigError, match=fragment) as err:
        model("dcgan", spec)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("preset", "model_fields", "train"),
    [
        (
            "dcgan_cifar10",
            {"name": "dcgan", "loss": "nonsaturating", "n_critic": 2},
            {"lr": 2e-4, "betas": (0.5, 0.999), "batch_size": 64, "steps": 200_000},
        ),
        (
            "sngan_cifar10",
            {"name": "sngan", "loss": "hinge", "spectral_norm": True, "n_critic": 1},
            {"lr": 2e-4, "betas": (0.5, 0.999), "batch_size": 64, "steps": 100_000},
        ),
        (
            "wgan_gp_cifar10",
            {"name": "wgan_gp", "loss": "wasserstein", "gp_weight": 10.0, "n_critic": 5},
            {"lr": 1e-4, "betas": (0.5, 0.9), "batch_size": 64, "steps": 100_000},
        ),
    ],
)
def test_cifar10_presets(preset, model_fields, train):
    cfg = build_config(preset=preset)
    assert cfg.data.name == "cifar10"
    assert cfg.model.arch == "cnn32" and cfg.model.latent_dim == 128
    assert cfg.model.model_dump(include=set(model_fields)) == model_fields
    assert cfg.train.model_dump(include=set(train)) == train
