"""``genlab report``: the page of each kind of run is self-contained (data: images that decode,
no network URL, no script), escapes every text, shows the sections that apply and says what it
does not show; broken runs are one-line errors; the pieces are checked against brute force."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from genlab.core.errors import DataError
from genlab.tools import report as report_module
from genlab.tools.report import curve_series, latest_eval_rows, read_metrics
from genlab.tools.report_sections import (
    nearest_neighbours,
    nearest_section,
    pick_steps,
    pixel_neighbours,
    running_mean,
)
from helpers import assert_one_line_error


class Page(HTMLParser):
    """The parts of a page the tests look at: section ids, image sources, tags, text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.sections, self.images, self.tags, self.text = [], [], set(), []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs["id"])
        if tag == "img":
            self.images.append(attrs["src"])

    def handle_data(self, data):
        self.text.append(data)


def check_self_contained(html: str) -> Page:
    """No URL, no script, every image an embedded PNG that decodes; returns the parsed page."""
    assert "http://" not in html and "https://" not in html
    page = Page(html)
    assert "script" not in page.tags and "link" not in page.tags
    assert page.images
    for src in page.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix), src[:40]
        image = Image.open(io.BytesIO(base64.b64decode(src[len(prefix) :], validate=True)))
        image.load()
        assert image.format == "PNG" and min(image.size) > 0
    return page


def report(cli, run, *args) -> tuple[Page, str]:
    code, out, err = cli("report", run, *args)
    assert code == 0, err
    path = out.splitlines()[0].split(" (")[0]
    return check_self_contained(open(path, encoding="utf-8").read()), out


def test_vae_report(cli, run_copy):
    run = run_copy("vae")
    page, out = report(cli, run)
    assert out.startswith(str(run / "report.html"))
    assert page.sections == [
        "overview", "config", "samples", "curves", "evaluations", "latent", "nearest",
    ]  # fmt: skip
    text = " ".join(page.text)
    assert "step 4 of 4 (finished)" in text and "0.1.0" in text and '"bernoulli"' in text
    # samples (2 grids), 1 loss figure, recon, interp, 2 x (8 + 8) nearest-neighbour cells
    assert len(page.images) == 2 + 1 + 2 + 32
    assert not list(run.glob(".report.html.*"))  # written atomically: no temp file left


def test_gan_and_dcgan_reports(cli, trained_runs, tmp_path):
    page, out = report(cli, trained_runs["gan"], "--out", tmp_path / "gan.html")
    assert "scatter" in page.sections and "nearest" not in page.sections
    assert "not shown: the nearest-neighbour check: training points" in out
    page, out = report(cli, trained_runs["dcgan"], "--out", tmp_path / "dcgan.html")
    assert "nearest" in page.sections and "latent" not in page.sections
    assert "dcgan has no encoder" in " ".join(page.text) and "no encoder" in out


def test_interactions_report_says_what_it_cannot_show(cli, tmp_path):
    run = genlab.train("multvae", preset="tiny_multvae", out=tmp_path / "mv")
    page, out = report(cli, run)
    assert page.sections[-1] == "not-shown" and "nearest" not in page.sections
    assert "interactions" in out and "cannot picture" in out


def test_quality_curves_and_eval_table(cli, run_copy, tmp_path):
    run = genlab.train(
        "vae",
        preset="tiny_vae",
        out=tmp_path / "evals",
        overrides=["train.eval_every=2", "train.eval_metrics=recon"],
    )
    assert cli("eval", run, "--metrics", "recon", "--n", 8)[0] == 0
    page, _ = report(cli, run)
    text = " ".join(page.text)
    assert "quality metrics during training (eval/*)" in text
    (result,) = json.loads((run / "eval.json").read_text())[-1]["results"]
    assert f"{result['value']:.4g}" in text and "mse/pixel" in text


def test_every_text_is_escaped(cli, run_copy, tmp_path):
    run = tmp_path / "a<b>&c"
    shutil.copytree(run_copy("vae"), run)
    hostile = "<script>alert('x')</script> & <img src=x>"
    entry = {"step": 4, "split": "test", "results": [{"name": hostile, "value": 1.0}]}
    (run / "eval.json").write_text(json.dumps([entry]))
    code, _, err = cli("report", run)
    assert code == 0, err
    html = (run / "report.html").read_text()
    page = check_self_contained(html)
    assert "<script" not in html and "<img src=x>" not in html
    assert "&lt;script&gt;" in html and "a&lt;b&gt;&amp;c" in html
    assert hostile in " ".join(page.text)  # shown as text, not markup


def test_run_without_checkpoint_still_gets_a_page(cli, run_copy):
    run = run_copy("vae")
    shutil.rmtree(run / "checkpoints")
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "recon": 1\n')  # a line cut by a kill
    page, out = report(cli, run)
    assert page.sections[-1] == "not-shown" and "latent" not in page.sections
    assert "no checkpoint yet" in out and "1 unreadable line" in out


def test_data_that_cannot_be_loaded_is_named(cli, trained_runs, tmp_path, monkeypatch):
    def missing(cfg):
        raise DataError("data/train.idx is missing; put the files in data.root")

    monkeypatch.setattr(report_module, "load_data", missing)
    page, out = report(cli, trained_runs["vae"], "--out", tmp_path / "r.html")
    assert "latent" not in page.sections and "nearest" not in page.sections
    assert "the training data could not be loaded (data/train.idx is missing" in out


@pytest.mark.parametrize(
    "damage, args, fragments",
    [
        ("nothing", [], ["nothing to report", "genlab train --resume"]),
        ("config", [], ["config.json is missing"]),
        (None, ["--step", "3"], ["no complete checkpoint for step 3"]),
        (None, ["--out", "."], ["is a directory"]),
    ],
)
def test_report_errors(cli, run_copy, damage, args, fragments):
    run = run_copy("vae")
    if damage == "nothing":  # config.json written, killed before anything else
        for part in ("checkpoints", "samples", "tb"):
            shutil.rmtree(run / part)
        (run / "metrics.jsonl").unlink()
    if damage == "config":
        (run / "config.json").unlink()
    code, _, err = cli("report", run, *args)
    assert code == 2
    assert_one_line_error(err, *fragments)


def test_report_of_a_missing_directory(cli, tmp_path):
    code, _, err = cli("report", tmp_path / "nope")
    assert code == 2
    assert_one_line_error(err, "does not exist")


# ----------------------------------------------------------------------------- the pieces


def test_nearest_neighbours_match_brute_force():
    gen = torch.Generator().manual_seed(0)
    reference = torch.randint(0, 256, (300, 12), generator=gen, dtype=torch.uint8)
    queries = torch.rand(40, 12, generator=gen, dtype=torch.float64) * 255
    brute = torch.cdist(queries, reference.double(), compute_mode="donot_use_mm_for_euclid_dist")
    for budget in (12, 12 * 7, 1 << 24):  # one row per chunk, ragged chunks, all at once
        index, dist = nearest_neighbours(queries, reference, budget)
        assert torch.equal(index, brute.argmin(1))
        assert torch.allclose(dist, brute.min(1).values, rtol=0, atol=1e-9)
    copies = reference[[5, 17, 299]].clone()
    index, dist = nearest_neighbours(copies, reference)
    assert index.tolist() == [5, 17, 299] and dist.tolist() == [0.0, 0.0, 0.0]


def test_the_memorisation_check_flags_copies():
    gen = torch.Generator().manual_seed(1)
    train = torch.randint(0, 256, (200, 1, 4, 4), generator=gen, dtype=torch.uint8)
    test = torch.randint(0, 256, (50, 1, 4, 4), generator=gen, dtype=torch.uint8)
    copies = pixel_neighbours(train[:50], train)
    assert copies.distance.max().item() == 0.0
    # RMS pixel difference on [0, 1]: one pixel of 16 off by 255 gives sqrt(1/16) = 0.25.
    one_off = train[:1].clone()
    one_off[0, 0, 0, 0] = 255 - one_off[0, 0, 0, 0]
    far = pixel_neighbours(one_off, train[:1])
    assert far.distance.item() == pytest.approx(abs(255 - 2 * int(train[0, 0, 0, 0])) / 255 / 4)
    html = nearest_section(copies, pixel_neighbours(test, train), train).body
    assert "100.0% of the generated samples" in html
    # Samples drawn like the test images: about 5% fall below the test images' 5th percentile.
    alike = torch.randint(0, 256, (50, 1, 4, 4), generator=gen, dtype=torch.uint8)
    html = nearest_section(pixel_neighbours(alike, train), pixel_neighbours(test, train), train)
    share = float(re.search(r"([\d.]+)% of the generated samples", html.body)[1])
    assert share < 20


def test_pick_steps():
    assert pick_steps([4, 2]) == [2, 4]
    steps = list(range(100, 10_001, 100))
    picked = pick_steps(steps, 8)
    assert len(picked) == 9 and picked[0] == 100 and picked[-1] == 10_000
    assert picked[:-1] == [100, 1500, 2900, 4300, 5700, 7100, 8500, 9900]


def test_running_mean_matches_a_loop():
    values = [1.0, 3.0, float("nan"), 5.0, 7.0, 2.0]
    expected = []
    for i in range(len(values)):
        window = [v for v in values[max(0, i - 2) : i + 1] if v == v]
        expected.append(sum(window) / len(window))
    assert np.allclose(running_mean(values, 3), expected)


def test_metrics_and_evaluations_are_read_as_logged(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"step": 2, "loss": 1.5, "eval/fid": 30, "eval/data/fid": 3, "images_per_s": 9}\n'
        '{"step": 4, "loss": "nan", "eval/fid": 20}\nnot json\n'
    )
    rows, skipped = read_metrics(path)
    assert skipped == 1 and rows[1]["step"] == 4 and rows[1]["loss"] != rows[1]["loss"]
    losses, evals = curve_series(rows)
    assert list(losses) == ["loss"] and losses["loss"][0] == [2, 4]
    assert evals == {"fid": {"model": ([2, 4], [30.0, 20.0]), "data": ([2], [3.0])}}
    history = [
        {"step": 2, "split": "test", "results": [{"name": "elbo", "value": -3.0}]},
        {"step": 4, "split": "test", "results": [{"name": "elbo", "value": -2.0}]},
        {"step": 4, "split": "train", "results": [{"name": "elbo", "value": -1.0}]},
    ]
    newest = latest_eval_rows(history)
    assert [(r["value"], r["step"], r["split"]) for r in newest] == [
        (-2.0, 4, "test"),
        (-1.0, 4, "train"),
    ]
