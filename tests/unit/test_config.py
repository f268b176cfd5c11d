"""Config resolution: defaults, variant defaults, presets, dotted overrides, one-line errors."""

import pytest

from genlab.core.config import build_config, parse_override, preset_names, validate
from genlab.core.errors import ConfigError
from genlab.core.registry import MODELS
from genlab.models.gan import GANConfig
from genlab.models.vae import VAEConfig


def test_override_values_are_typed():
    assert parse_override("train.lr=2e-4") == (["train", "lr"], "2e-4")
    assert parse_override("model.hidden=[32, 16]") == (["model", "hidden"], [32, 16])
    cfg = build_config("vae", overrides=["train.lr=2e-4", "model.hidden=[32, 16]", "seed=3"])
    assert cfg.train.lr == 2e-4 and cfg.model.hidden == [32, 16] and cfg.seed == 3
    assert isinstance(cfg.model, VAEConfig)


def test_dict_overrides_and_data_name():
    cfg = build_config("dcgan", data="ring8", overrides={"model.arch": "mlp", "train.steps": 7})
    assert cfg.data.name == "ring8" and cfg.model.arch == "mlp" and cfg.train.steps == 7


def test_variants_are_defaults_of_one_class():
    dc, gan = build_config("dcgan").model, build_config("gan").model
    assert type(dc) is type(gan) is GANConfig
    assert (dc.arch, gan.arch) == ("conv", "mlp")


def test_model_named_preset_applies_by_default():
    assert build_config("vae").train.lr == 1e-3  # presets/vae.yaml
    assert build_config("vae", preset="tiny_vae").train.steps == 4
    # an explicit override beats the preset
    assert build_config("vae", preset="tiny_vae", overrides=["train.steps=9"]).train.steps == 9


def test_a_recipe_preset_named_alone_runs_its_model():
    cfg = build_config("dcgan_cifar10")
    assert cfg.model.name == "dcgan" and cfg.model.arch == "cnn32" and cfg.data.name == "cifar10"
    with pytest.raises(ConfigError, match="preset 'dcgan_cifar10' is for model 'dcgan', not 'vae'"):
        build_config("vae", preset="dcgan_cifar10")


def test_every_preset_validates():
    for name in preset_names():
        cfg = build_config(preset=name)
        assert cfg.model.name


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["model.foo=1"], "unknown key 'model.foo'; valid keys here: model."),
        (["train.foo=1"], "valid keys here: train.batch_size"),
        (["foo=1"], "valid keys here: data, device, model, seed, train"),
        (["model.latent_dim=abc"], "model.latent_dim: Input should be a valid integer"),
        (["train.lr=-1"], "train.lr: Input should be greater than 0"),
        (["train.lr"], "is not of the form section.key=value"),
        (["model.loss=nope"], "model.loss: Input should be"),
    ],
)
def test_errors_are_one_line(overrides, fragment):
    model = "dcgan" if "loss" in overrides[0] else "vae"
    with pytest.raises(ConfigError) as err:
        build_config(model, overrides=overrides)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown model 'nope'; choose from: ") as err:
        build_config("nope")
    assert str(err.value).endswith(", ".join(MODELS.names()))
    with pytest.raises(ConfigError, match="unknown preset"):
        build_config("vae", preset="nope")
    with pytest.raises(ConfigError, match="is for model 'dcgan', not 'vae'"):
        build_config("vae", preset="tiny_dcgan")


def test_round_trip_through_json():
    cfg = build_config("dcgan", preset="tiny_dcgan")
    assert validate(cfg.model_dump(mode="json")) == cfg
