"""Mode coverage (VEEGAN/PacGAN protocol) against a brute-force count and a closed form, and
quality evaluation during training (``train.eval_every``)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from genlab.core.config import build_config
from genlab.core.errors import ConfigError
from genlab.data.mixtures import grid_centres, ring_centres, sample_mixture
from genlab.metrics.modes import mode_coverage
from genlab.training.trainer import Trainer
from helpers import assert_one_line_error


def brute_force(samples, centres, sigma):
    """The protocol written out with Python loops."""
    hits = [0] * len(centres)
    hq = 0
    for p in samples.tolist():
        d = [math.dist(p, c) for c in centres.tolist()]
        j = min(range(len(d)), key=d.__getitem__)
        if d[j] <= 3 * sigma:
            hq += 1
            hits[j] += 1
    total = sum(hits)
    kl = sum(h / total * math.log(h / total * len(hits)) for h in hits if h) if total else math.nan
    return {"modes": sum(h > 0 for h in hits), "hq": hq / len(samples), "kl": kl}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force(seed):
    gen = torch.Generator().manual_seed(seed)
    centres = grid_centres()
    # A mixture of near-mode points, a few modes left out, and uniform junk.
    near, _ = sample_mixture(centres[: 20 - 3 * seed], 0.05, 300, gen)
    junk = torch.rand(100, 2, generator=gen) * 10 - 5
    samples = torch.cat([near, junk])
    got, want = mode_coverage(samples, centres, 0.05), brute_force(samples, centres, 0.05)
    assert got["modes"] == want["modes"] and got["hq"] == pytest.approx(want["hq"])
    assert got["kl"] == pytest.approx(want["kl"], rel=1e-9)


def test_extreme_cases():
    centres = ring_centres()
    perfect = mode_coverage(centres.repeat(3, 1), centres, 0.02)
    assert perfect == {"modes": 8.0, "hq": 1.0, "kl": pytest.approx(0.0, abs=1e-12)}
    collapsed = mode_coverage(centres[:1].repeat(50, 1), centres, 0.02)
    assert collapsed["modes"] == 1 and collapsed["kl"] == pytest.approx(math.log(8))
    nothing = mode_coverage(torch.full((10, 2), 9.0), centres, 0.02)
    assert nothing["modes"] == 0 and nothing["hq"] == 0 and math.isnan(nothing["kl"])


def test_true_samples_meet_the_closed_form_hq_rate():
    # For an isotropic 2-D Gaussian, P(|x - mu| <= 3 sigma) = 1 - exp(-9/2) (Rayleigh).
    gen = torch.Generator().manual_seed(0)
    samples, _ = sample_mixture(ring_centres(), 0.02, 20_000, gen)
    got = mode_coverage(samples, ring_centres(), 0.02)
    expected = 1 - math.exp(-4.5)
    se = math.sqrt(expected * (1 - expected) / 20_000)
    assert got["modes"] == 8 and abs(got["hq"] - expected) < 4 * se
    assert got["kl"] < 0.01


def _train(tmp_path, name, **overrides):
    cfg = build_config("gan", preset="tiny_gan", overrides=overrides)
    return Trainer(cfg, tmp_path / name).fit()


def test_eval_every_logs_mode_coverage_and_leaves_training_unchanged(tmp_path):
    plain = _train(tmp_path, "plain")
    run = _train(tmp_path, "eval", **{"train.eval_every": 2, "train.log_every": 3})
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = {r["step"]: r for r in rows if "eval/modes" in r}
    assert sorted(evals) == [2, 4]
    assert 0 <= evals[4]["eval/modes"] <= 8 and 0 <= evals[4]["eval/hq"] <= 100
    # Evaluation draws from its own generator: the weights match a run without it.
    a = load_file(plain / "checkpoints" / "step_4" / "model.safetensors")
    b = load_file(run / "checkpoints" / "step_4" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_eval_every_with_named_metrics(tmp_path):
    cfg = build_config(
        "vae",
        preset="tiny_vae",
        overrides={"train.eval_every": 4, "train.eval_metrics": "recon,elbo"},
    )
    run = Trainer(cfg, tmp_path / "vae").fit()
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 4 and last["eval/recon"] > 0 and last["eval/elbo"] < 0


def test_eval_every_on_images_needs_metrics(tmp_path):
    cfg = build_config("vae", preset="tiny_vae", overrides={"train.eval_every": 2})
    with pytest.raises(ConfigError, match=r"train\.eval_every needs train\.eval_metrics"):
        Trainer(cfg, tmp_path / "r")


def test_cli_modes_metric(cli, tmp_path):
    run = _train(tmp_path, "gan")
    code, out, err = cli("eval", run, "--metrics", "modes", "--n", 500, "--json")
    assert code == 0, err
    names = [r["name"] for r in json.loads(out)["results"]]
    assert names == ["modes", "hq", "mode_kl"]
    code, _, err = cli("train", "vae", "--preset", "tiny_vae", "--out", tmp_path / "v")
    assert code == 0, err
    code, _, err = cli("eval", tmp_path / "v", "--metrics", "modes")
    assert code == 2
    assert_one_line_error(err, "metric 'modes' needs data with known mode centres")
