"""Helpers shared by test files (``tests`` is on pytest's python path)."""

from __future__ import annotations

import torch

from genlab.training.batches import BatchStream


def assert_one_line_error(err: str, *fragments: str) -> str:
    """stderr is exactly one line, starts with ``genlab``, has no traceback and every fragment."""
    text = err.strip()
    assert text, "nothing on stderr"
    assert "\n" not in text, f"more than one line on stderr:\n{err}"
    assert text.startswith("genlab"), text
    assert "Traceback" not in text, text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    return text


def step_batch(model, split, step: int = 0, batch_size: int = 8, seed: int = 0) -> dict:
    """What the trainer hands ``model.train_step`` at ``step``: ``batches_for_step(step)``
    batches of ``split`` stacked along dim 0, on the CPU."""
    stream = BatchStream(split, batch_size, seed, torch.device("cpu"))
    return stream.take(model.batches_for_step(step))
