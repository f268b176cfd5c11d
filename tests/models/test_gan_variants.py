"""The GAN family as configurations of one class: registry defaults, presets, weight clipping,
the gradient penalty in a step, spectral norm, conditioning, label smoothing, features."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genlab.core.config import build_config
from genlab.core.errors import ConfigError
from genlab.data import load_data
from genlab.data.base import DataSpec
from genlab.losses.adversarial import ADVERSARIAL_LOSSES
from genlab.models import build_model
from genlab.models.gan import GAN
from genlab.training.batches import BatchStream
from helpers import step_batch

CPU = torch.device("cpu")


def tiny(name="dcgan", preset=None, **overrides):
    cfg = build_config(name, preset=preset or f"tiny_{name}", overrides=overrides)
    data = load_data(cfg.data)
    torch.manual_seed(0)
    return cfg, data, build_model(cfg.model, data.spec)


def batch(data, n=8):
    return next(BatchStream(data.train, n, 0, CPU))


def step(cfg, data, model, n=8):
    opts = model.configure_optimizers(cfg.train)
    return model.train_step(step_batch(model, data.train, 0, n), opts, 0)


# ----------------------------------------------------------------------------- registry, presets


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("wgan", {"loss": "wasserstein", "clip": 0.01, "n_critic": 5, "gp_weight": 0.0}),
        ("wgan_gp", {"loss": "wasserstein", "gp_weight": 10.0, "n_critic": 5, "clip": None}),
        ("sngan", {"loss": "hinge", "spectral_norm": True, "d_norm": "none", "n_critic": 5}),
        ("cgan", {"condition": "labels", "d_condition": "projection"}),
    ],
)
def test_variants_are_registry_defaults_of_one_class(name, expected):
    cfg = build_config(name)
    assert cfg.model.model_dump(include=set(expected)) == expected
    assert type(tiny(name)[2]) is GAN


@pytest.mark.parametrize(
    ("preset", "train"),
    [
        ("wgan", {"optimizer": "rmsprop", "lr": 5e-5, "batch_size": 64}),
        ("wgan_gp", {"optimizer": "adam", "lr": 1e-4, "betas": (0.0, 0.9)}),
        ("sngan", {"optimizer": "adam", "lr": 2e-4, "betas": (0.0, 0.9)}),
        ("dcgan_28", {"lr": 2e-4, "betas": (0.5, 0.999), "batch_size": 128}),
    ],
)
def test_paper_presets(preset, train):
    cfg = build_config(preset=preset)
    assert cfg.train.model_dump(include=set(train)) == train


@pytest.mark.parametrize(("preset", "size"), [("dcgan_28", 28), ("dcgan_32", 32), ("dcgan_64", 64)])
def test_dcgan_size_presets_build_for_their_size(preset, size):
    cfg = build_config(preset=preset, overrides={"model.g_width": 4, "model.d_width": 4})
    model = build_model(cfg.model, DataSpec("image", (1, size, size), 10))
    x = model.sample(2, generator=torch.Generator().manual_seed(0))
    assert cfg.data.image_size == size and x.shape == (2, 1, size, size)
    assert model.critic(x).shape == (2,)


# ----------------------------------------------------------------------------- WGAN, WGAN-GP


def test_wgan_clips_every_critic_weight_after_its_step():
    cfg, data, model = tiny("wgan")
    out = step(cfg, data, model)
    params = torch.cat([p.detach().flatten() for p in model.discriminator.parameters()])
    assert params.abs().max().item() <= 0.01
    # DCGAN's N(0, 0.02) init puts many weights beyond 0.01: clipping must have acted.
    assert (params.abs() == 0.01).float().mean() > 0.2
    assert torch.isfinite(out["d_loss"])


def test_wgan_gp_step_logs_a_penalty_in_the_critic_loss():
    cfg, data, model = tiny("wgan_gp")
    out = step(cfg, data, model)
    assert out["gp"] >= 0 and torch.isfinite(out["gp"])
    # d_loss = wasserstein + 10 gp, so it is not just the difference of the mean scores.
    assert out["d_loss"].item() == pytest.approx(
        (out["d_fake"] - out["d_real"] + 10 * out["gp"]).item(), rel=1e-5, abs=1e-6
    )


def test_gradient_penalty_with_batch_norm_is_a_config_error():
    with pytest.raises(ConfigError, match="d_norm=layer"):
        tiny("wgan_gp", **{"model.d_norm": "batch"})


# ----------------------------------------------------------------------------- SN-GAN


def test_sngan_layers_have_unit_spectral_norm_after_power_iterations():
    _, data, model = tiny("sngan")
    layers = [m for m in model.discriminator.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert layers and all(hasattr(m, "parametrizations") for m in layers)
    model.critic(batch(data)["x"])  # the layers work in the network
    with torch.no_grad():
        for _ in range(200):  # in training mode every use of a weight runs one power iteration
            for m in layers:
                m.weight  # noqa: B018
    for m in layers:
        w = m.weight.detach().flatten(1)  # the normalised weight as a (out, in * k * k) matrix
        assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=2e-3)
        raw = m.parametrizations.weight.original.detach().flatten(1)
        sigma = torch.linalg.svdvals(raw)[0]
        torch.testing.assert_close(w, raw / sigma, rtol=1e-3, atol=1e-5)


# ----------------------------------------------------------------------------- label targets


def test_label_smoothing_and_flips_train():
    overrides = {"model.real_label": 0.9, "model.label_flip": 0.1}
    cfg, data, model = tiny("dcgan", **overrides)
    out = step(cfg, data, model)
    assert all(torch.isfinite(v) for v in out.values())


@pytest.mark.parametrize("loss", ["wasserstein", "hinge", "least_squares"])
def test_label_targets_need_a_bce_loss(loss):
    with pytest.raises(ConfigError, match="BCE loss"):
        tiny("dcgan", **{"model.loss": loss, "model.real_label": 0.9})


def test_smoothed_d_loss_is_the_soft_bce():
    _, _, model = tiny("dcgan", **{"model.real_label": 0.9})
    real, fake = torch.tensor([0.3, -1.2, 2.0]), torch.tensor([0.5, -0.7])
    sp = nn.functional.softplus
    # t = 0.9 on reals: 0.9 softplus(-l) + 0.1 softplus(l); fakes keep t = 0.
    expected = (0.9 * sp(-real) + 0.1 * sp(real)).mean() + sp(fake).mean()
    torch.testing.assert_close(model.d_loss(real, fake), expected)


# ----------------------------------------------------------------------------- conditioning

COND_CASES = [
    ("conv", "projection"),
    ("conv", "channels"),
    ("mlp", "projection"),
    ("mlp", "concat"),
]


@pytest.mark.parametrize(("arch", "d_condition"), COND_CASES)
@pytest.mark.parametrize("loss", sorted(ADVERSARIAL_LOSSES))
def test_conditional_gan_trains_with_every_loss(arch, d_condition, loss):
    overrides = {"model.arch": arch, "model.d_condition": d_condition, "model.loss": loss}
    overrides["model.hidden"] = [16]
    cfg, data, model = tiny("cgan", **overrides)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = step(cfg, data, model)
    assert all(torch.isfinite(v) for v in out.values())
    changed = {
        k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])
    }
    assert {"generator", "discriminator"} <= changed


def test_projection_discriminator_adds_the_class_embedding_term():
    _, data, model = tiny("cgan")
    x, y = batch(data, 4)["x"], torch.tensor([0, 3, 3, 9])
    model.eval()
    with torch.no_grad():
        phi = model.features(x, y)
        v = model.discriminator.project.weight  # (F, K): column k embeds class k
        head = model.discriminator.head
        expected = head(phi).squeeze(1) + (v[:, y].T * phi).sum(1)
        torch.testing.assert_close(model.critic(x, y), expected)
        assert not torch.allclose(model.critic(x, y), model.critic(x, torch.zeros_like(y)))


def test_class_labels_steer_samples_and_cycle_by_default():
    _, _, model = tiny("cgan")
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    cycled = model.sample(12, labels=torch.arange(12) % 10, generator=gen())
    assert torch.equal(model.sample(12, generator=gen()), cycled)
    threes = model.sample(12, labels=torch.full((12,), 3), generator=gen())
    assert not torch.allclose(threes, cycled)
    z = model.noise(12, CPU, gen())
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.generate(z, torch.arange(12) % 10), cycled)


@pytest.mark.parametrize(
    "labels",
    [torch.tensor([0, 1, 10]), torch.tensor([0.0, 1.0, 2.0]), torch.tensor([[0, 1, 2]])],
)
def test_bad_class_labels_are_one_line_errors(labels):
    _, _, model = tiny("cgan")
    with pytest.raises(ConfigError, match=r"labels must be 3 class ids in 0\.\.9"):
        model.sample(3, labels=labels)


def test_label_embedding_generator():
    cfg, data, model = tiny("cgan", **{"model.embed_dim": 5})
    assert isinstance(model.generator.code, nn.Embedding)
    before = model.generator.code.weight.clone()
    step(cfg, data, model)
    assert not torch.equal(before, model.generator.code.weight)  # G's optimizer trains it


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"model.arch": "mlp", "model.d_condition": "channels"}, "use concat or projection"),
        ({"model.d_condition": "concat"}, "use channels or projection"),
        ({"model.condition": "none", "model.embed_dim": 4}, "needs model.condition=labels"),
        ({"model.condition": "attrs"}, "binary attributes"),
    ],
)
def test_conditioning_config_errors(overrides, match):
    with pytest.raises(ConfigError, match=match) as err:
        tiny("cgan", **overrides)
    assert "\n" not in str(err.value)


def test_labels_needed_from_the_data():
    cfg = build_config("cgan", preset="tiny_cgan")
    with pytest.raises(ConfigError, match="needs labelled data"):
        build_model(cfg.model, DataSpec("image", (1, 16, 16)))


@pytest.fixture(scope="module")
def shapes_gan():
    overrides = {"model.condition": "attrs", "data.num_samples": 64, "data.image_size": 32}
    cfg = build_config("cgan", preset="tiny_cgan", data="shapes", overrides=overrides)
    data = load_data(cfg.data)
    torch.manual_seed(0)
    return cfg, data, build_model(cfg.model, data.spec)


def test_attribute_gan_tracks_attribute_frequencies(shapes_gan):
    cfg, data, model = shapes_gan
    assert model.num_attrs == len(data.spec.attr_names) and model.num_classes is None
    opts = model.configure_optimizers(cfg.train)
    stream, seen = BatchStream(data.train, 16, 0, CPU), []
    for i in range(3):
        b = stream.take(model.batches_for_step(i))
        seen.append(b["attrs"])
        out = model.train_step(b, opts, i)
    assert all(torch.isfinite(v) for v in out.values())
    torch.testing.assert_close(model.attr_freq, torch.cat(seen).mean(0))


def test_attribute_gan_samples_attributes_at_their_frequencies(shapes_gan):
    _, data, model = shapes_gan
    freq = torch.linspace(0.05, 0.95, model.num_attrs)
    model.attr_freq.copy_(freq)
    drawn = model.sample_labels(4000, generator=torch.Generator().manual_seed(0))
    assert drawn.shape == (4000, model.num_attrs) and set(drawn.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(drawn.mean(0), freq, atol=0.04, rtol=0)  # 5 binomial std
    x = model.sample(3, labels=torch.eye(model.num_attrs)[:3])
    assert x.shape == (3, *data.spec.shape)
    with pytest.raises(ConfigError, match="attribute values 0 or 1"):
        model.sample(3, labels=torch.full((3, model.num_attrs), 0.5))


# ----------------------------------------------------------------------------- contract, reuse


@pytest.mark.parametrize(("name", "width"), [("dcgan", 16 * 4 * 4), ("gan", 16)])
def test_features_are_the_penultimate_layer(name, width):
    _, data, model = tiny(name)
    x = batch(data, 5)["x"]
    phi = model.features(x)
    assert phi.shape == (5, width)
    with torch.no_grad():  # the head is linear in the features
        torch.testing.assert_close(model.discriminator.head(phi).squeeze(1), model.critic(x))


def test_sample_is_generate_of_noise():
    _, _, model = tiny("dcgan")
    gen = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    expected = model.sample(6, generator=gen())
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.generate(model.noise(6, CPU, gen())), expected)


def test_train_step_draws_noise_through_the_overridable_method():
    cfg, data, model = tiny("wgan")
    calls = []
    original = model.noise

    def noise(b, device, generator=None):
        calls.append(b)
        return original(b, device, generator)

    model.noise = noise
    step(cfg, data, model)
    assert calls == [8] * (model.critic_steps(0) + 1)


# ----------------------------------------------------------------------------- packing (PacGAN)


@pytest.mark.parametrize("name", ["dcgan", "gan"])
def test_packed_critic_scores_consecutive_samples_joined(name):
    cfg, data, model = tiny(name, **{"model.pack": 2})
    x = batch(data, 6)["x"]
    scores = model.critic(x)
    assert scores.shape == (3,)
    # The reference: samples 2i and 2i+1 concatenated along channels (images) or features.
    joined = torch.cat([x[2:3], x[3:4]], dim=1)
    model.eval()
    assert torch.allclose(model.critic(x)[1], model.discriminator(joined).squeeze(), atol=1e-6)
    model.train()
    out = step(cfg, data, model, 8)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in out.values())


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"model.pack": 3}, "multiple of model.pack"),
        ({"model.pack": 2, "model.condition": "labels"}, "model.pack=1"),
    ],
)
def test_packing_config_errors(overrides, match):
    with pytest.raises(ConfigError, match=match):
        cfg, _, model = tiny("dcgan", **overrides)
        model.configure_optimizers(cfg.train)
    with pytest.raises(ConfigError, match="per-sample features"):
        tiny("dcgan", **{"model.pack": 2})[2].features(torch.zeros(2, 1, 16, 16))


def test_gan_on_token_sequences_names_gsgan():
    with pytest.raises(ConfigError, match="use gsgan"):
        tiny("gan", **{"data.name": "sequences"})


# ----------------------------------------------------------------------------- unit-size networks


def test_scale_multiplies_generator_output_and_divides_critic_input():
    _, data, plain = tiny("gan")
    _, _, scaled = tiny("gan", **{"model.scale": 2.5})
    scaled.load_state_dict(plain.state_dict())  # same weights: Scale has no parameters
    z = torch.randn(5, plain.latent_dim)
    plain.eval(), scaled.eval()
    assert torch.allclose(scaled.generate(z), 2.5 * plain.generate(z), atol=1e-6)
    x = batch(data, 6)["x"]
    assert torch.allclose(scaled.critic(x), plain.critic(x / 2.5), atol=1e-6)
    assert torch.allclose(scaled.features(x), plain.features(x / 2.5), atol=1e-6)


def test_scale_is_for_point_data():
    with pytest.raises(ConfigError, match=r"leave model\.scale=1"):
        tiny("dcgan", **{"model.scale": 2.0})
