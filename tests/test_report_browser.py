"""The report pages render in a real headless browser (Debian's chromium), charts and all.

Screenshots are kept as test artifacts in ``$NMR_TEST_ARTIFACTS`` (default build/test-artifacts,
which git ignores). CI installs chromium when it is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from builder.diagnostics import write_index, write_report
from tests.test_diagnostics_report import outcome, validation_result

pytestmark = pytest.mark.slow

ARTIFACTS = Path(
    os.environ.get("NMR_TEST_ARTIFACTS", Path(__file__).parents[1] / "build" / "test-artifacts")
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]


def open_in_chromium(page: Path, screenshot: Path, profile: Path, height: int) -> list[str]:
    """Load ``page``, save a screenshot, return the browser console's messages."""
    if CHROMIUM is None:
        _unavailable("chromium is not installed (CI installs it: apt-get install chromium)")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    profile.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size=1200,{height}",
            f"--screenshot={screenshot}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert screenshot.exists(), done.stderr[-2000:]
    return re.findall(r":CONSOLE[^\]]*\] (.*)", done.stderr)


def colour_pixels(png: Path, hex_colour: str) -> int:
    """How many pixels of the screenshot have (about) this colour."""
    from matplotlib.image import imread

    image = imread(png)[..., :3]
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255.0
    return int((np.abs(image - rgb).max(axis=-1) < 0.03).sum())


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    build = root / "build"
    outcomes = [
        outcome("good_model", validation_result(root, 1, 1.0), build),
        outcome("weak_model", validation_result(root, 2, 0.1), build),
    ]
    for o in outcomes:
        write_report(o.report, o.slot, o.run, o.fidelity, o.validation)
    return {"slot": outcomes[1].report, "index": write_index(build / "report.html", outcomes)}


def test_slot_report_renders_its_charts_with_a_clean_console(pages, tmp_path):
    shot = ARTIFACTS / "report-slot.png"
    console = open_in_chromium(pages["slot"], shot, tmp_path / "profile", height=3000)
    assert console == []
    # the cumulative CORR line (blue), positive and negative per-era bars, the exposure bars
    assert colour_pixels(shot, "#0969da") > 200
    assert colour_pixels(shot, "#1a7f37") > 2000
    assert colour_pixels(shot, "#cf222e") > 200
    assert colour_pixels(shot, "#bc4c00") > 2000


def test_index_page_renders_its_chart_with_a_clean_console(pages, tmp_path):
    shot = ARTIFACTS / "report-index.png"
    console = open_in_chromium(pages["index"], shot, tmp_path / "profile", height=900)
    assert console == []
    assert colour_pixels(shot, "#0969da") > 200  # first slot's cumulative curve
    assert colour_pixels(shot, "#bc4c00") > 200  # second slot's


def test_the_console_check_sees_errors(tmp_path):
    """Guards the two tests above: a page that logs an error is caught."""
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><p>x</p><script>console.error('boom')</script>")
    console = open_in_chromium(page, tmp_path / "broken.png", tmp_path / "profile", height=200)
    assert any("boom" in line for line in console)


def _unavailable(reason: str):
    """Skip where the tool is missing, but fail under CI (NMR_CI_STRICT), which installs it."""
    if os.environ.get("NMR_CI_STRICT"):
        pytest.fail(f"{reason} (NMR_CI_STRICT is set: .ci/run installs it)")
    pytest.skip(reason)
