"""gsgan: the annealed temperature, what the discriminator reads, sampling as a categorical
draw, the sequence metrics and their reference rows, and the one-line errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.stats
import torch

from genlab.core.config import build_config
from genlab.core.errors import ConfigError
from genlab.data import load_data
from genlab.data.sequences import VOCAB, encode
from genlab.models import build_model
from genlab.models.gsgan import gumbel_from_normal
from genlab.training.batches import BatchStream
from helpers import assert_one_line_error, step_batch


def tiny(**overrides):
    cfg = build_config("gsgan", preset="tiny_gsgan", overrides=overrides)
    data = load_data(cfg.data)
    torch.manual_seed(0)
    return cfg, data, build_model(cfg.model, data.spec)


def batch(data, n=8):
    return next(BatchStream(data.train, n, 0, torch.device("cpu")))


def test_temperature_follows_the_annealing_schedule():
    cfg, data, model = tiny(**{"model.anneal_rate": 1e-3, "model.tau0": 2.0, "model.tau_min": 0.5})
    opts = model.configure_optimizers(cfg.train)
    # tau = max(0.5, 2 exp(-0.001 step)): 2, 2 e^-0.5, and the floor from step 1386 on.
    for step, expected in ((0, 2.0), (500, 2 * math.exp(-0.5)), (1000, 2 * math.exp(-1.0))):
        out = model.train_step(step_batch(model, data.train, step), opts, step)
        assert math.isclose(float(out["tau"]), expected, rel_tol=1e-6)
        assert math.isclose(model.generator[-1].tau, expected, rel_tol=1e-6)
    assert float(model.train_step(step_batch(model, data.train, 5000), opts, 5000)["tau"]) == 0.5


@pytest.mark.parametrize("hard", [False, True])
def test_discriminator_reads_one_hots_and_relaxed_fakes(hard):
    cfg, data, model = tiny(**{"model.straight_through": hard})
    seen = []
    model.discriminator.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    model.train_step(step_batch(model, data.train), model.configure_optimizers(cfg.train), 0)
    real, fake = seen[0], seen[1]  # the first critic step sees the first real batch, then fakes
    v = len(VOCAB)
    assert real.shape == fake.shape == (8, 16, v)
    assert torch.equal(real, torch.nn.functional.one_hot(batch(data)["x"], v).float())
    assert torch.allclose(fake.sum(-1), torch.ones(8, 16))
    is_one_hot = ((fake == 0) | (fake == 1)).all()
    assert bool(is_one_hot) == hard  # relaxed points of the simplex unless straight-through


def test_gumbel_from_normal_is_the_probability_integral_transform():
    u = torch.linspace(-6, 6, 101)
    expected = scipy.stats.gumbel_r.ppf(scipy.stats.norm.cdf(u.double().numpy()))
    np.testing.assert_allclose(gumbel_from_normal(u).double().numpy(), expected, rtol=1e-5)
    assert torch.isfinite(gumbel_from_normal(torch.tensor([-40.0, 40.0]))).all()


def test_samples_are_categorical_draws_of_the_logits():
    _, _, model = tiny()
    model.eval()
    width, n = model.cfg.latent_dim, 20000
    assert model.latent_dim == width + 16 * len(VOCAB)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(1, width, generator=g).expand(n, -1)  # one z, fresh noise for each draw
    latents = torch.cat([z, torch.randn(n, model.latent_dim - width, generator=g)], 1)
    with torch.no_grad():
        probs = model.logits(z[:1])[0].softmax(-1)  # (L, V)
        tokens = model.generate(latents)
        modes = model.generate(torch.cat([z[:1], torch.zeros(1, model.latent_dim - width)], 1))
    assert tokens.dtype == torch.int64 and tokens.shape == (n, 16)
    freq = torch.stack([torch.bincount(tokens[:, t], minlength=len(VOCAB)) for t in range(16)])
    # Standard error of a frequency of 20,000 draws is at most 0.0036.
    assert torch.allclose(freq.double() / n, probs.double(), atol=0.02)
    assert probs.max() < 0.9  # an argmax would fail the check above
    assert torch.equal(modes[0], probs.argmax(-1))  # zero noise: each position's mode
    with pytest.raises(ConfigError, match="gsgan latents are"):
        model.generate(z[:2])  # z without the noise


def test_one_hot_rejects_floats():
    _, _, model = tiny()
    with pytest.raises(ConfigError, match="token ids"):
        model.one_hot(torch.zeros(2, 16))
    assert model.one_hot(encode("3 + 4")[None]).shape == (1, 16, len(VOCAB))


@pytest.fixture(scope="module")
def gsgan_run(tmp_path_factory):
    """A tiny trained run with train.eval_every (the dataset's default metrics)."""
    from genlab.cli.main import main

    out = tmp_path_factory.mktemp("gsgan") / "run"
    argv = ["train", "gsgan", "--preset", "tiny_gsgan", "--out", str(out), "train.eval_every=2"]
    assert main(argv) == 0
    return out


def test_training_logs_the_sequence_metrics_and_writes_text_samples(gsgan_run):
    lines = [json.loads(x) for x in (gsgan_run / "metrics.jsonl").read_text().splitlines()]
    last = lines[-1]
    assert last["step"] == 4 and 0 <= last["eval/valid"] <= 100
    assert last["eval/real/valid"] == 100.0 and "eval/unigram/ngram3" in last
    assert (gsgan_run / "samples" / "step_4.png").stat().st_size > 1000


def test_eval_reports_model_and_reference_rows(cli, gsgan_run):
    code, out, err = cli("eval", gsgan_run, "--metrics", "valid,ngram", "--json")
    assert code == 0, err
    rows = {(r["system"], r["name"]): r for r in json.loads(out)["results"]}
    systems = {"model", "real", "positional", "unigram"}
    names = {"valid", "unique", "ngram1", "ngram2", "ngram3"}
    assert set(rows) == {(s, n) for s in systems for n in names}
    assert rows["real", "valid"]["value"] == 100.0
    assert rows["unigram", "valid"]["value"] < 5
    for n in ("ngram1", "ngram2", "ngram3"):
        floor, bad = rows["real", n]["value"], rows["unigram", n]["value"]
        assert 0 <= floor < bad <= 1
    assert rows["positional", "ngram1"]["value"] < rows["unigram", "ngram1"]["value"]
    assert rows["model", "valid"]["n"] == 26  # the test split of 256 x 0.1


def test_sample_cli_writes_a_png(cli, gsgan_run, tmp_path):
    code, _, err = cli("sample", gsgan_run, "-n", "40", "--out", tmp_path / "s.png")
    assert code == 0, err
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sequence_metrics_need_a_sequence_run(cli, tmp_path):
    run = tmp_path / "gan"
    assert cli("train", "gan", "--preset", "tiny_gan", "--out", run)[0] == 0
    code, _, err = cli("eval", run, "--metrics", "valid")
    assert code == 2
    assert_one_line_error(err, "metric 'valid' needs a model of token sequences")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("gsgan", "--data", "ring8"), "model 'gsgan' needs token sequences; use --data sequences"),
        (("vae", "--data", "sequences"), "model 'vae' needs image data"),
        (("dcgan", "--data", "sequences"), "model 'dcgan' reads image or points data"),
        (("gsgan", "--data", "sequences", "model.arch=conv"), "model.arch"),
    ],
)
def test_wrong_data_is_one_line(cli, tmp_path, argv, fragment):
    code, _, err = cli("train", *argv, "data.num_samples=300", "--out", tmp_path / "r")
    assert code == 2
    assert_one_line_error(err, fragment)
