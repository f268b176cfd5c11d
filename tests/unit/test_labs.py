"""Every registered lab runs in --quick from the command line with each check holding, and
writes its figure and result.json; the lab runner's own behaviour (parameters, exit statuses,
``all``)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from genlab.cli.main import main
from genlab.tools.labs import LABS, LabOutput, close
from genlab.tools.labs.base import LabSpec
from helpers import assert_one_line_error


@pytest.mark.parametrize("name", LABS.names())
def test_lab_quick_run_holds_and_writes_its_files(cli, tmp_path, name):
    code, out, err = cli("lab", name, "--quick", "--out", tmp_path)
    result = json.loads((tmp_path / "result.json").read_text())
    failing = [c for c in result["checks"] if not c["ok"]]
    assert code == 0 and not failing, f"{out}\n{err}\nfailing: {failing}"
    assert result["lab"] == name and result["claim"] == LABS.get(name).claim and result["quick"]
    assert result["checks"] and set(result["checks"][0]) >= {
        "name", "value", "reference", "tolerance", "ok"
    }  # fmt: skip
    with Image.open(tmp_path / f"{name}.png") as img:
        assert img.size[0] > 300 and img.size[1] > 200
    assert name in out and "ok" in out


def test_lab_list_names_every_lab_and_its_claim(cli):
    code, out, _ = cli("lab", "list")
    assert code == 0
    for name in LABS.names():
        assert name in out and LABS.get(name).claim[:40] in out


def test_unknown_lab_and_bad_parameters_are_one_line(cli, tmp_path):
    code, _, err = cli("lab", "nope", "--out", tmp_path)
    assert code == 2
    assert_one_line_error(err, "unknown lab 'nope'", "conv-arithmetic")
    code, _, err = cli("lab", "conv-arithmetic", "--out", tmp_path, "max_n=big")
    assert code == 2
    assert_one_line_error(err, "max_n=big", "expected int")
    code, _, err = cli("lab", "conv-arithmetic", "--out", tmp_path, "width=3")
    assert code == 2
    assert_one_line_error(err, "no parameter 'width'", "max_n")


@pytest.fixture
def failing_lab(monkeypatch):
    import matplotlib.pyplot as plt

    def run(ctx):
        fig = plt.figure(figsize=(4, 3))
        return LabOutput([close("two", 1.0 + ctx["x"], 2.0, 0.1)], fig, {"x": ctx["x"]})

    spec = LabSpec("demo-claim", "one plus x is two", run, {"x": 0.0}, {})
    monkeypatch.setitem(LABS._entries, "demo-claim", type(LABS.entry("conv-arithmetic"))(
        "demo-claim", spec, {}, spec.claim))  # fmt: skip
    return spec


def test_a_failing_check_is_exit_1_and_a_passing_override_exit_0(failing_lab, cli, tmp_path):
    code, out, _ = cli("lab", "demo-claim", "--out", tmp_path)
    assert code == 1 and "FAILS" in out
    assert json.loads((tmp_path / "result.json").read_text())["ok"] is False
    code, out, _ = cli("lab", "demo-claim", "--out", tmp_path, "x=1")
    assert code == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["params"] == {"x": 1.0} and result["checks"][0]["value"] == 2.0


def test_all_runs_each_lab_into_its_folder(failing_lab, monkeypatch, cli, tmp_path):
    monkeypatch.setattr(LABS, "names", lambda: ["conv-arithmetic", "demo-claim"])
    code, out, _ = cli("lab", "all", "--quick", "--out", tmp_path)
    assert code == 1  # demo-claim fails
    assert (tmp_path / "conv-arithmetic" / "result.json").is_file()
    assert (tmp_path / "demo-claim" / "demo-claim.png").is_file()
    assert "conv-arithmetic" in out and "FAILS" in out
    with pytest.raises(SystemExit):
        main(["lab"])  # NAME is required
