"""Click datasets: the procedural generator's planted structure, the sparse splits and batches,
and the MovieLens readers on small hand-written files (their bad-file errors are CLI tests in
tests/cli/test_recommend.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from genlab.core.config import DataConfig
from genlab.data import load_data
from genlab.data.implicit import generate_clicks, num_groups
from genlab.data.movielens import read_ratings
from genlab.training.batches import BatchStream


def test_generator_is_deterministic_sparse_and_planted():
    m, user_group, item_group = generate_clicks(1500, 400, seed=3)
    again, _, _ = generate_clicks(1500, 400, seed=3)
    other, _, _ = generate_clicks(1500, 400, seed=4)
    assert (m != again).nnz == 0 and (m != other).nnz > 0
    assert sp.issparse(m) and set(np.unique(m.data)) == {1.0}
    density = m.nnz / (1500 * 400)
    assert 0.01 <= density <= 0.05, density
    assert np.diff(m.indptr).min() >= 5
    # Planted groups: a user's clicks fall in their primary group far above its 1/G share.
    cols = m.indices
    rows = np.repeat(np.arange(1500), np.diff(m.indptr))
    in_group = (item_group[cols] == user_group[rows]).mean()
    assert in_group > 0.4 > 3 / num_groups(400), in_group
    # Power-law popularity: the top 10% of items get a large share of the clicks.
    counts = np.sort(np.asarray(m.sum(0)).ravel())[::-1]
    assert counts[:40].sum() / counts.sum() > 0.3


def test_clicks_bundle_keeps_sparse_splits():
    cfg = DataConfig(name="clicks", num_users=300, num_items=60, heldout_users=30)
    data = load_data(cfg)
    inter = data.extras["interactions"]
    assert data.spec.kind == "interactions" and data.spec.shape == (inter.train.shape[1],)
    assert sp.issparse(data.train.x) and sp.issparse(data.test.x)
    assert len(data.train) == 240 and len(data.test) == 30
    assert len(inter.validation) == 30 and inter.test.heldout.nnz > 0
    # The same config gives the same bundle.
    assert (load_data(cfg).train.x != data.train.x).nnz == 0


def test_batches_densify_only_batch_rows():
    data = load_data(DataConfig(name="clicks", num_users=100, num_items=40, heldout_users=10))
    stream = BatchStream(data.train, 16, seed=0, device=torch.device("cpu"))
    batch = next(stream)
    x = batch["x"]
    assert x.shape == (16, data.spec.shape[0]) and x.dtype == torch.float32
    rows = stream.perm[:16].numpy()
    np.testing.assert_array_equal(x.numpy(), data.train.x[rows].toarray())


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def ml20m_lines(users: int = 30, per_user: int = 6) -> str:
    """A ratings.csv: user u rates items u..u+per_user-1, 5 stars except the last (3 stars)."""
    lines = ["userId,movieId,rating,timestamp"]
    for u in range(1, users + 1):
        for j in range(per_user):
            rating = 3.0 if j == per_user - 1 else 4.5
            lines.append(f"{u},{100 + u + j},{rating},1112486027")
    return "\n".join(lines) + "\n"


def test_read_ml20m_and_ml100k_layouts(tmp_path):
    csv = write(tmp_path / "a" / "ratings.csv", "userId,movieId,rating,timestamp\n7,31,2.5,1\n")
    users, items, ratings = read_ratings(csv)
    assert users.tolist() == [7] and items.tolist() == [31] and ratings.tolist() == [2.5]
    udata = write(tmp_path / "b" / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    users, items, _ = read_ratings(udata)
    assert users.tolist() == [196, 186] and items.tolist() == [242, 302]


def test_movielens_binarises_and_drops_light_users(tmp_path):
    root = tmp_path / "ml"
    text = ml20m_lines()
    text += "".join(f"999,{i},5.0,1\n" for i in range(4))  # 4 clicks: dropped
    write(root / "ratings.csv", text)
    write(root / "movies.csv", 'movieId,title,genres\n102,"Heat, Part 1 (1995)",Action\n')
    data = load_data(DataConfig(name="movielens", root=str(root), heldout_users=3))
    inter = data.extras["interactions"]
    ids = np.concatenate([inter.train_user_ids, inter.validation.user_ids, inter.test.user_ids])
    assert sorted(ids.tolist()) == list(range(1, 31))  # user 999 dropped
    # 5 ratings of 4.5 per user become clicks; the 3-star one does not.
    assert (np.diff(inter.train.indptr) == 5).all()
    assert data.extras["titles"][102] == "Heat, Part 1 (1995)"
    # min_rating=3 keeps all 6.
    low = load_data(DataConfig(name="movielens", root=str(root), heldout_users=3, min_rating=3))
    assert (np.diff(low.extras["interactions"].train.indptr) == 6).all()
