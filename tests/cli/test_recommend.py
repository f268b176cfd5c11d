"""Recommendation end to end: ``genlab recommend``, the ranking metrics of ``genlab eval`` with
their baselines (checked against a direct computation), users/s in the benchmark, and one-line
errors for bad click files and bad arguments."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import genlab
from genlab.api import evaluate
from genlab.cli.main import main
from genlab.core.errors import ConfigError
from genlab.data import load_data
from genlab.tools.bench import bench_model
from genlab.tools.recommend import recommend, table
from helpers import assert_one_line_error


@pytest.fixture(scope="module")
def rec_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("rec") / "multvae"
    assert main(["train", "multvae", "--preset", "tiny_multvae", "--out", str(run)]) == 0
    return run


def ratings_csv(root: Path, text: str | None = None, titles: bool = False) -> Path:
    """A small ML-20M style folder: 30 users with 6 ratings of >= 4 stars on 20 movies."""
    root.mkdir(parents=True, exist_ok=True)
    if text is None:
        rows = [f"{u},{(u * 7 + j * 3) % 20 + 1},4.5,0" for u in range(1, 31) for j in range(6)]
        text = "userId,movieId,rating,timestamp\n" + "\n".join(rows) + "\n"
    (root / "ratings.csv").write_text(text)
    if titles:
        movies = "".join(f'{i},"Movie {i}, The (199{i % 10})",Drama\n' for i in range(1, 21))
        (root / "movies.csv").write_text("movieId,title,genres\n" + movies)
    return root


# ----------------------------------------------------------------------------- recommend


def test_recommend_ranks_unseen_items(cli, rec_run):
    inter = load_data(genlab.load_config(rec_run).data).extras["interactions"]
    user = int(inter.train_user_ids[3])
    code, out, err = cli("recommend", rec_run, "--user", user, "-k", 5, "--json")
    assert code == 0, err
    got = json.loads(out)
    seen = set(inter.item_ids[inter.train[3].indices].tolist())
    items = [r["item"] for r in got["items"]]
    assert len(items) == 5 and not set(items) & seen and got["clicked"] == len(seen)
    scores = [r["score"] for r in got["items"]]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] < 1
    code, out, _ = cli("recommend", rec_run, "--user", user, "-k", 5)
    assert code == 0 and [int(line.split()[2]) for line in out.splitlines()[1:]] == items


def test_recommend_shows_movielens_titles(cli, tmp_path):
    root = ratings_csv(tmp_path / "ml", titles=True)
    run = tmp_path / "run"
    args = ["--preset", "tiny_multvae", "--data", "movielens", "--out", run]
    overrides = [f"data.root={root}", "data.heldout_users=3"]
    overrides += ["data.num_users=null", "data.num_items=null"]  # the tiny preset's clicks size
    code, _, err = cli("train", "multvae", *args, *overrides)
    assert code == 0, err
    code, out, err = cli("recommend", run, "--user", 30, "-k", 3)
    assert code == 0, err
    assert len(out.splitlines()) == 4 and "Movie " in out and ", The (199" in out


# ----------------------------------------------------------------------------- eval


def test_eval_reports_model_and_baselines(cli, rec_run):
    code, out, err = cli("eval", rec_run, "--metrics", "recall@20,recall@50,ndcg@100", "--json")
    assert code == 0, err
    rows = json.loads(out)["results"]
    assert [(r["name"], r["system"]) for r in rows[:3]] == [
        ("recall@20", "model"),
        ("recall@20", "popularity"),
        ("recall@20", "ease"),
    ]
    assert len(rows) == 9 and all(0 <= r["value"] <= 1 and r["n"] == 20 for r in rows)


def test_model_metrics_match_a_direct_computation(rec_run):
    results = evaluate(rec_run, "recall@5,ndcg@10", progress=False, record=False)
    got = {(r.name, r.system): r.value for r in results}
    model = genlab.load(rec_run)
    inter = load_data(genlab.load_config(rec_run).data).extras["interactions"]
    recalls, ndcgs = [], []
    for u in range(len(inter.test)):
        held = set(inter.test.heldout[u].indices.tolist())
        if not held:
            continue
        x = torch.from_numpy(inter.test.foldin[u].toarray())
        scores = model.scores(x)[0].tolist()
        seen = set(inter.test.foldin[u].indices.tolist())
        ranked = sorted((i for i in range(len(scores)) if i not in seen), key=lambda i: -scores[i])
        recalls.append(len(set(ranked[:5]) & held) / min(5, len(held)))
        dcg = sum(1 / math.log2(r + 2) for r, i in enumerate(ranked[:10]) if i in held)
        ndcgs.append(dcg / sum(1 / math.log2(r + 2) for r in range(min(10, len(held)))))
    assert got[("recall@5", "model")] == pytest.approx(np.mean(recalls))
    assert got[("ndcg@10", "model")] == pytest.approx(np.mean(ndcgs))


def test_bench_reports_users_per_second():
    overrides = ["data.num_users=200", "data.num_items=50", "model.hidden=[8]"]
    row = bench_model("multvae", batch_size=16, steps=2, warmup=0, overrides=overrides)
    assert row["users_per_s"] > 0 and row["num_items"] <= 50 and row["image_size"] is None


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["--user", "123456"], ["--user 123456", "no such user"]),
        (["--user", "abc"], ["--user 'abc'"]),
        (["--user", "1", "-k", "0"], ["-k 0"]),
    ],
)
def test_recommend_bad_arguments(cli, rec_run, argv, fragments):
    code, _, err = cli("recommend", rec_run, *argv)
    assert code == 2
    assert_one_line_error(err, *fragments)


def test_recommend_and_ranking_need_a_recommender(cli, trained_runs):
    code, _, err = cli("recommend", trained_runs["vae"], "--user", 1)
    assert code == 2
    assert_one_line_error(err, "'vae' run", "multvae")
    code, _, err = cli("eval", trained_runs["vae"], "--metrics", "recall@20")
    assert code == 2
    assert_one_line_error(err, "metric 'recall' needs a recommendation model")


def test_ranking_metrics_need_the_test_split(cli, rec_run):
    code, _, err = cli("eval", rec_run, "--metrics", "ndcg@100", "--split", "train")
    assert code == 2
    assert_one_line_error(err, "--split train", "use --split test")


def test_multvae_needs_click_data(cli, tmp_path):
    code, _, err = cli("train", "multvae", "--data", "digits", "--out", tmp_path / "r")
    assert code == 2
    assert_one_line_error(err, "needs click data")


HEADER = "userId,movieId,rating,timestamp\n"


@pytest.mark.parametrize(
    "make, overrides, fragments",
    [
        (None, [], ["needs data.root"]),
        (lambda root: root.mkdir(), [], ["neither ratings.csv", "u.data"]),
        (lambda root: ratings_csv(root, HEADER + "1,2,4,0\n1,x,4,0\n"), [], ["line 3"]),
        (lambda root: ratings_csv(root, HEADER + "1,2,4,0\n1,2\n"), [], ["line 3"]),
        (lambda root: ratings_csv(root, HEADER + "1,2.5,4,0\n"), [], ["line 2"]),
        (lambda root: ratings_csv(root, "user,item\n1,2,4,0\n"), [], ["line 1", "header"]),
        (lambda root: ratings_csv(root, HEADER), [], ["holds no ratings"]),
        (lambda root: ratings_csv(root), ["data.min_rating=5"], ["lower data.min_rating"]),
        (lambda root: ratings_csv(root), ["data.heldout_users=15"], ["only 30 users"]),
        (lambda root: ratings_csv(root), ["data.num_items=20"], ["data.num_items is not used"]),
    ],
)
def test_bad_movielens_files(cli, tmp_path, make, overrides, fragments):
    root = tmp_path / "ml"
    if make is not None:
        make(root)
        overrides = [f"data.root={root}", *overrides]
    code, _, err = cli(
        "train", "multvae", "--data", "movielens", "--out", tmp_path / "r", *overrides
    )
    assert code == 2
    assert_one_line_error(err, *fragments)


def test_bad_ml100k_line(cli, tmp_path):
    root = tmp_path / "ml100k"
    root.mkdir()
    (root / "u.data").write_text("1\t2\t4\t0\n1\t3\t4\t0\n1;4;4;0\n")
    code, _, err = cli("train", "multvae", "--data", "movielens", f"data.root={root}")
    assert code == 2
    assert_one_line_error(err, "u.data: line 3")


def test_recommend_from_python(rec_run):
    inter = load_data(genlab.load_config(rec_run).data).extras["interactions"]
    user = int(inter.train_user_ids[2])
    record = recommend(rec_run, user, 4)
    seen = set(inter.item_ids[inter.train[2].indices].tolist())
    assert [r["rank"] for r in record["items"]] == [1, 2, 3, 4]
    assert not {r["item"] for r in record["items"]} & seen and record["clicked"] == len(seen)
    assert recommend(rec_run, str(user), 4) == record  # the CLI's string id is the same user
    assert table(record).splitlines()[0].startswith(f"user {user}: {len(seen)} items clicked")
    with pytest.raises(ConfigError, match="whole numbers"):
        recommend(rec_run, "x")
