"""MovieLens ratings as implicit feedback (Harper & Konstan 2015, "The MovieLens Datasets",
https://grouplens.org/datasets/movielens/), read from ``data.root``; nothing is downloaded.

Two layouts are recognised, by the file present in ``data.root``:

- ``ratings.csv`` (ML-20M, ML-25M, ml-latest): header ``userId,movieId,rating,timestamp``;
  titles, if wanted, from ``movies.csv`` beside it (``movieId,title,genres``);
- ``u.data`` (ML-100K): ``user<TAB>item<TAB>rating<TAB>timestamp``, no header; titles from
  ``u.item`` (``id|title|...``, Latin-1).

Preprocessing of Liang et al. 2018 (arXiv:1802.05814, section 4.1): ratings of at least
``data.min_rating`` (4 stars; ML-20M's half stars make this "above 3.5") become clicks, the rest
are dropped, and users with fewer than 5 clicks are dropped. Then the held-out protocol of
``genlab.data.recsys`` (10,000 validation and 10,000 test users on ML-20M).
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

from genlab.core.config import DataConfig
from genlab.core.errors import ConfigError, DataError
from genlab.data.base import DataBundle, register_dataset
from genlab.data.implicit import MIN_CLICKS, interactions_bundle
from genlab.data.recsys import clicks_matrix

# file name -> (delimiter, header lines, titles file)
LAYOUTS = {
    "ratings.csv": (",", 1, "movies.csv"),
    "u.data": ("\t", 0, "u.item"),
}
HEADER = "userId,movieId,rating"


def find_ratings(root: str | None) -> Path:
    """The ratings file in ``root`` (``ratings.csv`` preferred over ``u.data``)."""
    if root is None:
        raise ConfigError("dataset 'movielens' needs data.root=DIR, the unpacked MovieLens folder")
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise DataError(f"data.root {folder} is not a directory")
    for name in LAYOUTS:
        if (folder / name).is_file():
            return folder / name
    raise DataError(
        f"{folder} has neither ratings.csv (ML-20M/25M) nor u.data (ML-100K); point data.root at "
        "an unpacked MovieLens folder from https://grouplens.org/datasets/movielens/"
    )


def _first_bad_line(path: Path, delimiter: str, header: int) -> tuple[int, str] | None:
    """(1-based line number, text) of the first line that is not user, item, rating[, ...]."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if number <= header:
                continue
            fields = line.rstrip("\r\n").split(delimiter)
            try:
                int(fields[0]), int(fields[1]), float(fields[2])
            except (ValueError, IndexError):
                return number, line.rstrip("\r\n")
    return None


def _malformed(path: Path, number: int, text: str) -> DataError:
    shown = text if len(text) <= 60 else text[:57] + "..."
    return DataError(
        f"{path}: line {number} is not 'user, item, rating, timestamp' ({shown!r}); "
        "fix or remove that line"
    )


def read_ratings(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user ids (N,) int64, item ids (N,) int64, ratings (N,) float64) of a ratings file."""
    delimiter, header, _ = LAYOUTS[path.name]
    if header:
        with open(path, encoding="utf-8", errors="replace") as f:
            first = f.readline().strip()
        if not first.startswith(HEADER):
            raise DataError(f"{path}: line 1 is {first[:40]!r}, not the header {HEADER},timestamp")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": checked below
            table = np.loadtxt(
                path, delimiter=delimiter, skiprows=header, usecols=(0, 1, 2), ndmin=2
            )
    except ValueError as err:
        bad = _first_bad_line(path, delimiter, header)
        if bad is None:
            raise DataError(f"{path}: cannot be read as ratings ({err})") from None
        raise _malformed(path, *bad) from None
    ids = table[:, :2]
    whole = np.all(ids == np.round(ids), axis=1)
    if not whole.all():  # "1.5" parses as a float but is no id
        row = int(np.flatnonzero(~whole)[0])
        bad = _first_bad_line(path, delimiter, header)
        raise _malformed(path, *(bad or (row + header + 1, "")))
    return ids[:, 0].astype(np.int64), ids[:, 1].astype(np.int64), table[:, 2]


def read_titles(ratings: Path) -> dict[int, str]:
    """Item id -> title from the titles file beside ``ratings``, if present; lines that do not
    parse are skipped (titles only decorate recommendations)."""
    path = ratings.parent / LAYOUTS[ratings.name][2]
    titles: dict[int, str] = {}
    if not path.is_file():
        return titles
    if path.name == "movies.csv":
        with open(path, encoding="utf-8", errors="replace", newline="") as f:
            rows = csv.reader(f)
            next(rows, None)
            for row in rows:
                if len(row) >= 2 and row[0].isdigit():
                    titles[int(row[0])] = row[1]
    else:
        with open(path, encoding="latin-1") as f:
            for line in f:
                fields = line.split("|")
                if len(fields) >= 2 and fields[0].isdigit():
                    titles[int(fields[0])] = fields[1]
    return titles


@register_dataset(
    "movielens",
    uses=("root", "min_rating", "heldout_users", "heldout_fraction", "split_seed"),
    help="MovieLens ratings.csv (ML-20M/25M) or u.data (ML-100K) as clicks (data.root)",
)
def load_movielens(cfg: DataConfig) -> DataBundle:
    path = find_ratings(cfg.root)
    users, items, ratings = read_ratings(path)
    if len(users) == 0:
        raise DataError(f"{path} holds no ratings")
    keep = ratings >= cfg.min_rating
    users, items = users[keep], items[keep]
    ids, counts = np.unique(users, return_counts=True)
    active = np.isin(users, ids[counts >= MIN_CLICKS])
    if not active.any():
        raise DataError(
            f"{path}: no user has {MIN_CLICKS} ratings >= {cfg.min_rating}; lower data.min_rating"
        )
    m, user_ids, item_ids = clicks_matrix(users[active], items[active])
    extras = {"titles": read_titles(path), "source": str(path)}
    return interactions_bundle("movielens", m, user_ids, item_ids, cfg, extras)
