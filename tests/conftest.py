"""Fixtures for every test directory: ``cli`` runs ``genlab`` in-process; domain classifiers
are cached in a per-session directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from genlab.cli.main import main

Cli = Callable[..., tuple[int, str, str]]


def pytest_collection_modifyitems(items) -> None:
    """Quality runs (``-m slow``, ``make bench``) train for minutes to hours: no time limit."""
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.timeout(0))


@pytest.fixture(scope="session", autouse=True)
def classifier_cache(tmp_path_factory) -> Iterator[Path]:
    """``GENLAB_CACHE`` points at a fresh directory for the whole session: tests never write to
    the user's home, and each domain classifier is trained once per session."""
    root = tmp_path_factory.mktemp("genlab-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_CACHE", str(root))
        yield root


@pytest.fixture
def cli(capsys) -> Cli:
    """``cli("train", "vae", ...)`` -> (exit status, stdout, stderr) of one in-process run."""

    def run(*argv: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()  # drop whatever earlier calls printed
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run
