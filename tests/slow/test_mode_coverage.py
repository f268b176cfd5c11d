"""Slow quality check (``make bench``, not CI): the 2-D GAN recipe of ``presets/gan_ring8.yaml``
captures all 8 modes of the ring with mostly high-quality samples, scored with the VEEGAN/PacGAN
protocol of the ``modes`` metric (2,500 samples, within 3 sigma of a mode)."""

import pytest

from genlab.tools.coverage import sweep


@pytest.mark.slow
def test_gan_captures_every_mode_of_the_ring(tmp_path):
    (row,) = sweep(["gan"], ["ring8"], 1, tmp_path)
    assert row.modes == 8 and row.of == 8
    assert row.hq >= 90.0  # the full recipe's 5-seed mean is in docs/results.md
