"""The shared battery every registered model passes (DESIGN.md), parametrized over MODELS, so a
new model is tested by adding it and its ``tiny_<name>`` preset, not a new test file."""

import pytest
import torch

import genlab
from genlab.core.config import build_config, preset_names
from genlab.core.registry import MODELS
from genlab.data import load_data
from genlab.models import build_model
from genlab.models.base import has_encoder
from genlab.training.batches import BatchStream
from genlab.training.trainer import Trainer
from helpers import step_batch

NAMES = MODELS.names()


def tiny(name):
    cfg = build_config(name, preset=f"tiny_{name}")
    data = load_data(cfg.data)
    torch.manual_seed(0)
    return cfg, data, build_model(cfg.model, data.spec)


@pytest.mark.parametrize("name", NAMES)
def test_has_tiny_preset(name):
    assert f"tiny_{name}" in preset_names()


@pytest.mark.parametrize("name", NAMES)
def test_sample_shape_and_range(name):
    _, data, model = tiny(name)
    x = model.sample(5, generator=torch.Generator().manual_seed(0))
    dtype = torch.int64 if data.spec.kind == "sequences" else torch.float32  # token ids
    assert x.shape == (5, *data.spec.shape) and x.dtype == dtype
    assert torch.isfinite(x).all()
    if data.spec.kind == "image":
        assert x.min() >= -1 and x.max() <= 1


@pytest.mark.parametrize("name", NAMES)
def test_sampling_is_determined_by_the_generator(name):
    _, _, model = tiny(name)
    a = model.sample(4, generator=torch.Generator().manual_seed(1))
    b = model.sample(4, generator=torch.Generator().manual_seed(1))
    c = model.sample(4, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert model.training  # sampling restores the training mode


@pytest.mark.parametrize("name", NAMES)
def test_train_step_is_finite_and_changes_every_network(name):
    cfg, data, model = tiny(name)
    opts = model.configure_optimizers(cfg.train)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = model.train_step(step_batch(model, data.train), opts, 0)
    assert out and all(torch.isfinite(torch.as_tensor(v)) for v in out.values())
    for opt_name, opt in opts.items():
        params = {id(p) for g in opt.param_groups for p in g["params"]}
        named = [k for k, p in model.named_parameters() if id(p) in params]
        assert named, opt_name
        changed = [k for k in named if not torch.equal(before[k], model.state_dict()[k])]
        assert changed, f"optimizer {opt_name!r} changed no weights"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_save_load_gives_identical_samples(name, ema, tmp_path):
    cfg = build_config(name, preset=f"tiny_{name}", overrides={"train.ema": ema})
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.fit()
    gen = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    if trainer.ema:
        with trainer.ema.swapped():
            expected = trainer.model.sample(6, generator=gen())
    else:
        expected = trainer.model.sample(6, generator=gen())
    loaded = genlab.load(tmp_path / "run")
    assert torch.equal(loaded.sample(6, generator=gen()), expected)
    assert type(loaded) is type(trainer.model) and loaded.cfg == trainer.model.cfg
    if ema:  # the raw weights are also available and differ from the average (compared as
        # weights: a few tiny steps need not move a discrete model's sampled tokens)
        raw = genlab.load(tmp_path / "run", ema=False).state_dict()
        averaged = loaded.state_dict()
        assert raw.keys() == averaged.keys()
        assert any(not torch.equal(raw[k], averaged[k]) for k in raw)


# ----------------------------------------------------------------------------- encoder contract
# Models with an encoder (models/base.py) are checked on what the latent tools rely on.

ENCODERS = [n for n in NAMES if has_encoder(tiny(n)[2])]
LIKELIHOODS = [n for n in ENCODERS if hasattr(tiny(n)[2], "log_importance_weights")]


def test_vae_is_an_encoder_model():
    assert "vae" in ENCODERS and "vae" in LIKELIHOODS
    assert "dcgan" not in ENCODERS


def _batch(data, n=6):
    return next(BatchStream(data.train, n, 0, torch.device("cpu")))


@pytest.mark.parametrize("name", ENCODERS)
def test_encode_decode_reconstruct(name):
    _, data, model = tiny(name)
    batch = _batch(data)
    x, y = batch["x"], batch.get("y")
    with torch.no_grad():
        z = model.encode(x, labels=y)
        assert z.shape == (6, model.code_dim) and torch.isfinite(z).all()
        x_hat = model.decode(z, labels=y)
    assert x_hat.shape == x.shape and x_hat.min() >= -1 and x_hat.max() <= 1
    recon = model.reconstruct(x, labels=y)
    assert recon.shape == x.shape and not recon.requires_grad
    assert model.training  # reconstruct restores the training mode
    model.eval()  # deterministic in eval mode: the same code twice, reconstruct = decode(encode)
    with torch.no_grad():
        z_eval = model.encode(x, labels=y)
        assert torch.equal(z_eval, model.encode(x, labels=y))
        expected = model.decode(z_eval, labels=y)
    assert torch.allclose(model.reconstruct(x, labels=y), expected)


@pytest.mark.parametrize("name", LIKELIHOODS)
def test_log_importance_weights(name):
    _, data, model = tiny(name)
    model.eval()
    batch = _batch(data, 4)
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    w = model.log_importance_weights(batch["x"], 7, labels=batch.get("y"), generator=gen())
    assert w.shape == (7, 4) and torch.isfinite(w).all() and not w.requires_grad
    again = model.log_importance_weights(batch["x"], 7, labels=batch.get("y"), generator=gen())
    assert torch.equal(w, again)  # determined by the generator
    # Jensen: log-mean-exp of the weights (IWAE) >= their mean (ELBO), for every image.
    iwae = torch.logsumexp(w, 0) - torch.log(torch.tensor(7.0))
    assert (iwae >= w.mean(0) - 1e-4).all()
