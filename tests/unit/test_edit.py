"""genlab.tools.edit: the target logit, the sphere step, the scores (by hand) and the edit loop on a
toy generator and classifier whose logit is known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genlab.core.errors import ConfigError
from genlab.data.base import DataSpec
from genlab.tools.edit import (
    Target,
    before_after_rows,
    complements,
    edit_latents,
    edit_samples,
    edit_scores,
    foreground_centre,
    resolve_target,
    tangent_step,
    target_logit,
)

SHAPES = DataSpec("image", (1, 8, 8), 2, ("a", "b"), attr_names=("small", "large", "left"))
DIGITS = DataSpec("image", (1, 8, 8), 3, ("zero", "one", "two"))


def test_class_logit_is_the_binary_log_odds_of_the_softmax():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]], dtype=torch.float64)
    p = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(1, keepdims=True)
    for k in range(3):
        want = np.log(p[:, k] / (1 - p[:, k]))
        np.testing.assert_allclose(target_logit(logits, k, True).numpy(), want, rtol=1e-12)
    np.testing.assert_array_equal(target_logit(logits, 1, False).numpy(), [-1.0, 3.0])


def test_resolve_target_attributes_classes_and_errors():
    assert resolve_target(SHAPES, "large") == Target("large", 1, False, SHAPES.attr_names)
    assert resolve_target(DIGITS, "two").index == 2
    assert resolve_target(DIGITS, "1") == Target("one", 1, True, DIGITS.class_names)
    with pytest.raises(ConfigError, match="small, large, left") as err:
        resolve_target(SHAPES, "a")  # a class name, but the data has attributes: they are used
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"index 0\.\.2 or a name: zero, one, two"):
        resolve_target(DIGITS, "3")
    with pytest.raises(ConfigError, match="neither"):
        resolve_target(DataSpec("image", (1, 8, 8)), "x")


def test_complements_are_columns_that_negate_the_target_in_every_row():
    attrs = torch.tensor([[1, 0, 1, 0], [0, 1, 1, 1], [1, 0, 0, 1]], dtype=torch.bool)
    assert complements(attrs, 0) == [1]
    assert complements(attrs, 1) == [0]
    assert complements(attrs, 3) == []  # negates column 0 in two rows only
    assert complements(attrs, 2) == []  # column 3 negates column 2 in two rows of three
    assert complements(None, 0) == []


def test_tangent_step_by_hand():
    z = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    grad = torch.tensor([[5.0, 7.0], [0.0, -4.0]])  # row 2: purely radial, no tangent part
    out = tangent_step(z, grad, z.norm(dim=1), 0.5)
    # Row 1: the tangent direction is (0, 1); (2, 0.5) pulled back to radius 2.
    want = torch.tensor([2.0, 0.5]) * 2 / math.hypot(2.0, 0.5)
    torch.testing.assert_close(out[0], want)
    torch.testing.assert_close(out[1], z[1])


def test_edit_scores_by_hand():
    t = Target("large", 1, False, ("small", "large", "left"))
    before = torch.tensor([[2.0, -2.0, 1.0], [-1.0, 1.0, -1.0]])
    after = torch.tensor([[-2.0, 2.0, -1.0], [-1.0, 3.0, -1.0]])
    s = edit_scores(before, after, t, amount=3.0, ignore=[0])
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert s.success == 1.0 and s.success_before == 0.5 and s.converted == 1.0
    assert s.prob_change == pytest.approx(((sig(2) - sig(-2)) + (sig(3) - sig(1))) / 2)
    assert s.logit_change == pytest.approx(3.0)
    # Others: "left" only ("small" is ignored): |change| sig(1) - sig(-1) and 0; one flip of two.
    assert s.other_change == pytest.approx((sig(1) - sig(-1)) / 2)
    assert s.other_flips == 0.5
    assert s.others == {"left": pytest.approx(-(sig(1) - sig(-1)) / 2)} and s.left_out == ("small",)
    lowered = edit_scores(before, after, t, amount=-3.0)
    assert lowered.success == 0.0 and lowered.success_before == 0.5 and lowered.converted == 0.0


def toy(w: torch.Tensor):
    """Identity generator and a linear attribute classifier: logits = z W (logit known)."""
    return (lambda z: z), (lambda x: x @ w)


@pytest.mark.parametrize("amount", [2.0, -1.5])
def test_edit_reaches_the_logit_change_on_the_sphere_and_stops(amount):
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(6, 3, generator=gen)
    z0 = torch.randn(32, 6, generator=gen)
    t = Target("a", 0, False, ("a", "b", "c"))
    z = edit_latents(*toy(w), z0, t, amount, steps=400, step_size=0.02)
    change = (z - z0) @ w[:, 0]
    torch.testing.assert_close(z.norm(dim=1), z0.norm(dim=1))  # the prior density is kept
    # Reached where the sphere allows it: the largest logit on the sphere is |z| |w|.
    best = z0.norm(dim=1) * w[:, 0].norm()
    start = z0 @ w[:, 0]
    reachable = (start + amount).abs() < best - 0.05
    assert reachable.sum() > 20
    got = change[reachable] * math.copysign(1, amount)
    assert (got >= abs(amount)).all()
    assert (got <= abs(amount) + 0.02 * w[:, 0].norm() + 1e-5).all()  # one step past at most


def test_edit_of_a_class_follows_the_log_odds():
    w = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    z0 = torch.randn(8, 4, generator=torch.Generator().manual_seed(2)) * 2
    t = Target("one", 1, True, ("zero", "one", "two"))
    gen, clf = toy(w)
    z = edit_latents(gen, clf, z0, t, 1.0, steps=300, step_size=0.01)
    change = target_logit(clf(z), 1, True) - target_logit(clf(z0), 1, True)
    assert (change >= 1.0).float().mean() >= 0.75
    assert (change < 1.2).all()


def test_non_differentiable_generator_is_a_one_line_error():
    w = torch.randn(4, 2)
    t = Target("a", 0, False, ("a", "b"))
    argmax = lambda z: torch.nn.functional.one_hot(z.argmax(1), 4).float()  # noqa: E731
    with pytest.raises(ConfigError, match="not differentiable"):
        edit_latents(argmax, lambda x: x @ w, torch.randn(3, 4), t, 50.0, steps=2)


class FixedLabelModel(torch.nn.Module):
    """A conditional toy generator that records the labels of every call."""

    latent_dim = 4

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)
        self.seen: list[torch.Tensor] = []

    def generate(self, z, labels=None):
        self.seen.append(labels)
        return self.lin(z) + labels[:, None].float()


class LinearClassifier:
    def __init__(self, w):
        self.model = torch.nn.Linear(4, 2, bias=False)
        self.model.weight.data = w

    def to(self, device):
        return self

    def classify(self, x):
        return self.model(x)


def test_edit_samples_keeps_labels_and_freezes_the_networks():
    model = FixedLabelModel()
    clf = LinearClassifier(torch.randn(2, 4, generator=torch.Generator().manual_seed(3)))
    labels = torch.tensor([0, 1, 2])
    t = Target("a", 0, False, ("a", "b"))
    judge = LinearClassifier(torch.randn(2, 4, generator=torch.Generator().manual_seed(4)))
    z0 = torch.randn(3, 4, generator=torch.Generator().manual_seed(5))
    result = edit_samples(model, clf, t, 1.0, z0, labels, steps=5, judge=judge)
    assert len(model.seen) >= 3 and all(s is labels for s in model.seen)
    # The judge scores the same images with its own weights.
    with torch.no_grad():
        want = judge.classify(result.after)[:, 0] - judge.classify(result.before)[:, 0]
    assert result.judge.logit_change == pytest.approx(want.mean().item(), abs=1e-6)
    assert result.judge.logit_change != pytest.approx(result.scores.logit_change)
    assert all(p.grad is None for p in [*model.parameters(), *clf.model.parameters()])
    assert result.before.shape == result.after.shape == (3, 4) and result.distance.shape == (3,)


def test_before_after_rows_interleave_groups():
    before, after = torch.arange(1, 11).float(), -torch.arange(1, 11).float()
    rows = before_after_rows(before, after, columns=4, fill=0.0)  # the last group padded
    assert rows.tolist() == [
        *[1, 2, 3, 4], *[-1, -2, -3, -4], *[5, 6, 7, 8], *[-5, -6, -7, -8],
        *[9, 10, 0, 0], *[-9, -10, 0, 0],
    ]  # fmt: skip
    assert before_after_rows(before[:3], after[:3], 8).tolist() == [1, 2, 3, -1, -2, -3]


def test_foreground_centre_by_hand():
    images = -torch.ones(2, 1, 4, 4)
    images[0, 0, 1, 0] = images[0, 0, 3, 2] = 1.0  # pixels (row 1, col 0) and (row 3, col 2)
    centre = foreground_centre(images)
    # Pixel centres: columns 0.5/4 and 2.5/4 -> 0.375; rows 1.5/4 and 3.5/4 -> 0.625.
    torch.testing.assert_close(centre[0], torch.tensor([0.375, 0.625]))
    assert centre[1].isnan().all()  # nothing lit
