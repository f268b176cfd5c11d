"""``genlab compare``: two tiny runs with quality metrics side by side, the values read back
from their own files, the overlaid curves, and one-line errors."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

import genlab
from genlab.tools.compare import labels_for
from helpers import assert_one_line_error

EVAL = ["train.eval_every=2", "train.eval_metrics=recon"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two tiny VAEs (different seed and beta) that log eval/recon every 2 steps."""
    root = tmp_path_factory.mktemp("compare")
    return [
        genlab.train("vae", preset="tiny_vae", out=root / "a", overrides=EVAL),
        genlab.train("vae", preset="tiny_vae", out=root / "b", overrides=[*EVAL, "seed=1"]),
    ]


def last_logged(run, key: str) -> tuple[int, float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    row = [r for r in rows if key in r][-1]
    return row["step"], row[key]


def test_compare_table_and_curves(cli, two_runs, tmp_path):
    out_png = tmp_path / "cmp.png"
    code, out, err = cli("compare", *two_runs, "--out", out_png)
    assert code == 0, err
    header, *rows, last = out.strip().splitlines()
    assert header.split() == ["metric", "source", "a", "b"]
    assert len(rows) == 1 and rows[0].split()[:2] == ["eval/recon", "train"]
    for run in two_runs:
        step, value = last_logged(run, "eval/recon")
        assert f"{value:.4g} @{step}" in rows[0]
    assert last == f"curves: {out_png}"
    with Image.open(out_png) as image:
        assert image.format == "PNG" and image.width > 100


def test_compare_json_with_an_eval_result(cli, two_runs, tmp_path):
    a = tmp_path / "a"
    shutil.copytree(two_runs[0], a)
    assert cli("eval", a, "--metrics", "recon,elbo", "--n", 8, "--k", 4)[0] == 0
    code, out, err = cli(
        "compare", a, two_runs[1], "--metric", "eval/recon", "--metric", "elbo",
        "--metric", "recon", "--json", "--out", tmp_path / "c.png",
    )  # fmt: skip
    assert code == 0, err
    got = json.loads(out)
    assert [r["label"] for r in got["runs"]] == ["a", "b"]
    rows = {(r["metric"], r["source"]): r["values"] for r in got["metrics"]}
    # "elbo" stands for eval/elbo; "recon" is the training loss, eval/recon the quality metric.
    assert list(rows) == [
        ("eval/recon", "train log"),
        ("eval/recon", "genlab eval"),
        ("eval/elbo", "genlab eval"),
        ("recon", "train log"),
    ]
    recon, elbo = json.loads((a / "eval.json").read_text())[-1]["results"]
    assert rows[("eval/recon", "genlab eval")]["a"]["value"] == recon["value"]
    assert rows[("eval/elbo", "genlab eval")]["a"]["stderr"] == elbo["stderr"]
    assert rows[("eval/recon", "genlab eval")]["b"] is None
    assert rows[("recon", "train log")]["b"]["value"] == last_logged(two_runs[1], "recon")[1]
    assert got["figure"] == str(tmp_path / "c.png")


def test_runs_without_eval_metrics_compare_their_losses(cli, trained_runs, run_copy, tmp_path):
    code, out, err = cli(
        "compare", trained_runs["vae"], run_copy("vae"), "--out", tmp_path / "x.png"
    )
    assert code == 0, err
    assert [line.split()[0] for line in out.splitlines()[1:-1]] == ["kl", "loss", "recon"]


@pytest.mark.parametrize(
    "runs, args, fragments",
    [
        (["vae", "gan"], [], ["no metric in common", "d_loss", "--metric"]),
        (["vae", "dcgan"], ["--metric", "fid"], ["--metric 'fid' is in none", "g_loss"]),
        (["vae"], [], ["at least two runs"]),
        (["vae", None], [], ["does not exist"]),
    ],
)
def test_compare_errors(cli, trained_runs, tmp_path, runs, args, fragments):
    paths = [trained_runs[r] if r else tmp_path / "missing" for r in runs]
    code, _, err = cli("compare", *paths, *args, "--out", tmp_path / "c.png")
    assert code == 2
    assert_one_line_error(err, *fragments)
    assert not (tmp_path / "c.png").exists()


def test_labels_for_runs_of_the_same_name():
    assert labels_for(["x/a", "y/b"]) == ["a", "b"]
    assert labels_for(["x/a", "y/a"]) == ["x/a", "y/a"]
    assert labels_for(["x/a", "x/a"]) == ["x/a #1", "x/a #2"]
