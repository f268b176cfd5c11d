"""The speed options of train.*: bf16/fp16 autocast, the fp16 gradient scaler, channels-last,
torch.compile, and the learning-rate rule of data parallel runs."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from genlab.core import hardware
from genlab.core.config import build_config
from genlab.core.registry import MODELS
from genlab.training import checkpoint as ckpt
from genlab.training import speed
from genlab.training.trainer import Trainer


def trainer(tmp_path, name: str, *overrides: str, label: str = "run") -> Trainer:
    cfg = build_config(name, preset=f"tiny_{name}", overrides=list(overrides))
    return Trainer(cfg, tmp_path / label)


def output_dtypes(model: nn.Module) -> tuple[set[torch.dtype], list]:
    """The dtypes of every Linear / conv output, recorded by forward hooks."""
    seen: set[torch.dtype] = set()
    layers = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Conv1d)
    hooks = [
        m.register_forward_hook(lambda m, i, o: seen.add(o.dtype))
        for m in model.modules()
        if isinstance(m, layers)
    ]
    return seen, hooks


@pytest.mark.parametrize("name", MODELS.names())
def test_bf16_autocast_runs_the_layers_in_bf16_for_every_model(tmp_path, name):
    t = trainer(tmp_path, name, "train.precision=bf16")
    seen, hooks = output_dtypes(t.model)
    out = t.train_one()
    for h in hooks:
        h.remove()
    assert torch.bfloat16 in seen
    assert all(torch.isfinite(torch.as_tensor(v, dtype=torch.float32)) for v in out.values())
    assert all(p.dtype == torch.float32 for p in t.model.parameters())  # fp32 master weights


def test_auto_on_a_cpu_runs_no_layer_in_low_precision(tmp_path):
    t = trainer(tmp_path, "dcgan")  # train.precision=auto, the default
    seen, _ = output_dtypes(t.model)
    t.train_one()
    assert seen == {torch.float32}


def test_the_run_records_the_precision_auto_resolved_to(tmp_path):
    t = trainer(tmp_path, "vae")
    assert build_config("vae").train.precision == "auto"
    assert t.cfg.train.precision == "fp32"
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["train"]["precision"] == "fp32"


@pytest.mark.parametrize("preset", ["wgan", "wgan_ring8", "wgan_grid25"])
def test_clipped_wgan_presets_stay_fp32_on_any_device(preset):
    assert build_config(preset=preset).train.precision == "fp32"


def test_an_explicit_slow_precision_warns_and_trains(tmp_path, cli, monkeypatch):
    monkeypatch.setattr(
        hardware, "dtype_speed", lambda d, device="cpu": hardware.DtypeSpeed(d, "cpu", False, 50.0)
    )
    monkeypatch.setattr(hardware, "_warned", set())
    code, _, err = cli(
        "train", "vae", "--preset", "tiny_vae", "--out", tmp_path / "r", "train.precision=bf16"
    )
    assert code == 0, err
    assert err.count("genlab: warning: train.precision=bf16 is slow here: 50x") == 1
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["train"]["precision"] == "bf16"


def test_fp16_uses_a_gradient_scaler_that_is_saved_and_restored(tmp_path):
    t = trainer(tmp_path, "gan", "train.precision=fp16", "train.steps=2")
    assert isinstance(t.model.grad_scaler, torch.amp.GradScaler)
    run = t.fit()
    state = ckpt.read_state(run / "checkpoints" / "step_2" / "state.pt")
    assert state["grad_scaler"]["scale"] == t.model.grad_scaler.get_scale()
    cfg = build_config("gan", preset="tiny_gan", overrides=["train.precision=fp16"])
    resumed = Trainer(cfg, run, resume=True)
    assert resumed.model.grad_scaler.state_dict() == t.model.grad_scaler.state_dict()
    assert trainer(tmp_path, "gan", label="fp32").model.grad_scaler is None


def test_channels_last_changes_the_layout_not_the_result(tmp_path):
    plain = trainer(tmp_path, "dcgan", label="plain")
    nhwc = trainer(tmp_path, "dcgan", "train.channels_last=true", label="nhwc")
    convs = [m for m in nhwc.model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    assert not any(m.weight.is_contiguous() for m in convs if m.in_channels > 1)  # NCHW it is not
    for step in range(2):  # the two trainers share torch's global RNG: the same noise for each
        torch.manual_seed(step)
        a = plain.train_one()
        torch.manual_seed(step)
        b = nhwc.train_one()
    assert a.keys() == b.keys()
    for k, v in plain.model.state_dict().items():
        torch.testing.assert_close(nhwc.model.state_dict()[k], v, rtol=1e-4, atol=1e-5, msg=k)


def test_compiled_networks_train_like_eager_ones_and_save_the_same_keys(tmp_path):
    # Built and run one after the other: each trainer seeds torch's global RNG when built.
    eager = trainer(tmp_path, "gan", "train.steps=2", label="eager").fit()
    compiled = trainer(tmp_path, "gan", "train.steps=2", "train.compile=true", label="compiled")
    assert all(
        getattr(net, "_compiled_call_impl", None) is not None
        for _, net in speed.trainable_networks(compiled.model)
    )
    a = load_file(eager / "checkpoints" / "step_2" / "model.safetensors")
    b = load_file(compiled.fit() / "checkpoints" / "step_2" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5, msg=k)


@pytest.mark.parametrize(
    "rule, world, factor", [("none", 4, 1.0), ("linear", 4, 4.0), ("sqrt", 4, 2.0)]
)
def test_lr_scale_rules(rule, world, factor):
    train = build_config("gan", overrides=[f"train.lr_scale={rule}", "train.lr_d=1e-3"]).train
    assert speed.lr_factor(train, world) == factor
    scaled = speed.scaled(train, world)
    assert scaled.lr == pytest.approx(train.lr * factor)
    assert scaled.lr_d == pytest.approx(1e-3 * factor)


def test_resume_rescales_the_saved_lr_to_this_job(tmp_path):
    """A checkpoint saved by a job whose lr was scaled by 4 resumes at the unscaled lr here."""
    run = trainer(tmp_path, "gan", "train.steps=2").fit()
    path = run / "checkpoints" / "step_2" / "state.pt"
    state = ckpt.read_state(path)
    for opt in state["optimizers"].values():
        for group in opt["param_groups"]:
            group["lr"] *= 4
    torch.save({**state, "lr_factor": 4.0}, path)
    ckpt.record_sums(path.parent)  # as that job would have written it
    cfg = build_config("gan", preset="tiny_gan")
    resumed = Trainer(cfg, run, resume=True)
    lrs = [g["lr"] for o in resumed.optimizers.values() for g in o.param_groups]
    assert lrs and lrs == pytest.approx([cfg.train.lr] * len(lrs))


@pytest.mark.parametrize(
    "on_cuda, optimizer, expected",
    [
        ([True, True], "adam", {"fused": True}),
        ([True, True], "sgd", {"fused": True}),
        ([True, True], "rmsprop", {}),  # no fused kernel
        ([True, False], "adam", {}),  # parameters on two devices
        ([False], "adamw", {}),
        ([], "adam", {}),
    ],
)
def test_fused_optimizers_only_where_every_parameter_is_on_cuda(on_cuda, optimizer, expected):
    from types import SimpleNamespace

    from genlab.models.optim import fast_options

    params = [SimpleNamespace(is_cuda=c) for c in on_cuda]
    assert fast_options(params, optimizer) == expected


def test_cpu_optimizers_keep_the_default_path():
    from genlab.models.optim import make_optimizer

    train = build_config("gan").train
    opt = make_optimizer(nn.Linear(3, 2).parameters(), train)
    assert not opt.defaults.get("fused")
