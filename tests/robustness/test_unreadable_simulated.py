"""A file that cannot be read while `train` hashes it (EACCES simulated, so this runs as root too):
the run skips it with one warning line and lists it in skipped_files."""
from __future__ import annotations

import json

import pytest

import vidlstm.data.cache as cache_module
from cli_runs import TINY_TRAINING, assert_no_traceback, run_in_process
from damaged_inputs import class_folders

pytestmark = pytest.mark.robustness


@pytest.mark.parametrize("error, reason", [
    (PermissionError(13, "Permission denied"), "permission denied"),
    (OSError(5, "Input/output error"), "cannot read (Input/output error)"),
])
def test_train_skips_a_file_it_cannot_read(tmp_path, capfd, monkeypatch, error, reason):
    data = tmp_path / "data"
    class_folders([], data, classes=("a", "b"), clean_per_class=2)
    locked = data / "b" / "locked.mp4"
    locked.write_bytes((data / "b" / "clean0.mp4").read_bytes())
    real_sha256 = cache_module.sha256_file

    def sha256_file(path):
        if str(path).endswith("locked.mp4"):
            raise error
        return real_sha256(path)

    monkeypatch.setattr(cache_module, "sha256_file", sha256_file)
    run = run_in_process(capfd, "train", data, "-o", tmp_path / "run", *TINY_TRAINING)
    assert_no_traceback(run)
    assert run.code == 0, run.err[-2000:]
    assert f"warning: {locked}: skipped, {reason}" in run.err.splitlines()
    metrics = json.loads((tmp_path / "run" / "model" / "metrics.json").read_text())
    assert metrics["skipped_files"] == ["b/locked.mp4"]
    assert metrics["train_clips"] == 4
