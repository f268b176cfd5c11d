"""Fixtures of the CLI tests: tiny trained runs, trained once per session, and private copies."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from genlab.cli.main import main


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
