"""``genlab`` entry point. Bad input ends with one line on stderr and exit status 2; a diverged
run exits 1; Ctrl-C, SIGTERM or SIGUSR1 during training exits 128 + the signal (130, 143, 138)
after saving a checkpoint."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
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
        return interrupted(err)


def interrupted(err: KeyboardInterrupt) -> int:
    """The line and exit status of a stopped run: 128 + the signal (130 Ctrl-C, 143 SIGTERM,
    138 SIGUSR1), as a shell reports a signal; the checkpoint lets ``--resume`` continue."""
    step = err.args[0] if err.args else None
    signum = int(err.args[1]) if len(err.args) > 1 and err.args[1] else signal.SIGINT
    name = signal.Signals(signum).name
    if step is None:
        print(f"genlab: interrupted ({name})", file=sys.stderr)
    else:
        run = f" {err.args[2]}" if len(err.args) > 2 else ""
        print(
            f"genlab: stopped by {name} at step {step}; a checkpoint was saved "
            f"(continue with `genlab train --resume{run}`)",
            file=sys.stderr,
        )
    return 128 + signum


if __name__ == "__main__":
    sys.exit(main())
