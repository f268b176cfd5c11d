"""Fixtures for every test directory: ``cli`` runs ``genlab`` in-process."""

from __future__ import annotations

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
