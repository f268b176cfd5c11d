"""The bare loops of ``genlab bench`` compute the same update as the models they mirror (else the
overhead ratio would compare different work), and mirror nothing else."""

import pytest
import torch

from genlab.core.config import build_config
from genlab.data import load_data
from genlab.models import build_model
from genlab.tools.bench_loops import bare_step
from genlab.training.batches import BatchStream
from helpers import step_batch


def twin_models(name: str, *overrides: str):
    cfg = build_config(name, preset=f"tiny_{name}", overrides=list(overrides))
    data = load_data(cfg.data)
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(build_model(cfg.model, data.spec))
    batch = next(BatchStream(data.train, 16, 0, torch.device("cpu")))
    return cfg, models, batch


@pytest.mark.parametrize("name", ["vae", "dcgan", "gan"])
def test_bare_step_makes_the_models_own_update(name):
    cfg, (genlab_model, bare_model), batch = twin_models(name)
    torch.manual_seed(1)
    genlab_model.train_step(batch, genlab_model.configure_optimizers(cfg.train), 0)
    step = bare_step(bare_model, bare_model.configure_optimizers(cfg.train))
    torch.manual_seed(1)  # the same latents / reparameterisation noise
    step(batch["x"])
    a, b = genlab_model.state_dict(), bare_model.state_dict()
    changed = [k for k in a if a[k].is_floating_point()]
    assert changed
    for k in changed:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-6, msg=k)


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("wgan_gp", []),
        ("sngan", []),  # hinge loss
        ("gan", ["model.n_critic=2"]),
        ("dcgan", ["model.real_label=0.9"]),
        ("vae", ["model.likelihood=gaussian"]),
        ("vae", ["model.posterior=categorical"]),
        ("aae", []),
        ("multvae", []),
    ],
)
def test_no_bare_step_for_what_it_does_not_mirror(name, overrides):
    cfg, (model, _), _ = twin_models(name, *overrides)
    assert bare_step(model, model.configure_optimizers(cfg.train)) is None


def test_bench_runs_the_bare_loop_in_the_same_precision(monkeypatch):
    import genlab.tools.bench as bench

    seen = []

    def spy(model, opts):
        step = bare_step(model, opts)

        def recorded(x):
            seen.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu"))
            step(x)

        return recorded

    monkeypatch.setattr(bench, "bare_step", spy)
    overrides = ["model.width=8", "train.precision=bf16"]
    row = bench.bench_model(
        "vae", batch_size=8, image_size=16, steps=1, warmup=1, rounds=1, overrides=overrides
    )
    assert seen and all(s == torch.bfloat16 for s in seen)
    assert row["precision"] == "bf16" and row["bare_images_per_s"] > 0


def test_flop_counter_matches_torchs_and_counts_a_gradient_penalty_step():
    from torch.utils.flop_counter import FlopCounterMode

    from genlab.tools.bench import flop_counter

    cfg, (model, _), batch = twin_models("vae")
    opts = model.configure_optimizers(cfg.train)
    with FlopCounterMode(display=False) as reference:
        model.train_step(batch, opts, 0)
    with flop_counter() as ours:
        model.train_step(batch, opts, 1)
    assert ours.get_total_flops() == reference.get_total_flops() > 0
    # torch's own counter fails inside the penalty's autograd.grad; ours counts the step, and
    # the critic's double backward makes it cost more than the same step without the penalty.
    costs = {}
    for gp in (10.0, 0.0):
        cfg, (gan, _), _ = twin_models("wgan_gp", f"model.gp_weight={gp}")
        with flop_counter() as counter:
            gan.train_step(
                step_batch(gan, load_data(cfg.data).train, 0, 16),
                gan.configure_optimizers(cfg.train),
                0,
            )
        costs[gp] = counter.get_total_flops()
    assert costs[10.0] > costs[0.0] > 0
