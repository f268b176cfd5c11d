"""Behaviour of the adversarial autoencoder and the VAE-GAN beyond the shared contract battery:
what each phase of a step updates, the feature-space likelihood, the prior the AAE samples
from, the image sizes the VAE-GAN supports, and the one-line errors."""

from __future__ import annotations

import copy

import pytest
import torch

from genlab.core.config import build_config
from genlab.core.errors import ConfigError
from genlab.data import load_data
from genlab.data.base import DataSpec
from genlab.losses.likelihood import gaussian_nll
from genlab.losses.priors import circle_means, mixture_log_prob
from genlab.models import build_model
from genlab.models.vaegan import feature_nll
from genlab.nn.autoencoder_nets import conv_blocks
from genlab.nn.conv import ConvEncoder
from genlab.nn.layers import LayerFactory
from genlab.training.batches import BatchStream
from helpers import assert_one_line_error


def tiny(name: str, **overrides):
    cfg = build_config(name, preset=f"tiny_{name}", overrides=overrides)
    data = load_data(cfg.data)
    torch.manual_seed(0)
    model = build_model(cfg.model, data.spec)
    batch = next(BatchStream(data.train, 16, 0, torch.device("cpu")))
    return cfg, model, batch


class Idle:
    """An optimizer stand-in that never moves its weights."""

    def zero_grad(self, set_to_none: bool = True) -> None:
        pass

    def step(self) -> None:
        pass


def only(opts: dict, name: str) -> dict:
    return {k: (o if k == name else Idle()) for k, o in opts.items()}


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in module.named_parameters()}


def moved(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(p, before[k]) for k, p in module.named_parameters())


# ----------------------------------------------------------------------------- both

PHASES = {  # (model, optimizer) -> the networks it must move; the others must stay put
    ("aae", "autoencoder"): {"encoder", "decoder"},
    ("aae", "discriminator"): {"discriminator"},
    ("aae", "encoder"): {"encoder"},
    ("vaegan", "encoder"): {"encoder"},
    ("vaegan", "decoder"): {"decoder"},
    ("vaegan", "discriminator"): {"discriminator"},
}


@pytest.mark.parametrize("name,phase", sorted(PHASES))
def test_each_optimizer_moves_only_its_networks(name, phase):
    cfg, model, batch = tiny(name)
    opts = model.configure_optimizers(cfg.train)
    assert set(opts) == {p for n, p in PHASES if n == name}
    nets = ("encoder", "decoder", "discriminator")
    before = {n: snapshot(getattr(model, n)) for n in nets}
    model.train_step(batch, only(opts, phase), 0)
    assert {n for n in nets if moved(getattr(model, n), before[n])} == PHASES[name, phase]


# ----------------------------------------------------------------------------- AAE


def test_aae_phases_descend_their_own_objectives():
    """A small plain gradient step of each phase lowers that phase's loss on the same batch,
    each loss written here in its probability form."""
    cfg, model, batch = tiny("aae")
    model.eval()  # fixed normalisation statistics: every loss is a deterministic function
    x = batch["x"]
    groups = model.configure_optimizers(cfg.train)
    opts = {k: torch.optim.SGD(o.param_groups[0]["params"], lr=1e-4) for k, o in groups.items()}

    def recon() -> float:
        p = torch.sigmoid(model.decoder(model.encode(x)))
        t = (x + 1) / 2
        return -(t * p.log() + (1 - t) * (1 - p).log()).sum((1, 2, 3)).mean().item()

    def d_error(z_prior) -> float:
        real, fake = (
            torch.sigmoid(model.critic(z_prior)),
            torch.sigmoid(model.critic(model.encode(x))),
        )
        return -(real.log().mean() + (1 - fake).log().mean()).item()

    def codes_look_real() -> float:
        return torch.sigmoid(model.critic(model.encode(x))).log().mean().item()

    with torch.no_grad():
        before = recon()
    model.train_step(batch, only(opts, "autoencoder"), 0)
    with torch.no_grad():
        assert recon() < before
        torch.manual_seed(7)  # the prior batch the D phase will draw
        z_prior = model.prior.sample(len(x))
        before = d_error(z_prior)
    torch.manual_seed(7)
    model.train_step(batch, only(opts, "discriminator"), 0)
    with torch.no_grad():
        assert d_error(z_prior) < before
        before = codes_look_real()
    model.train_step(batch, only(opts, "encoder"), 0)
    with torch.no_grad():
        assert codes_look_real() > before


def test_aae_samples_decode_prior_draws():
    _, model, _ = tiny("aae", **{"model.prior": "mixture", "model.latent_dim": 2})
    got = model.sample(5, generator=torch.Generator().manual_seed(3))
    model.eval()
    with torch.no_grad():
        z = model.prior.sample(5, generator=torch.Generator().manual_seed(3))
        expected = model.decode(z)
    assert torch.equal(got, expected)
    # The bound prior is the configured mixture.
    means = circle_means(10, 2, model.cfg.mixture_radius)
    ref = mixture_log_prob(z, means, model.cfg.mixture_std)
    assert torch.allclose(model.prior.log_prob(z), ref)


def test_aae_mixture_needs_two_latent_dimensions():
    with pytest.raises(ConfigError, match="latent_dim >= 2"):
        tiny("aae", **{"model.prior": "mixture", "model.latent_dim": 1})


def test_aae_mlp_arch_and_labels_are_ignored():
    _, model, batch = tiny("aae", **{"model.arch": "mlp", "model.hidden": [16]})
    model.eval()
    with torch.no_grad():
        z = model.encode(batch["x"])
        assert torch.equal(z, model.encode(batch["x"], labels=batch["y"]))
        assert torch.equal(model.decode(z), model.decode(z, labels=batch["y"]))


# ----------------------------------------------------------------------------- VAE-GAN


def test_feature_nll_is_a_unit_gaussian_nll():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(3, 4, 5, 5, generator=gen, dtype=torch.float64)
    b = torch.randn(3, 4, 5, 5, generator=gen, dtype=torch.float64)
    assert torch.equal(feature_nll(a, a.clone()), torch.zeros(3, dtype=torch.float64))
    assert (feature_nll(a, b) > 0).all()
    # -log N(a | b, I) minus its normalising constant, from the likelihood module.
    const = 0.5 * torch.log(torch.tensor(2 * torch.pi, dtype=torch.float64)) * a[0].numel()
    expected = gaussian_nll(b, a, torch.tensor(0.0, dtype=torch.float64)) - const
    assert torch.allclose(feature_nll(a, b), expected)


def test_conv_blocks_compose_to_the_trunk():
    trunk = ConvEncoder(1, 32, 4, LayerFactory(norm="batch")).eval()
    blocks = conv_blocks(trunk)
    assert len(blocks) == 3
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    h = x
    with torch.no_grad():
        for block in blocks:
            h = block(h)
        assert torch.equal(h.flatten(1), trunk(x))


@pytest.mark.parametrize("layer,shape", [(1, (8, 8, 8)), (2, (16, 4, 4))])
def test_feature_layer_picks_the_block(layer, shape):
    _, model, batch = tiny("vaegan", **{"model.feature_layer": layer})
    logits, features = model.discriminator(batch["x"])
    assert logits.shape == (16,) and features.shape == (16, *shape)


def test_vaegan_gradients_reach_each_network_from_its_own_objective():
    """Algorithm 1: encoder <- KL + L_llike, decoder <- gamma L_llike + L_GAN(g), discriminator
    <- L_GAN(d), all at the same weights. The reference takes each gradient on its own."""
    _, model, batch = tiny("vaegan", **{"model.gamma": 0.5})
    reference = copy.deepcopy(model)
    torch.manual_seed(1)
    t = reference.losses(batch["x"])
    nets = {n: list(getattr(reference, n).parameters()) for n in ("encoder", "decoder")}
    nets["discriminator"] = list(reference.discriminator.parameters())
    objectives = {
        "encoder": t["kl"] + t["llike"],
        "decoder": 0.5 * t["llike"] + t["g_loss"],
        "discriminator": t["d_loss"],
    }
    expected = {
        n: torch.autograd.grad(objectives[n], nets[n], retain_graph=True) for n in objectives
    }

    seen = {}

    class Recorder(Idle):
        def __init__(self, name):
            self.name = name

        def step(self):
            seen[self.name] = [p.grad.clone() for p in getattr(model, self.name).parameters()]

    torch.manual_seed(1)
    model.train_step(batch, {n: Recorder(n) for n in objectives}, 0)
    for name in objectives:
        for got, want in zip(seen[name], expected[name], strict=True):
            assert torch.allclose(got, want, rtol=1e-4, atol=1e-6), name


@pytest.mark.parametrize("size", [16, 28, 32, 64])
def test_vaegan_image_sizes(size):
    spec = DataSpec(kind="image", shape=(1, size, size))
    cfg = build_config("vaegan", preset="tiny_vaegan").model
    model = build_model(cfg, spec)
    x = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 1, size, size)
    opts = model.configure_optimizers(build_config("vaegan", preset="tiny_vaegan").train)
    out = model.train_step({"x": x}, opts, 0)
    assert all(torch.isfinite(v) for v in out.values())


def test_vaegan_feature_layer_beyond_the_discriminator():
    with pytest.raises(ConfigError, match="feature_layer=3"):
        tiny("vaegan", **{"model.feature_layer": 3})  # 16x16: two blocks


# ----------------------------------------------------------------------------- CLI errors


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (
            ("aae", "--preset", "tiny_aae", "model.prior=mixture", "model.latent_dim=1"),
            "latent_dim",
        ),
        (("vaegan", "--preset", "tiny_vaegan", "model.feature_layer=5"), "feature_layer=5"),
        (("aae", "--preset", "tiny_aae", "--data", "ring8", "data.image_size=null"), "image data"),
        (("vaegan", "--preset", "tiny_vaegan", "--data", "ring8", "data.image_size=null"), "image"),
        (("aae", "--preset", "tiny_aae", "model.prior=uniform"), "model.prior"),
    ],
)
def test_cli_errors_are_one_line(cli, tmp_path, argv, fragment):
    code, _, err = cli("train", *argv, "--out", tmp_path / "run")
    assert code == 2
    assert_one_line_error(err, fragment)
