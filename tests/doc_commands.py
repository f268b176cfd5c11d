"""The ``genlab`` command lines of README.md and docs/**/*.md, for the docs smoke test
(tests/docs/test_docs_commands.py). Each is one ``DocCommand`` whose ``mode`` says what the
test does with it:

- ``run``: a line of a fenced block whose info string is empty, ``sh``, ``bash`` or ``shell``;
- ``parse`` (argparse accepts it and its overrides validate; nothing trains): a line of a
  ``console`` block (commands that need the user's own data); an ``ENV=... genlab ...`` line,
  since the variables the docs set (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA) act when torch is
  imported, so in the test's process they would test nothing (and could change the kernels of
  the tests after it) while a fresh process costs 10-15 s a line (``make test-avx2`` runs genlab
  under them); ``--nproc N`` for N > NPROC_RUN (2 torchrun processes take about 6 s on 2 cores,
  more would oversubscribe them past the budget); a ``--nproc`` line its page already ran;
- ``synopsis``: a line showing optional parts (``[--n N]``, ``linear|slerp``, ``...``): it cannot
  run; the options it shows are checked against the subcommand's parser.

A command line starts with ``genlab `` or ``.venv/bin/genlab `` (a ``$ `` prompt is dropped);
``\\`` continuations are joined and ``# comments`` dropped; lines of other programs (make,
torchrun, pip) are skipped; ``for V in A B ...; do genlab ...; done`` gives its body once, with
V = A. Any other block (``python``, ``yaml``, ``text``) is ignored.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_BLOCKS = frozenset({"", "sh", "bash", "shell"})
PARSE_BLOCKS = frozenset({"console"})
PROGRAMS = ("genlab", ".venv/bin/genlab")
NPROC_RUN = 2
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([^\s`]*)")
FOR_LOOP = re.compile(r"^for (\w+) in (\S+)[^;]*; *do (.+?);? *done$")
ENV_WORD = re.compile(r"^[A-Za-z_]\w*=")
SYNOPSIS = re.compile(r"[\[\]|]|^\.\.\.$")


@dataclass(frozen=True)
class DocCommand:
    page: str  # relative to the repo root
    line: int  # where the command starts
    argv: tuple[str, ...]  # after the program name
    env: tuple[tuple[str, str], ...] = ()
    mode: str = "run"  # run | parse | synopsis

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def fenced_blocks(text: str) -> Iterator[tuple[str, list[tuple[int, str]]]]:
    """(info string, [(line number, line), ...]) of each fenced code block of a page."""
    fence, info, body = "", "", []
    for number, line in enumerate(text.splitlines(), start=1):
        m = FENCE.match(line)
        if not fence:
            if m:
                fence, info, body = m.group(1), m.group(2).lower(), []
        elif set(line.strip()) == {fence[0]} and len(line.strip()) >= len(fence):
            yield info, body
            fence = ""
        else:
            body.append((number, line))


def logical_lines(body: list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """(first line number, text) with backslash continuations joined."""
    start, parts = 0, []
    for number, line in body:
        start = start or number
        text = line.strip()
        parts.append(text.removesuffix("\\"))
        if not text.endswith("\\"):
            yield start, " ".join(parts)
            start, parts = 0, []
    if parts:
        yield start, " ".join(parts)


def command_of(text: str) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]] | None:
    """(environment, argv after ``genlab``) of a genlab command line, else None."""
    text = text.strip().removeprefix("$ ")
    loop = FOR_LOOP.match(text)
    if loop:  # the body once, with the loop variable's first value
        var, first, body = loop.groups()
        text = re.sub(rf"\$(\{{{var}\}}|{var}\b)", first, body)
    try:
        words = shlex.split(text, comments=True)
    except ValueError:
        return None
    env = []
    while words and ENV_WORD.match(words[0]):
        key, _, value = words.pop(0).partition("=")
        env.append((key, value))
    if len(words) < 2 or words[0] not in PROGRAMS:
        return None
    return tuple(env), tuple(words[1:])


def nproc(argv: tuple[str, ...]) -> int:
    """The N of ``--nproc N`` (1 without it)."""
    for i, word in enumerate(argv):
        if word == "--nproc" and i + 1 < len(argv) and argv[i + 1].isdigit():
            return int(argv[i + 1])
        if word.startswith("--nproc="):
            return int(word.partition("=")[2])
    return 1


def collect_page(page: str, text: str) -> list[DocCommand]:
    """Every genlab command of one page's text, in order."""
    found, launched = [], set()
    for info, body in fenced_blocks(text):
        if info not in RUN_BLOCKS | PARSE_BLOCKS:
            continue
        for line, logical in logical_lines(body):
            command = command_of(logical)
            if command is None:
                continue
            env, argv = command
            if any(SYNOPSIS.search(word) for word in argv):
                mode = "synopsis"
            elif info in PARSE_BLOCKS or env or nproc(argv) > NPROC_RUN or argv in launched:
                mode = "parse"
            else:
                mode = "run"
            found.append(DocCommand(page, line, argv, env, mode))
            launched |= {argv} if mode == "run" and nproc(argv) > 1 else set()
    return found


def collect(root: Path = ROOT) -> list[DocCommand]:
    """The commands of README.md, then of docs/**/*.md in sorted order."""
    paths = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    pages = [(p.relative_to(root).as_posix(), p.read_text(encoding="utf-8")) for p in paths]
    return [command for page, text in pages for command in collect_page(page, text)]
