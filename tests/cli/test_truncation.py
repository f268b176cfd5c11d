"""``genlab truncation``: the sweep's rows agree with ``genlab eval`` where they must, use the
same noise at every bound, write a plot, and bad input is one line with exit status 2."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from genlab.api import evaluate
from genlab.core.errors import ConfigError
from genlab.tools.truncation import text, truncation
from helpers import assert_one_line_error


def sweep(cli, run, tmp_path, *argv):
    code, out, err = cli(
        "truncation", run, "--n", 16, "--features", "random", "--out", tmp_path / "t.png", *argv
    )
    assert code == 0, err
    return out


def test_sweep_rows_plot_and_agreement_with_eval(cli, trained_runs, tmp_path):
    run = trained_runs["dcgan"]
    doc = json.loads(sweep(cli, run, tmp_path, "--values", "0.5,100,none", "--json"))
    rows = {str(r["truncation"]): r for r in doc["rows"]}
    assert list(rows) == ["0.5", "100.0", "None"] and doc["n"] == doc["n_real"] == 16
    assert all(0 <= r[k] <= 1 for r in rows.values() for k in ("precision", "recall"))
    # A bound no normal draw reaches changes nothing: the same noise, the same samples.
    assert rows["100.0"] == {**rows["None"], "truncation": 100.0}
    assert rows["0.5"]["fid"] != rows["None"]["fid"]
    # Untruncated rows are what `genlab eval` reports with the same seed and n.
    got = {
        (r.name, r.system): r.value
        for r in evaluate(
            run, "fid,prdc", n=16, options={"features": "random"}, progress=False, record=False
        )
    }
    for key in ("precision", "recall", "density", "coverage", "fid"):
        assert rows["None"][key] == pytest.approx(got[key, "model"], rel=1e-9)
        assert doc["data"][key] == pytest.approx(got[key, "data"], rel=1e-9)
    assert doc["data"]["against"] == "train" and "random conv" in doc["features"]
    with Image.open(doc["plot"]) as image:
        assert image.format == "PNG" and image.width >= 400


def test_sweep_table_for_people(cli, trained_runs, tmp_path):
    out = sweep(cli, trained_runs["dcgan"], tmp_path, "--values", "1,none")
    lines = out.strip().splitlines()
    assert lines[0].startswith("16 samples per bound vs 16 test images, seed 0")
    assert lines[1].split() == ["truncation", "precision", "recall", "density", "coverage", "fid"]
    assert [line.split()[0] for line in lines[2:5]] == ["1", "none", "data:train"]
    assert lines[-1] == str(tmp_path / "t.png") and (tmp_path / "t.png").is_file()


@pytest.mark.parametrize(
    "model, argv, fragments",
    [
        ("dcgan", ["--values", "0,none"], ["--values: '0' is not a truncation bound"]),
        ("dcgan", ["--values", "half"], ["'half' is not a truncation bound"]),
        ("dcgan", ["--inception-weights", "nowhere.pth"], ["no such file"]),
        ("dcgan", ["--n", 4], ["needs at least 6 real"]),
        ("gan", [], ["genlab truncation needs image data", "ring8"]),
    ],
)
def test_one_line_errors(cli, trained_runs, tmp_path, model, argv, fragments):
    code, out, err = cli("truncation", trained_runs[model], "--out", tmp_path / "t.png", *argv)
    assert code == 2 and out == ""
    assert_one_line_error(err, *fragments)
    assert not (tmp_path / "t.png").exists()


def test_truncation_from_python(trained_runs, tmp_path):
    run, out = trained_runs["dcgan"], tmp_path / "py.png"
    doc = truncation(run, [0.5, None], n=16, features="random", out=out, progress=False)
    assert [r["truncation"] for r in doc["rows"]] == [0.5, None] and doc["plot"] == str(out)
    assert out.is_file() and doc["n"] == doc["n_real"] == 16 and doc["data"]["against"] == "train"
    # A list of bounds and the CLI's text give the same sweep; text() is what the CLI prints.
    again = truncation(run, "0.5,none", n=16, features="random", out=out, progress=False)
    assert again == doc
    lines = text(doc, "test").splitlines()
    assert lines[0].startswith("16 samples per bound vs 16 test images, seed 0; ")
    assert [line.split()[0] for line in lines[2:5]] == ["0.5", "none", "data:train"]
    with pytest.raises(ConfigError, match="not a truncation bound"):
        truncation(run, [0.5, 0.0], n=16)
