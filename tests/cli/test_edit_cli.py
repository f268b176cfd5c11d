"""``genlab edit`` end to end on the tiny runs: the report, the before/after PNG, and one-line
errors for bad arguments, an unknown attribute, unlabelled data and a model without a
generator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genlab.cli.main import main
from genlab.core.errors import ConfigError
from genlab.tools.edit_run import edit, text
from helpers import assert_one_line_error


@pytest.fixture(scope="module")
def runs8(tmp_path_factory) -> dict[str, Path]:
    """Tiny runs on 8x8 digits (the domain classifier at 8x8 trains in a few seconds and is
    shared with other tests), and a multvae run (no generator)."""
    root = tmp_path_factory.mktemp("edit")
    runs = {}
    for model, extra in (("dcgan", ["data.image_size=8"]), ("vae", ["data.image_size=8"])):
        runs[model] = root / model
        args = ["train", model, "--preset", f"tiny_{model}", "--out", str(runs[model]), *extra]
        assert main(args) == 0
    runs["multvae"] = root / "multvae"
    assert (
        main(["train", "multvae", "--preset", "tiny_multvae", "--out", str(runs["multvae"])]) == 0
    )
    return runs


def unlabelled_copy(run: Path, tmp_path: Path) -> Path:
    """A copy of a tiny 8x8 run whose config now names a folder of unlabelled images."""
    root = tmp_path / "folder"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / f"{i}.png")
    run = Path(shutil.copytree(run, tmp_path / "run"))
    cfg = json.loads((run / "config.json").read_text())
    cfg["data"].update(name="imagefolder", root=str(root), channels=1)
    (run / "config.json").write_text(json.dumps(cfg))
    return run


@pytest.mark.parametrize("model", ["dcgan", "vae"])
def test_edit_reports_scores_and_writes_before_after_rows(cli, runs8, tmp_path, model):
    out = tmp_path / "edit.png"
    args = ["--attr", "3", "--amount", "2", "--n", "10", "--steps", "3", "--out", out, "--json"]
    code, stdout, _ = cli("edit", runs8[model], *args)
    assert code == 0
    r = json.loads(stdout)
    assert (r["attr"], r["kind"], r["n"], r["png"]) == ("3", "class", 10, str(out))
    s = r["scores"]
    assert 0 <= s["success_before"] <= 1 and 0 <= s["success"] <= 1
    assert set(s["others"]) == {"0", "1", "2", "4", "5", "6", "7", "8", "9"}
    assert r["classifier"]["accuracy"] > 0.9  # the digits classifier, measured on its test split
    assert 0 <= r["distance_mean"] <= 3 * 0.1 + 1e-6  # at most 3 steps of 0.1
    # 8 columns; 10 samples: two groups (the second padded), each a row before and after.
    # 8 px cells enlarged 8x to 64 px, 1 px borders.
    assert Image.open(out).size == ((8 * 9 + 1) * 8, (4 * 9 + 1) * 8)


def test_edit_text_report_names_the_classifier(cli, runs8, tmp_path):
    args = ["--attr", "7", "--amount", "-1", "--n", "2", "--steps", "1"]
    code, stdout, _ = cli("edit", runs8["dcgan"], *args, "--out", tmp_path / "e.png")
    assert code == 0
    assert "classifier: test acc" in stdout and "7 predicted absent" in stdout
    assert "entanglement, other classes" in stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--attr", "3", "--amount", "0"], ["--amount 0", "non-zero"]),
        (["--attr", "3", "--amount", "nan"], ["--amount nan"]),
        (["--attr", "3", "--amount", "1", "--n", "0"], ["--n 0"]),
        (["--attr", "3", "--amount", "1", "--step-size", "-1"], ["--step-size -1"]),
        (["--attr", "nine", "--amount", "1"], ["unknown class 'nine'", "0..9", "0, 1, 2"]),
    ],
)
def test_bad_arguments_are_one_line_errors(cli, runs8, args, fragments):
    code, _, err = cli("edit", runs8["dcgan"], *args)
    assert code == 2
    assert_one_line_error(err, *fragments)


def test_unlabelled_data_is_a_one_line_error(cli, runs8, tmp_path):
    run = unlabelled_copy(runs8["dcgan"], tmp_path)
    code, _, err = cli("edit", run, "--attr", "3", "--amount", "1")
    assert code == 2
    assert_one_line_error(err, "class labels or binary attributes", "neither")


def test_model_without_a_generator_is_a_one_line_error(cli, runs8):
    code, _, err = cli("edit", runs8["multvae"], "--attr", "3", "--amount", "1")
    assert code == 2
    assert_one_line_error(err, "genlab edit needs a model that generates from a latent", "multvae")


def test_edit_from_python(runs8, tmp_path):
    out = tmp_path / "py.png"
    r = edit(runs8["dcgan"], "3", 2.0, n=3, steps=2, out=out, progress=False)
    assert (r["attr"], r["kind"], r["n"], r["steps"], r["png"]) == ("3", "class", 3, 2, str(out))
    assert 0 <= r["distance_max"] <= 2 * 0.1 + 1e-6 and out.is_file() and "judge" not in r
    assert text(r).splitlines()[-1] == f"rows: before, after (8 per row): {out}"
    with pytest.raises(ConfigError, match="--amount 0"):
        edit(runs8["dcgan"], "3", 0.0)
