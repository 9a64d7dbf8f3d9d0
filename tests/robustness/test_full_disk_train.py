"""`vidlstm train` onto a disk that fills up: one line naming the file it could not write, and the same command
trains once there is room (what was cached stays cached)."""
from __future__ import annotations

import subprocess

import pytest

from cli_runs import TINY_TRAINING, assert_no_traceback, run_vidlstm

pytestmark = pytest.mark.robustness


def test_train_onto_a_full_disk_is_one_line_and_the_same_command_trains_once_there_is_room(small_disk, small_data):
    # Before: safetensors' SafetensorError (a cache entry) or torch.save's RuntimeError (the train state), tracebacks.
    from vidlstm.checkpoint import load_model

    data, _ = small_data
    disk = small_disk("64k")  # root only; tests/test_files.py and test_checkpoint.py monkeypatch a full disk anywhere
    run_dir = disk / "run"
    run = run_vidlstm("train", data, "-o", run_dir, *TINY_TRAINING)
    assert_no_traceback(run)
    assert run.code == 1
    line, = run.err.strip().splitlines()
    assert line.startswith(f"vidlstm train: error: {run_dir}/") and line.endswith(": No space left on device"), line
    subprocess.run(["mount", "-o", "remount,size=64m", "tmpfs", str(disk)], check=True)
    run = run_vidlstm("train", data, "-o", run_dir, *TINY_TRAINING)
    assert run.code == 0, run.err[-2000:]
    assert load_model(run_dir / "model").config.labels == ["left", "right"]
