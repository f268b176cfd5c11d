"""Feature spaces of the image metrics: the choice rule, memoisation, what each space returns,
that the classifier space separates classes, and the one-line errors of bad choices."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from genlab.core.config import DataConfig, build_config
from genlab.core.errors import CheckpointError, ConfigError
from genlab.data import load_data
from genlab.data.base import DataBundle, Split
from genlab.data.pixels import to_model
from genlab.metrics import EvalContext
from genlab.metrics.features import FALLBACK_LIMITS, feature_space, random_net
from genlab.nn.inception import FIDInceptionV3
from helpers import assert_one_line_error


class Stub(nn.Module):
    """Just enough of a model for a feature space: its data spec."""

    def __init__(self, spec):
        super().__init__()
        self.spec = spec


def context(bundle: DataBundle, **options) -> EvalContext:
    cfg = build_config("vae", preset="tiny_vae")
    return EvalContext(
        Path("."), cfg, Stub(bundle.spec), torch.device("cpu"), 0, options=options,
        progress=False, bundle=bundle,
    )  # fmt: skip


@pytest.fixture(scope="module")
def digits8() -> DataBundle:
    return load_data(DataConfig(name="digits", image_size=8))


@pytest.fixture(scope="module")
def unlabelled(digits8) -> DataBundle:
    spec = type(digits8.spec)("image", digits8.spec.shape)  # no classes
    return DataBundle("flat", spec, Split(digits8.train.x), Split(digits8.test.x))


def test_auto_uses_the_classifier_on_labelled_data(digits8):
    ctx = context(digits8)
    space = feature_space(ctx)
    assert space is feature_space(ctx)  # memoised: metrics share one space
    assert space.name == "digits classifier" and space.dim == 128
    assert "test acc" in space.note and "n=180" in space.note
    x = to_model(digits8.test.x[:300])  # more than one internal batch
    f = space.features(x)
    assert f.shape == (180, 128) and f.dtype == torch.float32 and f.device.type == "cpu"
    assert space.logits(x).shape == (180, 10)
    assert space.features(x[:0]).shape == (0, 128)


def test_classifier_features_separate_the_classes(digits8):
    # Nearest training neighbour in feature space predicts the label of a held-out digit.
    space = feature_space(context(digits8, features="classifier"))
    train = space.features(to_model(digits8.train.x))
    test = space.features(to_model(digits8.test.x))
    nearest = torch.cdist(test, train).argmin(1)
    assert (digits8.train.y[nearest] == digits8.test.y).double().mean() > 0.9


def test_fallback_on_unlabelled_data_is_fixed_and_says_its_limits(unlabelled):
    space = feature_space(context(unlabelled))
    assert space.name == "random conv (fallback)" and FALLBACK_LIMITS in space.note
    assert space.logits(to_model(unlabelled.test.x[:4])) is None
    state = torch.random.get_rng_state()
    again = feature_space(context(unlabelled, features="random"))
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    x = to_model(unlabelled.test.x[:32])
    torch.testing.assert_close(space.features(x), again.features(x))
    f = space.features(x)
    assert f.shape == (32, space.dim) and f.std(0).mean() > 0  # images are told apart
    other = random_net(1, 8, seed=1)
    assert not torch.allclose(other.embed(x), f)


def test_inception_space_with_a_weights_file(digits8, tmp_path):
    path = tmp_path / "inception.pth"
    with torch.device("meta"):
        shapes = FIDInceptionV3().state_dict()
    # Every tensor a broadcast view of one number: the right shapes in a file of a few KB.
    torch.save({k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in shapes.items()}, path)
    space = feature_space(context(digits8, inception_weights=str(path)))  # auto picks it
    assert space.name == "inception-v3 pool3" and space.dim == 2048 and path.name in space.note
    x = to_model(digits8.test.x[:2])
    assert space.features(x).shape == (2, 2048) and space.logits(x).shape == (2, 1008)


def test_stacked_digits_space_reads_each_channel():
    data = load_data(DataConfig(name="stacked_digits", image_size=8, num_samples=200))
    space = feature_space(context(data))
    assert space.dim == 3 * 128 and "per-channel" in space.note
    x = to_model(data.test.x)
    logits = space.logits(x)
    assert logits.shape == (20, 1000)
    assert (logits.argmax(1) == data.test.y).double().mean() > 0.8


def test_bad_choices_are_one_line_errors(digits8, unlabelled, tmp_path):
    cases = [
        (digits8, {"features": "inception"}, "needs the FID Inception weights"),
        (unlabelled, {"features": "classifier"}, "needs labelled data"),
        (digits8, {"features": "vgg"}, "choose from auto, classifier, inception, random"),
        (load_data(DataConfig(name="ring8", num_samples=50)), {}, "need image data"),
    ]
    for bundle, options, fragment in cases:
        with pytest.raises(ConfigError, match=fragment) as err:
            feature_space(context(bundle, **options))
        assert "\n" not in str(err.value)
    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": torch.zeros(3)}, bad)
    with pytest.raises(CheckpointError, match="missing key"):
        feature_space(context(digits8, inception_weights=str(bad)))
    with pytest.raises(ConfigError, match=r"built for images \(1, 8, 8\)"):
        feature_space(context(digits8)).features(torch.zeros(2, 1, 16, 16))


def test_cli_errors_of_feature_options(cli, tmp_path):
    run = tmp_path / "vae"
    code, _, err = cli("train", "vae", "--preset", "tiny_vae", "--out", run)
    assert code == 0, err
    code, _, err = cli("eval", run, "--metrics", "fid", "--features", "inception")
    assert code == 2
    assert_one_line_error(err, "needs the FID Inception weights", "--inception-weights PATH")
    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": torch.zeros(3)}, bad)
    code, _, err = cli("eval", run, "--metrics", "fid", "--inception-weights", bad)
    assert code == 2
    assert_one_line_error(err, "is not the FID InceptionV3", "missing key")


def test_uint8_pixels_are_refused(digits8):
    space = feature_space(context(digits8, features="random"))
    with pytest.raises(TypeError, match="floats in"):
        space.features(digits8.test.x[:2])


def test_cli_classifier_on_unlabelled_images(cli, tmp_path):
    from PIL import Image

    folder = tmp_path / "flat"
    folder.mkdir()
    gen = torch.Generator().manual_seed(0)
    for i in range(20):
        pixels = torch.randint(0, 256, (16, 16), generator=gen, dtype=torch.uint8)
        Image.fromarray(pixels.numpy()).save(folder / f"{i}.png")
    run = tmp_path / "run"
    data = ["data.name=imagefolder", f"data.root={folder}", "data.image_size=16", "data.channels=1"]
    code, _, err = cli("train", "vae", *data, "--preset", "tiny_vae", "--out", run)
    assert code == 0, err
    code, _, err = cli("eval", run, "--metrics", "fid", "--features", "classifier")
    assert code == 2
    assert_one_line_error(err, "needs labelled data", "--features random")
