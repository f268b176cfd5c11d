"""``genlab latent``: every tool end to end on trained tiny runs, and its one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from genlab.cli.main import main
from genlab.core.errors import ConfigError
from genlab.tools import latent_run
from helpers import assert_one_line_error

TOOLS = {  # tool argv -> (rows, columns) of 16 px cells in the grid it writes
    ("recon", "--n", "5"): (2, 5),
    ("interp", "--n", "3", "--steps", "4"): (3, 6),
    ("interp", "--mode", "slerp", "--n", "2"): (2, 10),
    ("attribute", "--attr", "3", "--n", "4"): (3, 4),
    ("traverse", "--steps", "5"): (4, 5),  # tiny_vae: 4 code dimensions
}


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory) -> Path:
    """A tiny vae trained for 4 steps on 300 shapes at 32 px."""
    out = tmp_path_factory.mktemp("latent") / "shapes"
    argv = ["train", "vae", "--preset", "tiny_vae", "--data", "shapes", "--out", str(out)]
    assert main([*argv, "data.image_size=32", "data.num_samples=300"]) == 0
    return out


@pytest.mark.parametrize("argv", list(TOOLS), ids=lambda a: " ".join(a))
def test_tool_writes_its_grid(cli, trained_runs, argv):
    code, out, err = cli("latent", argv[0], trained_runs["vae"], *argv[1:])
    assert code == 0, err
    path = Path(out.splitlines()[0])
    assert path.parent == trained_runs["vae"] / "latent" and path.name.endswith("seed0.png")
    rows, cols = TOOLS[argv]
    # 16 px cells and 1 px borders, enlarged 4 times to 64 px cells (grid_png).
    assert Image.open(path).size == (4 * (17 * cols + 1), 4 * (17 * rows + 1))


def test_same_seed_same_picture_and_out(cli, trained_runs, tmp_path):
    run = trained_runs["vae"]
    paths = [tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"]
    for path, seed in zip(paths, ("1", "1", "2"), strict=True):
        code, out, _ = cli("latent", "recon", run, "--seed", seed, "--out", path)
        assert code == 0 and out.strip() == str(path)
    assert paths[0].read_bytes() == paths[1].read_bytes() != paths[2].read_bytes()
    code, out, _ = cli("latent", "recon", run, "--split", "train")
    assert code == 0 and out.strip().endswith("recon_train_seed0.png")


def test_scatter_names_its_projection(cli, trained_runs):
    code, out, err = cli("latent", "scatter", trained_runs["vae"], "--n", "100")
    assert code == 0, err
    assert "100 test codes (PCA of 4-D codes: 2 components" in out
    assert Image.open(out.splitlines()[0]).size == (550, 450)


def test_attribute_on_shapes_prints_the_measured_areas(cli, shapes_run):
    code, out, err = cli("latent", "attribute", shapes_run, "--attr", "large", "--n", "6")
    assert code == 0, err
    found = re.search(r"before (\d+\.\d) px, after (\d+\.\d) px \(([+-]\d+\.\d)\)", out)
    assert found, out
    before, after, change = map(float, found.groups())
    assert change == pytest.approx(after - before, abs=0.11)
    assert "attribute 'large', strength 1.5" in out and "6 images without it" in out
    for attr in ("is_heart", "square"):  # a binary attribute and a class name
        assert cli("latent", "attribute", shapes_run, "--attr", attr, "--n", "2")[0] == 0


def test_conditional_model_gets_labels(cli, tmp_path):
    run = tmp_path / "cvae"
    assert main(["train", "vae", "--preset", "tiny_cvae", "--out", str(run)]) == 0
    for tool in ("recon", "interp", "traverse", "scatter"):
        code, _, err = cli("latent", tool, run)
        assert code == 0, (tool, err)


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (("recon", "{dcgan}"), ("needs a model with an encoder (", "vae", "is a dcgan")),
        (("scatter", "{gan}"), ("needs a model with an encoder", "is a gan")),
        (("attribute", "{vae}", "--attr", "blue"), ("unknown attribute 'blue'", "valid: 0, 1")),
        (("attribute", "{vae}", "--attr", "3", "--threshold", "2"), ("--threshold 2",)),
        (("recon", "{vae}", "--n", "0"), ("--n 0: give a number from 1",)),
        (("interp", "{vae}", "--steps", "1"), ("--steps 1",)),
        (("traverse", "{vae}", "--dims", "0"), ("--dims 0",)),
        (("recon", "{vae}", "--step", "999"), ("no complete checkpoint for step 999",)),
        (("recon", "{missing}"), ("does not exist",)),
        (("interp", "{vae}", "--mode", "cubic"), ("invalid choice: 'cubic'",)),
        (("wobble", "{vae}"), ("invalid choice: 'wobble'",)),
    ],
)
def test_errors_are_one_line(cli, capsys, trained_runs, tmp_path, argv, fragments):
    runs = {**{k: str(v) for k, v in trained_runs.items()}, "missing": str(tmp_path / "nope")}
    try:
        code, out, err = cli("latent", *(a.format(**runs) for a in argv))
    except SystemExit as stop:  # argparse's own errors exit from inside the parser
        (out, err), code = capsys.readouterr(), stop.code
    assert code == 2 and out == ""
    assert_one_line_error(err, *fragments)


def test_latent_views_from_python(trained_runs, shapes_run, tmp_path):
    run = trained_runs["vae"]
    r = latent_run.recon(run, n=3, out=tmp_path / "r.png")
    assert r == {"png": tmp_path / "r.png", "n": 3}
    assert Image.open(r["png"]).size == (4 * (17 * 3 + 1), 4 * (17 * 2 + 1))
    i = latent_run.interp(run, mode="slerp", steps=3, n=2)
    assert i["png"] == run / "latent" / "interp_slerp_test_seed0.png" and i["png"].is_file()
    t = latent_run.traverse(run, steps=3, dims=2)
    assert t["code_dim"] == 4 and len(t["dims"]) == 2 and t["dims"] == sorted(t["dims"])
    s = latent_run.scatter(run, n=30, split="train")
    assert s["n"] == 30 and s["title"].startswith("30 train codes (PCA of 4-D codes")
    a = latent_run.attribute(shapes_run, "large", n=4)
    assert a["n"] == 4 and a["vector_norm"] > 0 and a["area_after"] is not None
    assert latent_run.attribute(run, "3", n=2)["area_before"] is None  # digits: no factors
    with pytest.raises(ConfigError, match="--steps 1"):
        latent_run.interp(run, steps=1)
