"""File names that are not UTF-8 (bytes Python holds as surrogate escapes): a class folder named so trains into
a complete model folder whose labels round-trip, and classify prints such names and labels as their bytes."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from cli_runs import TINY_TRAINING, run_vidlstm, subprocess_env, vidlstm_command
from damaged_inputs import encode_exact, moving_square_clip

pytestmark = [pytest.mark.robustness, pytest.mark.slow]

ODD = os.fsdecode(b"caf\xe9")  # "caf\udce9": the byte 0xE9 alone is no UTF-8


def test_a_non_utf8_class_folder_trains_and_classifies(tmp_path):
    for label in ("left", ODD):
        for i in range(2):
            encode_exact(tmp_path / "data" / label / f"c{i}.mp4", moving_square_clip(8, 32, 32, seed=i),
                         pix_fmt="yuv420p")
    run = run_vidlstm("train", tmp_path / "data", "-o", tmp_path / "run", *TINY_TRAINING)
    assert run.code == 0, run.err[-2000:]
    model = tmp_path / "run" / "model"
    assert sorted(p.name for p in model.iterdir()) == ["README.md", "config.json", "labels.json", "metrics.json",
                                                      "model.safetensors"]
    assert json.loads((model / "labels.json").read_text()) == sorted(["left", ODD])
    # A strict UTF-8 stdout (what a UTF-8 terminal locale gives) must not stop the table at the odd label.
    odd_clip = os.fsencode(str(tmp_path / "data" / ODD / "c0.mp4"))
    env = dict(subprocess_env(), PYTHONIOENCODING="utf-8:strict")
    done = subprocess.run(vidlstm_command("classify", os.fsdecode(odd_clip), "--model", model, "--threads", "1"),
                          env=env, capture_output=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    head, *rows = done.stdout.splitlines()
    assert head.startswith(odd_clip.replace(b"\xe9", b"\\udce9"))  # a name on a message line: escaped, one line
    assert any(row.split()[1] == b"caf\xe9" for row in rows)  # a label: its bytes, as `ls` prints a name
