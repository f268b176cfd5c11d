"""Options shared by the commands that load a trained run (not a subcommand itself)."""

from __future__ import annotations


def add_checkpoint_args(p) -> None:
    """``--step``, ``--no-ema`` and ``--device``: which weights of RUN to load, and where."""
    p.add_argument("--step", type=int, help="checkpoint step (default: the newest)")
    p.add_argument("--no-ema", action="store_true", help="use raw weights even if EMA was kept")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
