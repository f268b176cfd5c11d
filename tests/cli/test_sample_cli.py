"""``genlab sample``: truncation, class labels, class grids, interpolations and their errors."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from genlab.cli.main import main
from genlab.core.errors import ConfigError
from genlab.data.base import DataSpec
from genlab.models.sampling import sample_truncated
from genlab.tools.sample import parse_label, sample


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("cgan") / "run"
    assert main(["train", "cgan", "--preset", "tiny_cgan", "--out", str(run)]) == 0
    return run


def npy(cli, tmp_path, run, *args) -> np.ndarray:
    out = tmp_path / "s.npy"
    code, stdout, err = cli("sample", run, "--npy", "--out", out, *args)
    assert code == 0, err
    assert stdout.strip() == str(out)
    return np.load(out)


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size


def one_line_error(cli, *args) -> str:
    code, out, err = cli(*args)
    assert code == 2 and out == ""
    assert err.startswith("genlab") and err.count("\n") == 1, err
    return err


# ----------------------------------------------------------------------------- options


def test_truncation_samples(cli, tmp_path, trained_runs):
    run = trained_runs["dcgan"]
    got = npy(cli, tmp_path, run, "-n", 5, "--seed", 2, "--truncation", 0.5)
    model = genlab.load(run)
    expected = sample_truncated(model, 5, 0.5, generator=torch.Generator().manual_seed(2))
    np.testing.assert_array_equal(got, expected.numpy())
    plain = npy(cli, tmp_path, run, "-n", 5, "--seed", 2)
    assert not np.allclose(got, plain)


def test_default_names_say_what_was_drawn(cli, cgan_run):
    code, out, err = cli("sample", cgan_run, "-n", 4, "--label", 7, "--truncation", 0.7)
    assert code == 0, err
    assert Path(out.strip()) == cgan_run / "samples" / "sample_label7_trunc0.7_seed0.png"
    assert Path(out.strip()).is_file()


def test_label_makes_every_sample_that_class(cli, tmp_path, cgan_run):
    got = npy(cli, tmp_path, cgan_run, "-n", 6, "--label", 7)
    model = genlab.load(cgan_run)
    gen = torch.Generator().manual_seed(0)
    expected = model.sample(6, labels=torch.full((6,), 7), generator=gen)
    np.testing.assert_array_equal(got, expected.numpy())


def test_label_by_class_name():
    spec = DataSpec("image", (1, 8, 8), 3, ("square", "ellipse", "heart"))
    model = SimpleNamespace(num_classes=3, spec=spec, cfg=SimpleNamespace(name="cgan"))
    assert parse_label(model, "heart") == 2 and parse_label(model, "1") == 1
    with pytest.raises(ConfigError, match=r"index 0\.\.2 or a name \(square, ellipse, heart\)"):
        parse_label(model, "circle")


def test_class_grid_has_one_row_per_class(cli, tmp_path, cgan_run):
    out = tmp_path / "classes.png"
    code, _, err = cli("sample", cgan_run, "--grid", "classes", "-n", 3, "--out", out)
    assert code == 0, err
    # 16 px cells enlarged twice (to 32 px), 1 px borders: 3 columns by 10 rows.
    assert png_size(out) == (2 * (3 * 17 + 1), 2 * (10 * 17 + 1))
    assert npy(cli, tmp_path, cgan_run, "--grid", "classes", "-n", 3).shape == (30, 1, 16, 16)


def test_interpolation_rows(cli, tmp_path, trained_runs):
    out = tmp_path / "interp.png"
    run = trained_runs["dcgan"]
    code, _, err = cli("sample", run, "--interpolate", 5, "-n", 2, "--out", out)
    assert code == 0, err
    assert png_size(out) == (2 * (5 * 17 + 1), 2 * (2 * 17 + 1))
    got = npy(cli, tmp_path, run, "--interpolate", 5, "-n", 2, "--truncation", 0.8)
    assert got.shape == (10, 1, 16, 16)
    # Interpolation works for any generator model, 2-D points included (a scatter plot).
    code, _, err = cli(
        "sample", trained_runs["gan"], "--interpolate", 4, "--out", tmp_path / "p.png"
    )
    assert code == 0, err


def test_interpolation_of_a_vae(cli, tmp_path, trained_runs):
    got = npy(cli, tmp_path, trained_runs["vae"], "--interpolate", 3, "-n", 2)
    assert got.shape == (6, 1, 16, 16) and np.abs(got).max() <= 1


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--label", "3"), "needs a conditional model"),
        (("--grid", "classes"), "class grid needs a class-conditional model"),
        (("--truncation", "0"), "at least 0.01"),
        (("--truncation", "nan"), "at least 0.01"),
        (("--interpolate", "1"), "at least 2 steps"),
        (("--grid", "classes", "-n", "0"), "-n 0"),
    ],
)
def test_misuse_on_an_unconditional_run(cli, trained_runs, args, message):
    err = one_line_error(cli, "sample", trained_runs["dcgan"], *args)
    assert message in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--grid", "rows"), "invalid choice"),
        (("--grid", "classes", "--interpolate", "3"), "not allowed with"),
        (("--truncation", "high"), "invalid float value"),
    ],
)
def test_usage_errors(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "run", *args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--label", "10"), "--label '10' is not a class: use an index 0..9"),
        (("--label", "seven"), "is not a class"),
        (("--label", "-1"), "is not a class"),
        (("--label", "2", "--grid", "classes"), "drop one"),
    ],
)
def test_bad_labels(cli, cgan_run, args, message):
    assert message in one_line_error(cli, "sample", cgan_run, *args)


# ----------------------------------------------------------------------------- attributes


@pytest.fixture(scope="module")
def attrs_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("cgan-attrs") / "run"
    overrides = ["model.condition=attrs", "data.num_samples=64", "data.image_size=32"]
    overrides += ["train.steps=2"]
    args = ["train", "cgan", "--preset", "tiny_cgan", "--data", "shapes", "--out", str(run)]
    assert main([*args, *overrides]) == 0
    return run


def test_label_names_the_attributes_that_are_on(cli, tmp_path, attrs_run):
    model = genlab.load(attrs_run)
    names = list(model.spec.attr_names)
    on = [names[0], names[3]]
    got = npy(cli, tmp_path, attrs_run, "-n", 5, "--label", ",".join(on))
    bits = torch.tensor([1.0 if n in on else 0.0 for n in names])
    gen = torch.Generator().manual_seed(0)
    expected = model.sample(5, labels=bits.expand(5, -1), generator=gen)
    np.testing.assert_array_equal(got, expected.numpy())
    same = npy(cli, tmp_path, attrs_run, "-n", 5, "--label", ",".join(str(int(b)) for b in bits))
    np.testing.assert_array_equal(same, got)  # the 0/1 form means the same
    other = npy(cli, tmp_path, attrs_run, "-n", 5, "--label", names[1])
    assert not np.array_equal(other, got)


def test_attribute_label_names_its_file(cli, attrs_run):
    names = genlab.load(attrs_run).spec.attr_names
    code, out, err = cli("sample", attrs_run, "-n", 4, "--label", names[1])
    assert code == 0, err
    bits = "".join("1" if i == 1 else "0" for i in range(len(names)))
    assert Path(out.strip()).name == f"sample_label{bits}_seed0.png"


@pytest.mark.parametrize("label", ["purple", "1,0", "large,purple", ""])
def test_bad_attribute_label_is_one_line(cli, attrs_run, label):
    err = one_line_error(cli, "sample", attrs_run, "--label", label)
    assert "comma-separated 0/1 values" in err and "large" in err


def test_sample_from_python(trained_runs, tmp_path):
    run = trained_runs["gan"]
    path = sample(run, 6, seed=4, npy=True, out=tmp_path / "p.npy")
    assert path == tmp_path / "p.npy"
    expected = sample_truncated(
        genlab.load(run), 6, None, generator=torch.Generator().manual_seed(4)
    )
    np.testing.assert_array_equal(np.load(path), expected.numpy().astype(np.float32))
    png = sample(trained_runs["dcgan"], 4, truncation=0.7, interpolate=3)
    assert png == trained_runs["dcgan"] / "samples" / "interpolate_trunc0.7_seed0.png"
    assert png_size(png)[1] > png_size(png)[0]  # 4 rows of 3 columns: taller than wide
    with pytest.raises(ConfigError, match="choose one"):
        sample(run, grid="classes", interpolate=3)
