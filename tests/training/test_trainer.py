"""The trainer: run directory layout, resume equivalence, pruning, EMA, non-finite losses,
Ctrl-C. Every run is a tiny preset trained in-process."""

import json
import shutil
import signal

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import genlab
from genlab.core.config import build_config
from genlab.core.errors import CheckpointError, TrainingDiverged
from genlab.models.vae import VAE
from genlab.training import checkpoint as ckpt
from genlab.training.ema import EMA
from genlab.training.trainer import Trainer, TrainingInterrupted


def weights(run, step):
    return load_file(str(run / "checkpoints" / f"step_{step}" / "model.safetensors"))


def test_run_directory_layout(tmp_path):
    run = genlab.train("vae", preset="tiny_vae", out=tmp_path / "r", overrides=["train.steps=6"])
    assert json.loads((run / "config.json").read_text())["model"]["name"] == "vae"
    assert (run / "checkpoints" / "LATEST").read_text().strip() == "step_6"
    assert sorted(p.name for p in ckpt.list_checkpoints(run / "checkpoints")) == [
        "step_2",
        "step_4",
        "step_6",
    ]
    for name in ("model.safetensors", "state.pt"):
        assert (run / "checkpoints" / "step_6" / name).is_file()
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6]
    assert Image.open(run / "samples" / "step_6.png").size[0] >= 64
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())


def test_old_checkpoints_are_pruned(tmp_path):
    run = genlab.train(
        "vae",
        preset="tiny_vae",
        out=tmp_path / "r",
        overrides=["train.steps=10", "train.ckpt_every=1", "train.keep_checkpoints=2"],
    )
    assert sorted(p.name for p in ckpt.list_checkpoints(run / "checkpoints")) == [
        "step_10",
        "step_9",
    ]


@pytest.mark.parametrize(("name", "ema"), [("vae", 0.0), ("dcgan", 0.9), ("gan", 0.0)])
def test_resume_gives_identical_weights(tmp_path, name, ema):
    common = {"train.ema": ema, "train.ckpt_every": 3}
    straight = genlab.train(
        name, preset=f"tiny_{name}", out=tmp_path / "a", overrides={**common, "train.steps": 8}
    )
    half = genlab.train(
        name, preset=f"tiny_{name}", out=tmp_path / "b", overrides={**common, "train.steps": 5}
    )
    genlab.train(resume=half, overrides={"train.steps": 8})
    assert genlab.load_config(half).train.steps == 8  # the override is recorded
    a, b = weights(straight, 8), weights(half, 8)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # ...and the resumed run really continued (its weights moved since step 5's checkpoint)
    assert not all(torch.equal(a[k], weights(half, 6)[k]) for k in a if k.endswith("weight"))
    if ema:
        ea = load_file(str(straight / "checkpoints" / "step_8" / "ema.safetensors"))
        eb = load_file(str(half / "checkpoints" / "step_8" / "ema.safetensors"))
        assert all(torch.equal(ea[k], eb[k]) for k in ea)


def test_resume_may_not_change_the_model(tmp_path):
    run = genlab.train("vae", preset="tiny_vae", out=tmp_path / "r")
    with pytest.raises(genlab.GenlabError, match="keeps its model config"):
        genlab.train(resume=run, overrides=["model.latent_dim=8"])


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    original = VAE.train_step

    def poisoned(self, batch, optimizers, step):
        out = original(self, batch, optimizers, step)
        return {**out, "loss": torch.tensor(float("nan"))} if step == 4 else out

    monkeypatch.setattr(VAE, "train_step", poisoned)
    with pytest.raises(TrainingDiverged, match=r"non-finite loss at step 5 \(.*loss=nan") as err:
        genlab.train("vae", preset="tiny_vae", out=tmp_path / "r", overrides=["train.steps=8"])
    assert "step_4" in str(err.value)
    assert ckpt.latest_checkpoint(tmp_path / "r" / "checkpoints").name == "step_4"
    assert genlab.load(tmp_path / "r") is not None


def test_ctrl_c_checkpoints_the_current_step(tmp_path, monkeypatch):
    original = VAE.train_step

    def interrupting(self, batch, optimizers, step):
        if step == 2:
            signal.raise_signal(signal.SIGINT)  # handled between steps, not mid-step
        return original(self, batch, optimizers, step)

    monkeypatch.setattr(VAE, "train_step", interrupting)
    cfg = build_config(
        "vae", preset="tiny_vae", overrides=["train.steps=50", "train.ckpt_every=50"]
    )
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in the background
    with pytest.raises(TrainingInterrupted):
        Trainer(cfg, tmp_path / "r").fit()
    assert ckpt.latest_checkpoint(tmp_path / "r" / "checkpoints").name == "step_3"
    assert signal.getsignal(signal.SIGINT) == before


def test_ema_warm_up_and_average():
    lin = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(0.0)
    ema = EMA(lin, decay=0.99)
    assert ema.decay_at(1) == pytest.approx(2 / 11) and ema.decay_at(10_000) == 0.99
    with torch.no_grad():
        lin.weight.fill_(1.0)
    ema.update(1)  # shadow = d * 0 + (1 - d) * 1
    assert ema.shadow["weight"].item() == pytest.approx(1 - 2 / 11)
    with ema.swapped():
        assert lin.weight.item() == pytest.approx(1 - 2 / 11)
    assert lin.weight.item() == 1.0


def test_ema_averages_parameters_and_copies_buffers_over_many_updates():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    ema = EMA(net, decay=0.9)
    expected = {k: v.detach().clone() for k, v in net.state_dict().items()}
    params = dict(net.named_parameters())
    for step in range(1, 6):
        net(torch.randn(8, 3))  # moves the batch-norm running statistics
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        ema.update(step)
        d = min(0.9, (1 + step) / (10 + step))
        for k, v in net.state_dict().items():  # the definition, written out
            is_avg = k in params
            expected[k] = d * expected[k] + (1 - d) * v if is_avg else v.clone()
    for k, v in expected.items():
        torch.testing.assert_close(ema.shadow[k], v.to(ema.shadow[k].dtype), msg=k)
    assert ema.shadow["1.num_batches_tracked"].item() == 5


def test_latest_naming_a_missing_checkpoint_falls_back_or_is_an_error(tmp_path, capsys):
    run = genlab.train("vae", preset="tiny_vae", out=tmp_path / "r")
    (run / "checkpoints" / "LATEST").write_text("step_99\n")
    genlab.load(run)  # the newest intact checkpoint, with a warning
    assert "step_99 is damaged (a file is missing); using step_4" in capsys.readouterr().err
    for old in ckpt.list_checkpoints(run / "checkpoints"):
        shutil.rmtree(old)
    with pytest.raises(CheckpointError, match="no intact checkpoint"):
        genlab.load(run)


def test_same_seed_same_run_different_seed_different_run(tmp_path):
    a = genlab.train("dcgan", preset="tiny_dcgan", out=tmp_path / "a")
    b = genlab.train("dcgan", preset="tiny_dcgan", out=tmp_path / "b")
    c = genlab.train("dcgan", preset="tiny_dcgan", out=tmp_path / "c", overrides=["seed=1"])
    wa, wb, wc = weights(a, 4), weights(b, 4), weights(c, 4)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_linear_lr_decay_follows_the_schedule_and_resumes_exactly(tmp_path):
    over = {"train.lr_decay": "linear", "train.steps": 8, "train.ckpt_every": 8, "train.lr": 1e-3}
    cfg = build_config("gan", preset="tiny_gan", overrides=over)
    straight = Trainer(cfg, tmp_path / "a")
    for step in range(3):
        straight.train_one()  # update `step` used lr 1e-3 x (1 - step / 8)
        for opt in straight.optimizers.values():
            assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 * (1 - step / 8), rel=1e-12)
    straight.fit()
    assert straight.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(1e-3 / 8)
    # Stopped after 5 updates and resumed: the schedule goes on from the checkpointed step.
    half = Trainer(cfg, tmp_path / "b")
    for _ in range(5):
        half.train_one()
    half.save_checkpoint()
    half.lock.release()  # as when that process ends: the run directory is free again
    Trainer(cfg, tmp_path / "b", resume=True).fit()
    a, b = weights(tmp_path / "a", 8), weights(tmp_path / "b", 8)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    constant = Trainer(
        build_config("gan", preset="tiny_gan", overrides={**over, "train.lr_decay": "none"}),
        tmp_path / "c",
    )
    constant.fit()
    c = weights(tmp_path / "c", 8)
    assert not all(torch.equal(a[k], c[k]) for k in a)  # the decay changed the updates
