"""``genlab arch``: measured shapes and parameter counts for every registered model."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from genlab.core.config import build_config
from genlab.core.registry import MODELS
from genlab.data import load_data
from genlab.models import build_model
from genlab.tools import arch
from helpers import assert_one_line_error


def conv_size(n: int, m: nn.Module) -> int:
    """Output side of a conv / transposed conv layer as PyTorch documents it (dilation 1)."""
    k, s, p = m.kernel_size[0], m.stride[0], m.padding[0]
    if isinstance(m, nn.ConvTranspose2d):
        return (n - 1) * s - 2 * p + k + m.output_padding[0]
    return (n + 2 * p - k) // s + 1


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_reports_its_layers(cli, name):
    code, out, err = cli("arch", name, "--preset", f"tiny_{name}", "--json")
    assert code == 0, err
    record = json.loads(out)
    cfg = build_config(name, preset=f"tiny_{name}")
    model = build_model(cfg.model, load_data(cfg.data).spec)
    # Totals against a direct count; every listed layer ran and its shape was measured.
    assert record["total_params"] == sum(p.numel() for p in model.parameters())
    tops = {n: sum(p.numel() for p in m.parameters()) for n, m in model.named_children()}
    assert {b["name"]: b["params"] for b in record["blocks"] if b["name"] in tops} == tops
    modules = dict(model.named_modules())
    for block in record["blocks"]:
        for layer in block["layers"]:
            assert layer["output"] is not None, layer["name"]
            if layer["predicted"] is not None:
                assert layer["agrees"] and layer["predicted"] == layer["output"][-2:]
                m = modules[layer["name"]]
                assert isinstance(m, nn.Conv2d | nn.ConvTranspose2d)


def test_vae_shapes_follow_the_conv_arithmetic(cli):
    code, out, _ = cli("arch", "vae", "--preset", "tiny_vae", "--json")
    record = json.loads(out)
    assert code == 0 and record["input_shape"] == [1, 16, 16] and record["batch"] == 2
    blocks = {b["name"]: b for b in record["blocks"]}
    convs = [x for x in blocks["encoder"]["layers"] if x["kind"].startswith("Conv2d")]
    size, model = 16, build_model(*_cfg_spec("vae"))
    for layer in convs:  # chained from the image size with PyTorch's documented formula
        size = conv_size(size, dict(model.named_modules())[layer["name"]])
        assert layer["output"][-2:] == [size, size]
    decoder = blocks["decoder"]["layers"]
    assert [x for x in decoder if x["output"]][-1]["output"][-3:] == [1, 16, 16]


def _cfg_spec(name):
    cfg = build_config(name, preset=f"tiny_{name}")
    return cfg.model, load_data(cfg.data).spec


def test_text_table_and_spectral_norm(cli):
    code, out, _ = cli("arch", "dcgan", "--preset", "tiny_dcgan", "model.spectral_norm=true")
    assert code == 0
    assert out.splitlines()[0] == "dcgan on digits (image 1x16x16), batch 2"
    assert "Conv2d(1->8, k4 s2 p1, sn)" in out and "parametrizations" not in out
    assert "formula 16x16 ok" in out and "MISMATCH" not in out
    total = sum(p.numel() for p in build_model(*_cfg_spec("dcgan")).parameters())
    assert out.rstrip().endswith(f"total: {total:,} parameters")


def test_synthetic_data_and_points(cli):
    code, out, err = cli("arch", "gan", "--data", "ring8")
    assert code == 0, err
    assert "gan on ring8 (points 2)" in out and "Linear(16->128)" in out
    code, out, err = cli("arch", "vae", "--data", "shapes", "model.latent_dim=3")
    assert code == 0, err
    assert "(image 1x32x32)" in out


def test_a_wrong_formula_is_flagged(cli, monkeypatch):
    # The check compares two things: break the formula and it must say so (exit status 1).
    monkeypatch.setattr(arch, "conv_out", lambda n, k, s, p: n)
    code, out, _ = cli("arch", "vae", "--preset", "tiny_vae")
    assert code == 1 and "MISMATCH" in out


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (("vae", "data.image_size=30"), ("image size 30 cannot be reached",)),
        (("vae", "--data", "shapes", "data.image_size=48"), ("shapes renders 32x32 or 64x64",)),
        (("wobble",), ("unknown model 'wobble'",)),
        (("vae", "model.depth=3"), ("unknown key 'model.depth'",)),
        (("vae", "--preset", "tiny_dcgan"), ("is for model 'dcgan'",)),
    ],
)
def test_errors_are_one_line(cli, argv, fragments):
    code, out, err = cli("arch", *argv)
    assert code == 2 and out == ""
    assert_one_line_error(err, *fragments)


def test_shapes_too_many_images_is_one_line(cli, tmp_path):
    code, _, err = cli(
        "train", "vae", "--data", "shapes", "data.num_samples=5000000", "--out", tmp_path / "r"
    )
    assert code == 2
    assert_one_line_error(err, "data.num_samples=5000000", "use at most")
    assert not (tmp_path / "r" / "config.json").exists()


def test_dummy_batch_matches_the_spec():
    _, spec = _cfg_spec("vae")
    batch = arch.dummy_batch(spec)
    assert batch["x"].shape == (2, 1, 16, 16) and batch["x"].abs().max() <= 1
    assert batch["y"].max() < 10 and torch.equal(batch["x"], arch.dummy_batch(spec)["x"])


def test_arch_from_python():
    report = arch.arch("vae", preset="tiny_vae", overrides=["model.latent_dim=3"])
    model = build_model(report.cfg.model, report.spec)
    assert report.cfg.model.latent_dim == 3
    assert (
        report.total
        == report.to_dict()["total_params"]
        == sum(p.numel() for p in model.parameters())
    )
    assert report.mismatches() == [] and report.to_dict()["input_shape"] == [1, 16, 16]
    assert report.text().splitlines()[0] == "vae on digits (image 1x16x16), batch 2"
