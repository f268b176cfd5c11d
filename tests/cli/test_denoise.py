"""``genlab denoise``: the three-row PNG, the printed errors, the corruption defaults, and one-line
errors (exit status 2) for bad arguments and runs without an encoder."""

from __future__ import annotations

import io
import re

import pytest
import torch
from PIL import Image

from genlab.cli.main import main
from genlab.core.config import build_config
from genlab.data import load_data
from genlab.data.pixels import to_model
from genlab.models.autoencoder import mask_corruption
from genlab.tools.denoise import denoise

MSE = re.compile(r"noisy ([0-9.]+), denoised ([0-9.]+)")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny finished ``dae`` (masking noise 0.25) and ``ae`` runs, trained once."""
    root = tmp_path_factory.mktemp("denoise")
    for name in ("dae", "ae"):
        assert main(["train", name, "--preset", f"tiny_{name}", "--out", str(root / name)]) == 0
    return {name: root / name for name in ("dae", "ae")}


def errors(out: str) -> tuple[float, float]:
    noisy, denoised = MSE.search(out).groups()
    return float(noisy), float(denoised)


def test_denoise_writes_three_rows_and_the_errors(cli, runs, tmp_path):
    png = tmp_path / "d.png"
    code, out, err = cli("denoise", runs["dae"], "-n", 5, "--seed", 3, "--out", png)
    assert code == 0, err
    assert "mask 0.25" in out and out.strip().endswith(str(png))
    # 16x16 digits are enlarged 2x in the grid: 5 columns, 3 rows of 16 px with 1 px padding.
    assert Image.open(io.BytesIO(png.read_bytes())).size == (2 * (5 * 17 + 1), 2 * (3 * 17 + 1))
    # The noisy error, recomputed independently: masked ink pixels cost (x - 0)^2 on [0, 1].
    cfg = build_config("dae", preset="tiny_dae")
    clean = to_model(load_data(cfg.data).test.x[:5])
    noisy = mask_corruption(clean, 0.25, torch.Generator().manual_seed(3))
    hit = (noisy != clean).squeeze(1)
    expected = float(((clean.squeeze(1)[hit] + 1) / 2).pow(2).sum() / clean.numel())
    assert errors(out)[0] == pytest.approx(expected, abs=1e-5)
    again = tmp_path / "again.png"
    cli("denoise", runs["dae"], "-n", 5, "--seed", 3, "--out", again)
    assert again.read_bytes() == png.read_bytes()  # the seed fixes the noise


def test_an_ae_run_falls_back_to_gaussian_noise_and_says_so(cli, runs):
    code, out, err = cli("denoise", runs["ae"], "-n", 3)
    assert code == 0, err
    assert "without corruption" in out and "gaussian 0.3" in out
    assert (runs["ae"] / "samples" / "denoise_seed0.png").is_file()


def test_explicit_corruption_none_shows_plain_reconstructions(cli, runs, tmp_path):
    code, out, err = cli("denoise", runs["ae"], "--corruption", "none", "--out", tmp_path / "r.png")
    assert code == 0, err
    noisy, denoised = errors(out)
    assert noisy == 0.0 and denoised > 0.0


def assert_usage_error(cli, capsys, argv, *fragments):
    try:
        code, out, err = cli(*argv)
    except SystemExit as stop:  # argparse's own errors exit from inside the parser
        (out, err), code = capsys.readouterr(), stop.code
    assert code == 2 and not out
    line = err.strip()
    assert line.startswith("genlab") and "\n" not in line and "Traceback" not in line
    for fragment in fragments:
        assert fragment in line, line


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["-n", "0"], ["-n 0", "between 1 and 64"]),
        (["-n", "65"], ["-n 65"]),
        (["--noise-level", "1.5"], ["--noise-level 1.5", "mask", "[0, 1]"]),
        (["--corruption", "gaussian", "--noise-level", "-0.1"], ["--noise-level -0.1", ">= 0"]),
        (["--corruption", "salt_pepper", "--noise-level", "nan"], ["finite"]),
        (["--corruption", "blur"], ["invalid choice: 'blur'"]),
        (["--split", "valid"], ["invalid choice: 'valid'"]),
    ],
)
def test_bad_arguments_are_one_line_errors(cli, capsys, runs, args, fragments):
    assert_usage_error(cli, capsys, ["denoise", runs["dae"], *args], *fragments)


def test_a_run_without_an_encoder_is_a_one_line_error(cli, capsys, trained_runs):
    argv = ["denoise", trained_runs["dcgan"]]
    assert_usage_error(cli, capsys, argv, "no encoder", "dcgan")


def test_a_missing_run_is_a_one_line_error(cli, capsys, tmp_path):
    assert_usage_error(cli, capsys, ["denoise", tmp_path / "nothing"], "nothing")


def test_denoise_from_python(runs, tmp_path):
    png = tmp_path / "py.png"
    r = denoise(runs["dae"], 3, corruption="mask", noise_level=0.0, out=png)
    # No masked pixel: the noisy row is the clean one.
    assert (r["kind"], r["level"], r["note"], r["png"]) == ("mask", 0.0, "", png)
    assert r["mse_noisy"] == 0.0 and r["mse_denoised"] > 0 and png.is_file()
    fallback = denoise(runs["ae"], 2, out=tmp_path / "ae.png")
    assert (fallback["kind"], fallback["level"]) == ("gaussian", 0.3)
    assert "without corruption" in fallback["note"] and fallback["mse_noisy"] > 0
