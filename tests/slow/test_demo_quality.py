"""Slow quality check of the demo runs (``make bench``, not CI): do the samples look like
digits? Measured, not eyeballed: the ``confident`` metric reads 1,000 samples with the
mnist_small classifier (trained on the real train split) beside the 1,000 real test images."""

import pytest

import genlab


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vae", "dcgan"])
def test_demo_samples_read_as_digits(name, tmp_path):
    run = genlab.train(
        name, preset=f"demo_{name}", out=tmp_path / name, overrides=["train.progress=false"]
    )
    rows = genlab.evaluate(run, "confident", n=1000, progress=False, record=False)
    got = {(r.system, r.name): r for r in rows}
    model, real = got[("model", "confident")], got[("data", "confident")]
    print(f"{name}: confident {model.value:.1f} % (real {real.value:.1f} %); {model.note}")
    assert real.value >= 90
    assert model.value >= 0.5 * real.value
    assert got[("model", "classes")].value == 10 and got[("model", "class_kl")].value < 0.2
