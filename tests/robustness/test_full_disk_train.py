"""`vidlstm train` onto a disk that fills up: one line naming the file it could not write, and the same command
trains once there is room (what was cached stays cached)."""
from __future__ import annotations

import os
import subprocess

import pytest

from cli_runs import TINY_TRAINING, assert_no_traceback, run_vidlstm

pytestmark = pytest.mark.robustness


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 64 KiB tmpfs that can be grown (root only; elsewhere tests/test_files.py and test_checkpoint.py check the
    same with a monkeypatched full disk)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_train_onto_a_full_disk_is_one_line_and_the_same_command_trains_once_there_is_room(small_tmpfs, small_data):
    # Before: safetensors' SafetensorError (a cache entry) or torch.save's RuntimeError (the train state), tracebacks.
    from vidlstm.checkpoint import load_model

    data, _ = small_data
    run_dir = small_tmpfs / "run"
    run = run_vidlstm("train", data, "-o", run_dir, *TINY_TRAINING)
    assert_no_traceback(run)
    assert run.code == 1
    line, = run.err.strip().splitlines()
    assert line.startswith(f"vidlstm train: error: {run_dir}/") and line.endswith(": No space left on device"), line
    subprocess.run(["mount", "-o", "remount,size=64m", "tmpfs", str(small_tmpfs)], check=True)
    run = run_vidlstm("train", data, "-o", run_dir, *TINY_TRAINING)
    assert run.code == 0, run.err[-2000:]
    assert load_model(run_dir / "model").config.labels == ["left", "right"]
