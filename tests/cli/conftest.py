"""Shared helpers for the CLI tests: run ``genlab`` in-process, tiny trained runs, IDX files."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from genlab.cli.main import main

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys) -> Cli:
    """``cli("train", "vae", ...)`` -> (exit status, stdout, stderr) of one in-process run."""

    def run(*argv: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()  # drop whatever earlier calls printed
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory) -> dict[str, Path]:
    """One finished tiny run per model (4 steps), trained once per session. Read-only: a test
    that changes a run works on a copy (``run_copy``)."""
    root = tmp_path_factory.mktemp("trained")
    runs = {}
    for model in ("vae", "dcgan", "gan"):
        runs[model] = root / model
        assert main(["train", model, "--preset", f"tiny_{model}", "--out", str(runs[model])]) == 0
    return runs


@pytest.fixture
def run_copy(trained_runs, tmp_path) -> Callable[[str], Path]:
    """A private copy of a trained run, safe to damage or extend."""

    def copy(model: str = "vae") -> Path:
        dest = tmp_path / f"copy-{model}"
        shutil.copytree(trained_runs[model], dest)
        return dest

    return copy
