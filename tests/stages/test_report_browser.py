"""The report renders in a real browser from a file:// URL: headless Chromium screenshot, not a blank page.

Skipped where no Chromium is installed (Debian: `apt-get install -y chromium`).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidlstm.batch.records import write_records
from vidlstm.stages.report import ReportConfig, run

from test_report import prediction_records, write_explanation, write_run

WINDOW = (1200, 1600)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


def screenshot(html: Path, tmp_path: Path) -> np.ndarray:
    """Render ``html`` the way a user opening the file would, offline, and return the RGB pixels."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    shot = tmp_path / "shot.png"
    profile = tmp_path / "profile"
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--screenshot={shot}",
               f"--window-size={WINDOW[0]},{WINDOW[1]}", html.resolve().as_uri()]
    env = dict(os.environ, HOME=str(tmp_path))  # Chromium writes caches under HOME: keep them in tmp_path
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0 and shot.is_file(), f"chromium failed: {result.stderr[-2000:]}"
    with Image.open(shot) as image:
        assert image.size == WINDOW
        return np.asarray(image.convert("RGB"), dtype=np.float64)


def assert_rendered(pixels: np.ndarray) -> None:
    gray = pixels.mean(axis=2)  # (H, W)
    assert gray.std() > 20, "the screenshot is (nearly) one colour: a blank page"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200  # text, tables and an embedded image
    # The inline stylesheet applied: the header band at the top is dark, the page below it light.
    assert gray[:40].mean() < 80 and gray[200:].mean() > 150


@pytest.mark.slow
def test_predictions_report_renders_in_headless_chromium(tmp_path):
    records = prediction_records(tmp_path)
    records[0].update(write_explanation(records[0]["path"], tmp_path / "explanations"))
    source = write_records(tmp_path / "preds.jsonl", records)
    html = run(ReportConfig(source=str(source), output=str(tmp_path / "report.html")))

    assert_rendered(screenshot(html, tmp_path))


@pytest.mark.slow
def test_run_report_renders_in_headless_chromium(tmp_path):
    html = run(ReportConfig(source=str(write_run(tmp_path / "run")), output=str(tmp_path / "report.html")))

    assert_rendered(screenshot(html, tmp_path))
