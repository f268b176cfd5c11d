"""The mode-collapse sweep (``genlab.tools.coverage``, ``genlab coverage``): table arithmetic
against hand values, resume by skipping finished runs, one-line errors."""

from __future__ import annotations

import json
import math

import pytest
import torch

import genlab
from genlab.core.config import build_config, preset_names
from genlab.core.errors import ConfigError
from genlab.metrics.modes import DEFAULT_SAMPLES, mode_coverage, scored_samples
from genlab.tools.coverage import (
    GOAL_HQ,
    PLOT_FILE,
    RunResult,
    markdown,
    plan,
    run_one,
    summarise,
    sweep,
)

# Test-sized runs: a few steps of tiny MLPs on a small sample of the mixture.
TINY = ["train.steps=3", "model.hidden=[8]", "data.num_samples=256", "train.batch_size=32"]
VARIANTS = ["gan", "gan_minimax", "lsgan", "wgan", "wgan_gp", "sngan", "cgan"]


def result(seed: int, modes: float, hq: float, kl: float, wall: float = 1.0) -> RunResult:
    return RunResult("gan", "ring8", seed, modes, 8, hq, kl, wall)


def test_summary_means_and_sample_stds_match_hand_values():
    rows = summarise([result(0, 8, 96.0, 0.01, 2.0), result(1, 6, 90.0, 0.05, 4.0)])
    (row,) = rows
    # mean (8 + 6) / 2 = 7; sample std sqrt(((8-7)^2 + (6-7)^2) / 1) = sqrt(2)
    assert row.modes == 7.0 and row.modes_std == pytest.approx(2**0.5)
    assert row.hq == 93.0 and row.hq_std == pytest.approx(18**0.5)  # (3^2 + 3^2) / 1
    assert row.kl == pytest.approx(0.03) and row.kl_std == pytest.approx(0.0008**0.5)
    assert row.wall_s == 3.0 and row.seeds == 2 and not row.goal
    assert "| gan | ring8 | 2 | 7.0 ± 1.4 / 8 | 93.0 ± 4.2 |" in markdown(rows)


def test_goal_needs_every_mode_in_every_seed_and_enough_quality():
    assert summarise([result(0, 8, GOAL_HQ, 0.0)])[0].goal  # one seed: std 0
    assert not summarise([result(0, 8, 99.0, 0.0), result(1, 7, 99.0, 0.0)])[0].goal
    assert not summarise([result(0, 8, GOAL_HQ - 0.1, 0.0)])[0].goal


def test_a_run_without_high_quality_samples_has_no_kl_and_says_so():
    (row,) = summarise([result(0, 0, 0.0, math.nan), result(1, 8, 96.0, 0.01)])
    assert row.modes == 4.0 and row.hq == 48.0 and math.isnan(row.kl)
    assert "| nan ± nan |" in markdown([row])


def test_rows_group_by_pair_in_order_and_published_rows_follow():
    a = RunResult("sngan", "grid25", 0, 25, 25, 97.0, 0.0, 1.0)
    rows = summarise([a, result(0, 8, 96.0, 0.0), result(1, 8, 98.0, 0.0)])
    assert [(r.variant, r.data, r.seeds) for r in rows] == [
        ("sngan", "grid25", 1),
        ("gan", "ring8", 2),
    ]
    table = markdown(rows)
    assert "PacGAN4" in table and "PacGAN2" in table and "| yes |" in table


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("data", ["ring8", "grid25"])
def test_every_variant_has_a_2d_preset_for_its_data(variant, data):
    name = f"{variant}_{data}"
    assert name in preset_names()
    cfg = build_config(preset=name)
    assert cfg.data.name == data and cfg.model.arch == "mlp"


def test_plan_checks_names_and_seeds():
    assert plan(["gan"], ["ring8"], 2) == [("gan", "ring8", 0), ("gan", "ring8", 1)]
    with pytest.raises(ConfigError, match="no preset 'nope_ring8'"):
        plan(["nope"], ["ring8"], 1)
    with pytest.raises(ConfigError, match="--seeds 0"):
        plan(["gan"], ["ring8"], 0)


def test_sweep_writes_tables_and_resumes_by_skipping(tmp_path):
    seen = []
    rows = sweep(
        ["gan"], ["ring8"], 2, tmp_path, overrides=TINY, on_run=lambda r, s: seen.append(s)
    )
    assert seen == [False, False] and rows[0].seeds == 2
    saved = json.loads((tmp_path / "coverage.json").read_text())
    assert [r["seed"] for r in saved["runs"]] == [0, 1]
    assert (tmp_path / "coverage.md").read_text().startswith("| variant |")
    # An unfinished run (no score saved) is trained again; the finished one is skipped.
    (tmp_path / "gan-ring8-s1" / "coverage.json").unlink()
    first = (tmp_path / "gan-ring8-s0" / "coverage.json").stat().st_mtime_ns
    seen.clear()
    again = sweep(
        ["gan"], ["ring8"], 2, tmp_path, overrides=TINY, on_run=lambda r, s: seen.append(s)
    )
    assert seen == [True, False]
    same = [(r.modes, r.modes_std, r.hq, r.hq_std) for r in (*rows, *again)]
    assert same[0] == same[1]  # seed 1 trained again: the same run, the same score
    assert (tmp_path / "gan-ring8-s0" / "coverage.json").stat().st_mtime_ns == first


def test_each_run_plots_the_samples_its_score_counted(tmp_path):
    run = tmp_path / "gan-ring8-s1"
    r = run_one("gan", "ring8", 1, run, TINY)
    assert (run / PLOT_FILE).read_bytes().startswith(b"\x89PNG")
    # The plotted points are the scored ones: rescoring them gives the saved figures.
    model = genlab.load(run)
    points = scored_samples(model, DEFAULT_SAMPLES, 1)
    extra = model.spec.extra
    got = mode_coverage(points, torch.tensor(extra["centres"]), extra["sigma"])
    assert (got["modes"], 100 * got["hq"]) == (r.modes, r.hq)
    other = scored_samples(model, DEFAULT_SAMPLES, 2)  # another seed, other points
    assert not torch.equal(points, other)


def test_cli_prints_the_table_and_skips_finished_runs(cli, tmp_path):
    args = ["coverage", "--models", "cgan", "--data", "grid25", "--seeds", "1", "--out", tmp_path]
    code, out, err = cli(*args, *TINY)
    assert code == 0 and "| cgan | grid25 | 1 |" in out and "/ 25" in out
    assert "[1/1] cgan grid25 seed 0: " in err  # progress, one line per run off a terminal
    code, out, err = cli(*args, "--json", *TINY)
    assert code == 0 and "skip cgan grid25 seed 0" in err
    assert json.loads(out)[0]["of"] == 25


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--models", "gan,nope", "--data", "ring8"], "no preset 'nope_ring8'"),
        (["--models", "gan", "--data", "digits"], "no preset 'gan_digits'"),
        (["--models", "gan", "--data", "ring8", "--seeds", "0"], "--seeds 0"),
        (["--models", ",", "--data", "ring8"], "at least one variant"),
    ],
)
def test_cli_errors_are_one_line(cli, tmp_path, argv, needle):
    code, _, err = cli("coverage", *argv, "--out", tmp_path / "sweep")
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "sweep").exists()  # checked before anything is trained
