"""``genlab`` entry point. Bad input ends with one line on stderr and exit status 2; a diverged
run exits 1; Ctrl-C exits 130 after saving a checkpoint."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from genlab.core.errors import GenlabError, TrainingDiverged


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not the usage block) and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> Parser:
    from genlab.core.version import __version__

    parser = Parser(prog="genlab", description="Train, sample and evaluate generative models.")
    parser.add_argument("--version", action="version", version=f"genlab {__version__}")
    subs = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    # Every module of genlab.cli with an ``add_parser`` is a subcommand (one file each).
    import genlab.cli as package

    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"genlab.cli.{info.name}")
        if hasattr(module, "add_parser"):
            module.add_parser(subs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Overrides may follow options (`train vae --out R train.steps=9`): argparse leaves them over.
    args, extra = parser.parse_known_args(argv)
    unknown = [a for a in extra if a.startswith("-") or "=" not in a]
    if unknown or (extra and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(unknown or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    try:
        return int(args.run(args) or 0)
    except GenlabError as err:
        print(f"genlab: error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"genlab: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        step = err.args[0] if err.args else None
        where = f" at step {step}; a checkpoint was saved" if step is not None else ""
        print(f"genlab: interrupted{where}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
