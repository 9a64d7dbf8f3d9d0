"""`vidlstm demo`: fresh synthetic clips through a model, a table and the accuracy line."""
from __future__ import annotations

import re

import pytest

from vidlstm.cli import main
from vidlstm.defaults import default_model_dir


def test_demo_prints_one_row_per_clip_and_the_accuracy(tiny_model_dir, capsys):
    assert main(["demo", "--model", str(tiny_model_dir), "--per-class", "2", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.rstrip().endswith((" ok", " WRONG"))]
    assert len(rows) == 6  # 2 clips x the tiny model's 3 labels
    match = re.search(r"accuracy: (\d+)/(\d+) = ([\d.]+)%", out)
    assert match and match.group(2) == "6"
    assert float(match.group(3)) == pytest.approx(100 * int(match.group(1)) / 6, abs=0.06)


@pytest.mark.slow
def test_shipped_default_model_classifies_fresh_synthetic_clips_at_90_percent(capsys):
    if not (default_model_dir() / "config.json").is_file():
        pytest.skip("no shipped default model in weights/default")
    # A seed the model never trained on (it trained on seed 7); 80 clips, 10 per class.
    assert main(["demo", "--per-class", "10", "--seed", "2024"]) == 0
    match = re.search(r"accuracy: (\d+)/(\d+)", capsys.readouterr().out)
    correct, total = int(match.group(1)), int(match.group(2))
    assert total == 80
    assert correct / total >= 0.9
