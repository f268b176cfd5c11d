"""The image metrics (fid, kid, is, prdc, memorisation) on tiny trained runs: which images and
seeds they use, that features are computed once per evaluation, the reference rows, the
``genlab eval`` options and their one-line errors, and ``train.eval_every`` logging them.

Most tests use a stand-in feature space (4x4 average-pooled pixels and a fixed linear
"classifier"), so they need no trained classifier; one runs the real ``--features random``."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import genlab
from genlab.api import evaluate
from genlab.core.config import build_config
from genlab.data import load_data
from genlab.data.pixels import to_model
from genlab.metrics import stats
from genlab.metrics.features import FeatureSpace
from genlab.models.base import evaluating
from genlab.training.trainer import Trainer
from helpers import assert_one_line_error

NOTE = "stand-in pooled pixels, 16-d"


def pool(x: torch.Tensor) -> torch.Tensor:
    """(B, C, 16, 16) in [-1, 1] -> (B, 16 C) float32 on the CPU."""
    return F.avg_pool2d(x.float().cpu(), x.shape[-1] // 4).flatten(1)


def head(x: torch.Tensor) -> torch.Tensor:
    weight = torch.randn(16, 10, generator=torch.Generator().manual_seed(5))
    return 4 * pool(x) @ weight


@pytest.fixture
def standin(monkeypatch) -> list[int]:
    """Replace the feature space by ``pool``; returns the running count of featurised images."""
    seen = [0]

    def extract(x: torch.Tensor) -> torch.Tensor:
        seen[0] += len(x)
        return pool(x)

    space = FeatureSpace("stand-in", NOTE, 16, extract, head)
    monkeypatch.setattr("genlab.metrics.image.feature_space", lambda ctx: space)
    return seen


def by_key(results) -> dict[tuple[str, str], object]:
    return {(r.name, r.system): r for r in results}


def test_rows_use_the_split_the_seed_and_the_other_split(standin, trained_runs):
    run = trained_runs["dcgan"]
    results = evaluate(
        run, "fid,kid,is,prdc,memorisation", n=24, seed=3, options={"splits": 4},
        progress=False, record=False,
    )  # fmt: skip
    got = by_key(results)
    model, data = genlab.load(run), load_data(genlab.load_config(run).data)
    with evaluating(model):
        fake_x = model.sample(24, generator=torch.Generator().manual_seed(3 * 1_000_003 + 3))
    real, fake = pool(to_model(data.test.x[:24])), pool(fake_x)
    train = pool(to_model(data.train.x))
    assert got["fid", "model"].value == pytest.approx(stats.fid(real, fake), rel=1e-9)
    assert got["fid", "data"].value == pytest.approx(stats.fid(real, train[:24]), rel=1e-9)
    expected = stats.prdc(real, fake)
    assert {m: got[m, "model"].value for m in expected} == pytest.approx(expected)
    assert got["is", "model"].value == pytest.approx(stats.inception_score(head(fake_x), 4)[0])
    assert got["is", "data"].value == pytest.approx(
        stats.inception_score(head(to_model(data.test.x[:24])), 4)[0]
    )
    nn = stats.memorisation(fake, train, real)
    assert got["nn_ratio", "model"].value == pytest.approx(nn["ratio"])
    assert got["nn_close", "model"].value == pytest.approx(100 * nn["close"])
    # 24 <= --subset-size: KID of the whole sets, one value without a spread.
    assert got["kid", "model"].value == pytest.approx(stats.mmd2_unbiased(real, fake))
    assert got["kid", "model"].stderr is None and "whole sets" in got["kid", "model"].note
    assert got["kid", "model"].spread is None
    # The ± of IS is the spread over splits, never called a standard error.
    assert got["is", "model"].stderr is None and got["is", "model"].spread >= 0
    for r in results:
        assert NOTE in r.note and "seed 3" in r.note and r.n == 24, r
    assert "24 test images vs 24 samples" in got["precision", "model"].note
    assert "24 test images vs 24 train images" in got["precision", "data"].note


def test_features_are_computed_once_per_evaluation(standin, trained_runs):
    evaluate(trained_runs["dcgan"], "fid,kid,prdc", n=20, progress=False, record=False)
    assert standin[0] == 3 * 20  # test images, samples, train images: once each


def test_kid_subsets_have_a_spread(standin, trained_runs):
    options = {"subsets": 7, "subset_size": 10}
    (model, data) = evaluate(
        trained_runs["dcgan"], "kid", n=30, options=options, progress=False, record=False
    )
    assert model.stderr is None and model.spread > 0
    assert "mean ± sd (spread) over 7 subsets of 10" in model.note
    assert data.system == "data" and data.n == 10


def test_cli_with_random_features(cli, trained_runs):
    run = trained_runs["dcgan"]
    code, out, err = cli(
        "eval", run, "--metrics", "fid,prdc", "--features", "random", "--n", 16, "--json"
    )
    assert code == 0, err
    rows = json.loads(out)["results"]
    names = [(r["name"], r["system"]) for r in rows]
    assert names[:2] == [("fid", "model"), ("fid", "data")]
    assert ("coverage", "data") in names and len(rows) == 10
    assert all("random conv" in r["note"] and r["n"] == 16 for r in rows)
    assert all(0 <= r["value"] <= 1 for r in rows if r["name"] in ("precision", "recall"))


@pytest.mark.parametrize(
    "model, argv, fragments",
    [
        ("gan", ["--metrics", "fid"], ["metric 'fid' needs image data", "ring8"]),
        ("dcgan", ["--metrics", "fid", "--inception-weights", "nowhere.pth"], ["no such file"]),
        ("dcgan", ["--metrics", "fid", "--features", "pixels"], ["invalid choice: 'pixels'"]),
        ("dcgan", ["--metrics", "kid", "--subsets", 0], ["--subsets 0"]),
        ("dcgan", ["--metrics", "is", "--features", "random", "--n", 12], ["needs a classifier"]),
        ("dcgan", ["--metrics", "is", "--n", 8], ["needs at least 10 real"]),
        ("dcgan", ["--metrics", "prdc", "--features", "random", "--n", 5], ["at least 6"]),
    ],
)
def test_one_line_errors(cli, capsys, trained_runs, model, argv, fragments):
    try:
        code, out, err = cli("eval", trained_runs[model], *argv)
    except SystemExit as stop:  # argparse's own errors exit from inside the parser
        (out, err), code = capsys.readouterr(), stop.code
    assert code == 2 and out == ""
    assert_one_line_error(err, *fragments)


def test_eval_every_logs_image_metrics(standin, tmp_path):
    overrides = {"train.eval_every": 2, "train.eval_metrics": "fid,prdc"}
    cfg = build_config("dcgan", preset="tiny_dcgan", overrides=overrides)
    run = Trainer(cfg, tmp_path / "dcgan").fit()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = {r["step"]: r for r in rows if "eval/fid" in r}
    assert sorted(evals) == [2, 4]
    assert evals[2]["eval/fid"] != evals[4]["eval/fid"]  # the samples change, the data do not
    assert evals[2]["eval/data/fid"] == evals[4]["eval/data/fid"] > 0
    assert 0 <= evals[4]["eval/precision"] <= 1 and 0 <= evals[4]["eval/data/recall"] <= 1

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb")).Reload()
    assert {"eval/fid", "eval/coverage", "eval/data/fid"} <= set(events.Tags()["scalars"])


def test_confident_equals_a_direct_reading(standin, trained_runs):
    """% labelled with p >= 0.9, classes seen and the histogram's KL to uniform, recomputed from
    the stand-in head's logits of the same samples and test images."""
    from scipy.stats import entropy

    rows = evaluate(trained_runs["dcgan"], "confident", n=40, progress=False, record=False)
    got = {(r.system, r.name): r.value for r in rows}
    bundle = load_data(build_config("dcgan", preset="tiny_dcgan").data)
    real = head(to_model(bundle.test.x[:40]).float())
    probs = real.double().softmax(1).numpy()
    counts = [int((probs.argmax(1) == c).sum()) for c in range(10)]
    assert got[("data", "confident")] == pytest.approx(100 * (probs.max(1) >= 0.9).mean())
    assert got[("data", "classes")] == sum(c > 0 for c in counts)
    assert got[("data", "class_kl")] == pytest.approx(entropy(counts, [1] * 10), abs=1e-12)
    assert 0 <= got[("model", "confident")] <= 100 and 1 <= got[("model", "classes")] <= 10


def test_confident_needs_a_classifier(cli, trained_runs):
    code, _, err = cli("eval", trained_runs["dcgan"], "--metrics", "confident", "--features",
                       "random", "--n", "8")  # fmt: skip
    assert code == 2
    assert_one_line_error(err, "metric 'confident' needs a classifier")
