"""Domain classifiers: accuracy on held-out digits, the on-disk cache (hit, key), attribute
targets, determinism, and the errors of data without targets."""

from __future__ import annotations

import json
import time

import pytest
import torch

from genlab.core.config import DataConfig
from genlab.core.errors import ConfigError
from genlab.data import load_data
from genlab.data.base import DataBundle, Split
from genlab.data.pixels import to_model
from genlab.metrics.classifier import (
    ClassifierNet,
    Recipe,
    StackedClassifier,
    _shift,
    cache_dir,
    cache_key,
    combine_channels,
    domain_classifier,
    train_classifier,
)

FAST = Recipe(epochs=2)


@pytest.fixture(scope="module")
def digits8() -> DataBundle:
    return load_data(DataConfig(name="digits", image_size=8))


def test_digits_classifier_is_accurate_and_cached(digits8, classifier_cache):
    clf = domain_classifier(digits8, progress=False)
    assert clf.path.parent == cache_dir() and cache_dir().is_relative_to(classifier_cache)
    # 180 held-out digits; a chance-level classifier would score about 10 %.
    assert clf.n_test == len(digits8.test) == 180 and clf.accuracy >= 0.95
    pred = clf.predict(to_model(digits8.test.x))
    assert (pred == digits8.test.y).double().mean().item() == pytest.approx(clf.accuracy)
    meta = json.loads(clf.path.with_suffix(".json").read_text())
    assert meta["accuracy"] == clf.accuracy and meta["data"]["test"] == 180
    assert meta["recipe"]["epochs"] == Recipe().epochs

    start = time.perf_counter()
    again = domain_classifier(digits8, progress=False)
    assert time.perf_counter() - start < 1.0  # loaded, not trained
    assert again.train_seconds is None and again.path == clf.path
    assert again.accuracy == clf.accuracy
    x = to_model(digits8.test.x[:16])
    assert torch.equal(again.features(x), clf.features(x))
    assert clf.features(x).shape == (16, 128) and clf.logits(x).shape == (16, 10)


def test_cache_key_changes_with_recipe_and_data(digits8):
    key = cache_key(digits8, "labels", Recipe())
    assert key == cache_key(digits8, "labels", Recipe())
    assert key != cache_key(digits8, "labels", Recipe(epochs=3))
    assert key != cache_key(digits8, "labels", Recipe(seed=1))
    flipped = digits8.train.x.clone()
    flipped[0, 0, 0, 0] ^= 1  # one bit of one pixel
    other = DataBundle("digits", digits8.spec, Split(flipped, digits8.train.y), digits8.test)
    assert key != cache_key(other, "labels", Recipe())
    relabelled = Split(digits8.train.x, digits8.train.y.roll(1))
    assert key != cache_key(
        DataBundle("d", digits8.spec, relabelled, digits8.test), "labels", Recipe()
    )


def test_training_is_deterministic(digits8):
    a = train_classifier(digits8, "labels", FAST, progress=False)
    b = train_classifier(digits8, "labels", FAST, progress=False)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    c = train_classifier(digits8, "labels", Recipe(epochs=2, seed=1), progress=False)
    assert not torch.equal(sa["head.weight"], c.state_dict()["head.weight"])


def test_attribute_classifier_beats_the_majority_guess():
    shapes = load_data(DataConfig(name="shapes", num_samples=600))
    clf = domain_classifier(shapes, "attrs", Recipe(epochs=3), progress=False)
    assert clf.names == shapes.spec.attr_names and len(clf.per_output) == len(clf.names)
    pred = clf.predict(to_model(shapes.test.x))
    assert pred.dtype == torch.bool and pred.shape == shapes.test.attrs.shape
    share = shapes.test.attrs.double().mean(0)
    majority = torch.maximum(share, 1 - share).mean().item()  # always answering the common value
    assert clf.accuracy > majority + 0.1
    assert clf.accuracy == pytest.approx(sum(clf.per_output) / len(clf.per_output))


def test_errors_of_data_without_targets(digits8):
    unlabelled = DataBundle("flat", digits8.spec, Split(digits8.train.x), Split(digits8.test.x))
    with pytest.raises(ConfigError, match="no class labels"):
        domain_classifier(unlabelled, progress=False)
    with pytest.raises(ConfigError, match="no binary attributes"):
        domain_classifier(digits8, "attrs", progress=False)
    with pytest.raises(ConfigError, match="choose from labels, attrs"):
        domain_classifier(digits8, "colour", progress=False)
    ring = load_data(DataConfig(name="ring8", num_samples=50))
    with pytest.raises(ConfigError, match="needs image data"):
        domain_classifier(ring, progress=False)


def test_shift_translates_each_image_by_at_most_one_pixel():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 2, 6, 6) * 2 - 1
    out = _shift(x, 1, gen)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), value=-1.0)
    seen = set()
    for i in range(len(x)):  # brute force: the output is one of the 9 translations
        hits = [
            (dy, dx)
            for dy in range(3)
            for dx in range(3)
            if torch.equal(out[i], padded[i, :, dy : dy + 6, dx : dx + 6])
        ]
        assert hits, f"image {i} is not a translation of its input"
        seen.update(hits)
    assert len(seen) == 9  # every offset is drawn
    assert torch.equal(_shift(x, 0, gen), x)


def test_combine_channels_matches_the_product_of_probabilities():
    gen = torch.Generator().manual_seed(0)
    lps = [torch.randn(5, 4, generator=gen).log_softmax(1) for _ in range(3)]
    joint = combine_channels(lps)  # (5, 64)
    for a, b, c in [(0, 0, 0), (3, 1, 2), (1, 3, 0)]:
        want = lps[0][:, a].exp() * lps[1][:, b].exp() * lps[2][:, c].exp()
        torch.testing.assert_close(joint[:, 16 * a + 4 * b + c].exp(), want)
    torch.testing.assert_close(joint.exp().sum(1), torch.ones(5))


@pytest.mark.parametrize("size", [4, 8, 16, 28, 32, 64])
def test_network_takes_every_image_size(size):
    net = ClassifierNet(3, size, outputs=7)
    x = torch.zeros(2, 3, size, size)
    assert net(x).shape == (2, 7) and net.embed(x).shape == (2, net.feature_dim)


def test_loading_leaves_the_callers_random_stream_alone(digits8):
    # Quality evaluation during training must not change the training trajectory.
    domain_classifier(digits8, progress=False)  # trained (or cached) before the check
    state = torch.random.get_rng_state()
    stacked = {"data": {"name": "digits", "image_size": 8}, "channels": 3}
    clf = StackedClassifier.build(stacked, Recipe(), progress=False)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert clf.base.path == domain_classifier(digits8, progress=False).path
