"""``genlab report`` pages opened in headless Chromium: they load with no console errors, every
image decodes, and the sections expected for each kind of run are there.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package. Without them
the test is skipped, unless GENLAB_REQUIRE_BROWSER=1 (set by CI), which makes it fail.
"""

from __future__ import annotations

import os
import shutil

import pytest

import genlab
from genlab.tools.report import write_report

pytestmark = pytest.mark.browser

EXPECTED = {
    "vae": {"overview", "config", "samples", "curves", "evaluations", "latent", "nearest"},
    "dcgan": {"overview", "config", "samples", "curves", "evaluations", "nearest", "not-shown"},
    "gan": {"overview", "config", "samples", "curves", "evaluations", "scatter", "not-shown"},
}
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def _unavailable() -> str | None:
    """Why the browser cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    for program, package in (("chromium", "chromium"), ("chromedriver", "chromium-driver")):
        if shutil.which(program) is None:
            return f"{program} not found (apt-get install {package})"
    return None


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """The three tiny runs (4 steps each) the pages are built from."""
    root = tmp_path_factory.mktemp("runs")
    return {m: genlab.train(m, preset=f"tiny_{m}", out=root / m) for m in EXPECTED}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    reason = _unavailable()
    if reason:
        if os.environ.get("GENLAB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"GENLAB_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager never looks for (or downloads) one.
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    yield driver
    driver.quit()


def test_report_pages_load_in_chromium(browser, tiny_runs, tmp_path):
    for model, expected in EXPECTED.items():
        path, _ = write_report(tiny_runs[model], tmp_path / f"{model}.html")
        browser.get(path.resolve().as_uri())
        assert browser.execute_script("return document.readyState") == "complete"
        severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, f"{model}: console errors {severe}"
        images = browser.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])"
        )
        assert len(images) >= 4, f"{model}: only {len(images)} images"
        broken = [alt for complete, width, alt in images if not (complete and width > 0)]
        assert not broken, f"{model}: images that did not decode: {broken}"
        ids = browser.execute_script(
            "return Array.from(document.querySelectorAll('section'), s => s.id)"
        )
        assert set(ids) == expected, model
        heading = browser.execute_script("return document.querySelector('h1').textContent")
        assert model in heading and browser.title == heading


def test_the_checks_can_fail(browser, tmp_path):
    """A page with an undecodable image and a console error: both checks above notice."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img alt="bad" src="data:image/png;base64,AAAA">'
        '<script>console.error("boom")</script></body></html>'
    )
    browser.get(page.as_uri())
    complete, width = browser.execute_script(
        "const i = document.images[0]; return [i.complete, i.naturalWidth]"
    )
    assert complete and width == 0
    assert any("boom" in e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE")
