"""``genlab eval``: the likelihood metrics on a tiny VAE, the table, JSON, the eval record, and
one-line errors for metrics that do not apply."""

from __future__ import annotations

import json

import pytest
import torch

import genlab
from genlab.api import eval_context, evaluate
from genlab.core.errors import ConfigError
from genlab.data import load_data
from genlab.data.pixels import to_model, to_unit
from genlab.metrics import MetricResult, format_table, parse_metrics
from helpers import assert_one_line_error


def results_by_name(out: str) -> dict[str, dict]:
    return {r["name"]: r for r in json.loads(out)["results"]}


def test_eval_json_elbo_nll_recon(cli, run_copy):
    run = run_copy("vae")
    code, out, err = cli("eval", run, "--metrics", "elbo,nll,recon", "--k", 20, "--n", 24, "--json")
    assert code == 0, err
    got = results_by_name(out)
    assert set(got) == {"elbo", "nll", "recon"}
    assert all(r["n"] == 24 for r in got.values())
    # The IWAE bound with the same samples is above their mean: -nll >= elbo.
    assert -got["nll"]["value"] >= got["elbo"]["value"] - 1e-9
    assert got["elbo"]["stderr"] > 0 and "k=20" in got["nll"]["note"]
    record = json.loads((run / "eval.json").read_text())
    assert record[-1]["step"] == 4 and len(record[-1]["results"]) == 3


def test_recon_matches_a_direct_computation(run_copy):
    run = run_copy("vae")
    (result,) = evaluate(run, "recon", n=10, progress=False, record=False)
    model = genlab.load(run)
    data = load_data(genlab.load_config(run).data)
    x = to_model(data.test.x[:10])
    expected = (to_unit(model.reconstruct(x)) - to_unit(x)).pow(2).mean().item()
    assert result.value == pytest.approx(expected, rel=1e-5) and result.n == 10


def test_iwae_with_one_sample_is_the_elbo(run_copy):
    # L_1 = E[w]: with k = 1 both metrics read the same single weight per image.
    run = run_copy("vae")
    elbo, nll = evaluate(run, "elbo,nll", n=16, options={"k": 1}, progress=False, record=False)
    assert -nll.value == pytest.approx(elbo.value, rel=1e-12)
    assert nll.stderr == pytest.approx(elbo.stderr, rel=1e-9)


def test_eval_table_for_people(cli, trained_runs):
    code, out, err = cli("eval", trained_runs["vae"], "--metrics", "recon", "--n", 8)
    assert code == 0, err
    header, row = out.strip().splitlines()
    assert header.split()[:3] == ["metric", "system", "value"]
    assert row.startswith("recon") and "mse/pixel" in row


def test_format_table_aligns_columns():
    table = format_table(
        [MetricResult("elbo", -12.5, 0.25, "nats/image", 10, "k=5"), MetricResult("x", 1.0)]
    )
    lines = table.splitlines()
    assert len(lines) == 3 and "-12.5 ± 0.25" in lines[1]
    assert lines[1].index("nats/image") == lines[0].index("unit")


def test_a_spread_is_shown_as_sd_not_as_a_standard_error():
    table = format_table([MetricResult("kid", 0.0123, None, "", 100, "", spread=0.0045)])
    assert "0.0123 (sd 0.0045)" in table and "±" not in table.splitlines()[1]
    assert MetricResult("is", 2.0, spread=0.1).to_dict()["spread"] == 0.1


def test_parse_metrics():
    assert parse_metrics("elbo, nll") == [("elbo", "elbo", None), ("nll", "nll", None)]


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["--metrics", "fid2"], ["unknown metric 'fid2'", "elbo"]),
        (["--metrics", "elbo@3"], ["takes no @ parameter"]),
        (["--metrics", ","], ["no metric named"]),
        (["--metrics", "nll", "--k", "0"], ["--k 0"]),
        (["--metrics", "recon", "--n", "0"], ["--n 0"]),
        (["--metrics", "recon", "--split", "val"], ["--split 'val'"]),
    ],
)
def test_eval_bad_arguments(cli, trained_runs, argv, fragments):
    code, _, err = cli("eval", trained_runs["vae"], *argv)
    assert code == 2
    assert_one_line_error(err, *fragments)


@pytest.mark.parametrize("metric", ["elbo", "nll", "recon"])
def test_likelihood_metrics_need_an_encoder_model(cli, trained_runs, metric):
    code, _, err = cli("eval", trained_runs["dcgan"], "--metrics", metric)
    assert code == 2
    assert_one_line_error(err, f"metric {metric!r} needs", "'dcgan'")


def test_eval_missing_run(cli, tmp_path):
    code, _, err = cli("eval", tmp_path / "nope", "--metrics", "recon")
    assert code == 2
    assert_one_line_error(err)


def test_generator_is_seeded_per_context(run_copy):
    run = run_copy("vae")
    a = evaluate(run, "elbo", n=8, options={"k": 3}, seed=1, progress=False, record=False)
    b = evaluate(run, "elbo", n=8, options={"k": 3}, seed=1, progress=False, record=False)
    c = evaluate(run, "elbo", n=8, options={"k": 3}, seed=2, progress=False, record=False)
    assert a[0].value == b[0].value != c[0].value
    assert torch.isfinite(torch.tensor(a[0].value))


def test_eval_context_loads_the_newest_checkpoint(trained_runs, tmp_path):
    run = trained_runs["vae"]
    ctx = eval_context(run, n=5, seed=3, split="train", options={"k": 2}, progress=False)
    assert (ctx.step, ctx.n, ctx.seed, ctx.split) == (4, 5, 3, "train")  # tiny presets: 4 steps
    assert ctx.options == {"k": 2} and not ctx.model.training
    assert len(ctx.eval_split()) == 5
    with pytest.raises(ConfigError, match=r"--inception-weights .*: no such file"):
        eval_context(run, options={"inception_weights": str(tmp_path / "none.pth")})
    with pytest.raises(ConfigError, match="--split 'val'"):
        eval_context(run, split="val")
