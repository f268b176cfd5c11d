"""A model asks for k batches per step (``batches_for_step``): the stream stacks them, a GAN's
critic reads a fresh real batch per update, and WGAN's 100-step critic bursts follow the
reference schedule."""

from __future__ import annotations

import pytest
import torch

from genlab.core.config import build_config
from genlab.data import load_data
from genlab.data.base import Split
from genlab.models import build_model
from genlab.training.batches import BatchStream
from genlab.training.trainer import Trainer

CPU = torch.device("cpu")


def split(n=50):
    return Split(torch.arange(n * 2, dtype=torch.float32).reshape(n, 2), torch.arange(n))


@pytest.mark.parametrize("world", [1, 3])
def test_take_k_equals_k_nexts_across_epochs(world):
    # 15 batches of 4 x world rows from 50 samples cross an epoch boundary for both worlds.
    for rank in range(world):
        one = BatchStream(split(), 4, 3, CPU, rank=rank, world=world)
        many = BatchStream(split(), 4, 3, CPU, rank=rank, world=world)
        expected = [next(one) for _ in range(15)]
        got = many.take(15)
        torch.testing.assert_close(got["x"], torch.cat([b["x"] for b in expected]))
        torch.testing.assert_close(got["y"], torch.cat([b["y"] for b in expected]))
        assert many.epoch == one.epoch >= 1 and many.pos == one.pos
        torch.testing.assert_close(next(many)["x"], next(one)["x"])


def gan(name="wgan", **overrides):
    cfg = build_config(name, preset=f"tiny_{name}", overrides=overrides)
    data = load_data(cfg.data)
    torch.manual_seed(0)
    return cfg, data, build_model(cfg.model, data.spec)


def test_wgan_critic_schedule_of_the_reference_code():
    # 100 critic steps for the first 25 generator steps and at every 500th, else 5.
    _, _, model = gan()
    steps = {s: model.critic_steps(s) for s in (0, 24, 25, 26, 499, 500, 501, 1000, 1001)}
    assert steps == {0: 100, 24: 100, 25: 5, 26: 5, 499: 5, 500: 100, 501: 5, 1000: 100, 1001: 5}
    _, _, custom = gan(**{"model.critic_burst": 20, "model.burst_first": 2, "model.burst_every": 7})
    assert [custom.critic_steps(s) for s in range(9)] == [20, 20, 5, 5, 5, 5, 5, 20, 5]
    _, _, off = gan("wgan_gp")
    assert off.cfg.critic_burst == 0 and {off.critic_steps(s) for s in (0, 500)} == {5}


@pytest.mark.parametrize("fresh", [True, False])
def test_each_critic_step_reads_its_own_real_batch(fresh):
    cfg, data, model = gan("wgan_gp", **{"model.fresh_real": fresh})
    n = model.cfg.n_critic
    assert model.batches_for_step(0) == (n if fresh else 1)
    stream = BatchStream(data.train, 8, 0, CPU)
    batch = stream.take(model.batches_for_step(0))
    seen = []
    # D is called on real, then fake, then (penalty) interpolates per step: keep the reals.
    hook = model.discriminator.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach()))
    model.train_step(batch, model.configure_optimizers(cfg.train), 0)
    hook.remove()
    reals = seen[0 : 3 * n : 3]
    expected = batch["x"].chunk(n) if fresh else [batch["x"]] * n
    for got, want in zip(reals, expected, strict=True):
        torch.testing.assert_close(got, want)


def test_train_step_refuses_a_batch_that_is_not_k_batches():
    cfg, data, model = gan("wgan_gp")
    batch = BatchStream(data.train, 8, 0, CPU).take(2)  # 16 rows, 5 batches asked
    with pytest.raises(ValueError, match="batches_for_step"):
        model.train_step(batch, model.configure_optimizers(cfg.train), 0)


def test_trainer_feeds_the_batches_the_model_asks_for(tmp_path):
    # WGAN: steps 0 and 1 are bursts of 100 critic steps with fresh data each, step 2 of 5
    # (burst_first=2): 205 batches of 16 read in 3 steps, the stream positioned accordingly.
    overrides = {"model.burst_first": 2, "train.steps": 3, "train.ckpt_every": 3}
    cfg = build_config("wgan", preset="tiny_wgan", overrides=overrides)
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.fit()
    reference = BatchStream(trainer.data.train, 16, cfg.seed, CPU)
    reference.take(205)
    assert trainer.batches_read == 205
    assert (trainer.stream.epoch, trainer.stream.pos) == (reference.epoch, reference.pos)
