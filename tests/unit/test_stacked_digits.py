"""stacked_digits: each channel is a digit of the label's class from the matching split, modes
are uniform, and the ``modes`` metric counts 1,000 modes (real data: all; one image: one)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from scipy import stats
from torch import nn

from genlab.core.config import DataConfig, build_config
from genlab.core.errors import ConfigError
from genlab.data import load_data
from genlab.data.pixels import to_model
from genlab.data.stacked_digits import mode_digits
from genlab.metrics import EvalContext
from genlab.metrics.modes import kl_to_uniform, modes
from helpers import assert_one_line_error


@pytest.fixture(scope="module")
def data():
    return load_data(DataConfig(name="stacked_digits", image_size=8, num_samples=3000))


@pytest.fixture(scope="module")
def digits():
    return load_data(DataConfig(name="digits", image_size=8))


def test_channels_are_digits_of_the_label_from_the_matching_split(data, digits):
    assert data.train.x.shape == (3000, 3, 8, 8) and data.test.x.shape == (300, 3, 8, 8)
    assert data.train.x.dtype == torch.uint8 and data.spec.num_classes == 1000
    assert data.spec.class_names[307] == "307" and data.spec.extra["eval_metrics"] == "modes"
    for stacked, base in ((data.train, digits.train), (data.test, digits.test)):
        # Brute force: look every channel image up among the base split's images.
        lookup = {
            bytes(img.flatten().tolist()): int(y) for img, y in zip(base.x, base.y, strict=True)
        }
        for img, mode in zip(stacked.x[:200], mode_digits(stacked.y[:200]), strict=True):
            for c in range(3):
                assert lookup[bytes(img[c].flatten().tolist())] == int(mode[c])


def test_modes_are_uniform_and_deterministic(data):
    counts = torch.bincount(data.train.y, minlength=1000)
    assert len(counts) == 1000 and data.train.y.min() >= 0
    assert stats.chisquare(counts.numpy()).pvalue > 1e-3
    again = load_data(DataConfig(name="stacked_digits", image_size=8, num_samples=3000))
    assert torch.equal(again.train.x, data.train.x) and torch.equal(again.test.y, data.test.y)
    other = load_data(
        DataConfig(name="stacked_digits", image_size=8, num_samples=3000, split_seed=1)
    )
    assert not torch.equal(other.train.y, data.train.y)


def test_config_errors():
    with pytest.raises(ConfigError, match="exceed 1 GiB"):
        load_data(DataConfig(name="stacked_digits", image_size=256, num_samples=10_000_000))
    with pytest.raises(ConfigError, match=r"data\.root is not used"):
        load_data(DataConfig(name="stacked_digits", root="/x"))


def test_kl_to_uniform_matches_scipy():
    counts = torch.tensor([5, 0, 3, 9, 1, 0, 2])
    want = stats.entropy(counts.numpy() / counts.sum().item(), [1 / 7] * 7)
    assert kl_to_uniform(counts) == pytest.approx(want, rel=1e-12)
    assert math.isnan(kl_to_uniform(torch.zeros(4)))


class Replay(nn.Module):
    """A 'generator' that returns given images in order, cycling."""

    def __init__(self, spec, images):
        super().__init__()
        self.spec, self.images, self.at = spec, images, 0

    def sample(self, n, *, labels=None, generator=None):
        idx = (torch.arange(n) + self.at) % len(self.images)
        self.at += n
        return self.images[idx]


def _metric(data, images, n):
    cfg = build_config("dcgan", preset="tiny_dcgan", overrides={"data.name": "stacked_digits"})
    model = Replay(data.spec, images)
    ctx = EvalContext(Path("."), cfg, model, torch.device("cpu"), 0, n=n, progress=False)
    return {r.name: r for r in modes(ctx, None)}


def test_real_data_covers_all_modes():
    real = load_data(DataConfig(name="stacked_digits", image_size=8))  # 10,000 test samples
    got = _metric(real, to_model(real.test.x), n=len(real.test))
    # N uniform draws over M = 1000 modes miss M (1 - 1/M)^N ~ 0.05 modes on average, and their
    # histogram has E[KL] ~ (M - 1) / 2N = 0.05.
    assert got["modes"].value >= 998 and got["modes"].unit == "of 1000"
    assert got["mode_kl"].value < 0.1 and got["modes"].n == 10_000
    assert "digits classifier" in got["modes"].note and "test acc" in got["modes"].note


def test_one_image_is_one_mode(data):
    got = _metric(data, to_model(data.test.x[:1]), n=700)
    assert got["modes"].value == 1
    assert got["mode_kl"].value == pytest.approx(math.log(1000))


def test_cli_train_and_count_modes(cli, tmp_path):
    run = tmp_path / "stacked"
    args = ["data.name=stacked_digits", "data.image_size=8", "data.num_samples=200"]
    code, _, err = cli("train", "dcgan", *args, "--preset", "tiny_dcgan", "--out", run)
    assert code == 0, err
    code, out, err = cli("eval", run, "--metrics", "modes", "--n", 300, "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)["results"]}
    assert set(rows) == {"modes", "mode_kl"} and 1 <= rows["modes"]["value"] <= 300
    code, _, err = cli("train", "dcgan", "data.name=stacked_digits", "data.root=x", "--out", run)
    assert code == 2
    assert_one_line_error(err, "data.root is not used by dataset 'stacked_digits'")
