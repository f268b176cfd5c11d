"""The public API (docs/api.md): every name of ``genlab.__all__`` exists and is documented, and
every ``genlab`` subcommand has a Python function of the same name."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import genlab
from genlab.cli.main import build_parser

PYTHON_NAME = {"eval": "evaluate", "list": "list_models"}  # Python keywords / builtins
API_DOC = Path(__file__).parents[2] / "docs" / "api.md"


PYTHON_TOOL_NAME = {("data", "list"): "list_downloads"}


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(found[0].choices) if found else {}


def subcommands() -> list[str]:
    return sorted(subparsers(build_parser()))


def test_every_public_name_exists_and_has_a_docstring():
    for name in genlab.__all__:
        obj = getattr(genlab, name)
        if callable(obj) and not isinstance(obj, type):
            assert obj.__doc__, f"genlab.{name} has no docstring"


def test_every_subcommand_is_a_python_function_of_the_same_name():
    """``genlab CMD`` is ``genlab.CMD(...)``; ``genlab CMD TOOL`` is ``genlab.CMD.TOOL(...)``."""
    commands = subparsers(build_parser())
    assert {"train", "sample", "eval", "doctor", "latent", "data"} <= set(commands)
    for command, parser in commands.items():
        name = PYTHON_NAME.get(command, command)
        assert name in genlab.__all__, f"`genlab {command}` has no genlab.{name}"
        obj = getattr(genlab, name)
        tools = subparsers(parser)
        if not tools:
            assert callable(obj), f"genlab.{name} is not callable"
        for tool in tools:
            attr = PYTHON_TOOL_NAME.get((command, tool), tool)
            assert callable(getattr(obj, attr, None)), f"`genlab {command} {tool}`: no {attr}"


def test_the_api_page_lists_every_public_name():
    listed = set(re.findall(r"`genlab\.(\w+)", API_DOC.read_text()))
    missing = sorted(set(genlab.__all__) - listed - {"__version__"})
    assert missing == []
