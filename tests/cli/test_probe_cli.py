"""``genlab probe`` end to end on the tiny runs: three accuracies and the chance level, and
one-line errors for bad arguments, unlabelled data and a model with neither an encoder nor
discriminator features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genlab.cli.main import main
from genlab.core.errors import ConfigError
from genlab.tools.probe import probe, table
from helpers import assert_one_line_error


@pytest.mark.parametrize(("model", "source"), [("dcgan", "discriminator"), ("vae", "encoder")])
def test_probe_reports_three_accuracies(cli, trained_runs, model, source):
    code, stdout, _ = cli("probe", trained_runs[model], "--n", "300", "--k", "10", "--json")
    assert code == 0
    r = json.loads(stdout)
    rows = {row["name"]: row for row in r["rows"]}
    assert list(rows) == ["model", "kmeans", "pixels"]
    assert source in rows["model"]["description"]
    assert rows["kmeans"]["dim"] == 10 and rows["pixels"]["dim"] == 16 * 16
    assert (r["n_train"], r["n_test"], r["num_classes"]) == (300, 180, 10)
    assert r["chance"] < 0.2
    assert rows["pixels"]["accuracy"] > 0.8  # 16x16 digits are nearly linearly separable


def test_probe_table(cli, trained_runs):
    code, stdout, _ = cli("probe", trained_runs["vae"], "--n", "200", "--k", "5")
    assert code == 0
    assert "model: encoder code" in stdout and "k-means triangle (K=5)" in stdout
    assert "chance (the most frequent class)" in stdout


def test_bad_arguments_are_one_line_errors(cli, trained_runs):
    for args, fragment in ((["--k", "0"], "--k 0"), (["--n", "1"], "--n 1")):
        code, _, err = cli("probe", trained_runs["vae"], *args)
        assert code == 2
        assert_one_line_error(err, fragment)
    code, _, err = cli("probe", trained_runs["vae"], "--n", "20", "--k", "50")
    assert code == 2
    assert_one_line_error(err, "--k 50", "more centroids")


def test_unlabelled_data_is_a_one_line_error(cli, run_copy, tmp_path):
    root = tmp_path / "folder"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(root / f"{i}.png")
    run = run_copy("vae")
    cfg = json.loads((run / "config.json").read_text())
    cfg["data"].update(name="imagefolder", root=str(root), channels=1)
    (run / "config.json").write_text(json.dumps(cfg))
    code, _, err = cli("probe", run)
    assert code == 2
    assert_one_line_error(err, "scores class labels", "'imagefolder' has none")


def test_model_with_neither_encoder_nor_features_is_a_one_line_error(cli, tmp_path: Path):
    run = tmp_path / "multvae"  # multvae encodes clicks, not images: not the encoder contract
    assert main(["train", "multvae", "--preset", "tiny_multvae", "--out", str(run)]) == 0
    code, _, err = cli("probe", run)
    assert code == 2
    assert_one_line_error(err, "'multvae' has neither")


def test_probe_from_python(trained_runs):
    record = probe(trained_runs["vae"], n=200, k=10, split="train")
    assert [r["name"] for r in record["rows"]] == ["model", "kmeans", "pixels"]
    assert record["split"] == "train" and record["n_train"] == record["n_test"] == 200
    assert all(0 <= r["accuracy"] <= 1 for r in record["rows"]) and 0 < record["chance"] < 1
    assert record["rows"][1]["dim"] == 10 and record["rows"][2]["dim"] == 16 * 16
    lines = table(record).splitlines()
    assert len(lines) == 6 and lines[-1].startswith("chance (the most frequent class)")
    with pytest.raises(ConfigError, match="--k 0"):
        probe(trained_runs["vae"], k=0)
