"""A video without read permission, through classify, predict and train. Skipped when running as root:
root reads any file, so the permission check cannot fail (this suite's CI machine runs as root)."""
from __future__ import annotations

import json

import pytest

from cli_runs import TINY_TRAINING, assert_no_traceback, check_records, json_lines, run_in_process
from damaged_inputs import Input, can_make_unreadable_files, class_folders, unreadable_copy

pytestmark = [pytest.mark.robustness,
              pytest.mark.skipif(not can_make_unreadable_files(), reason="root reads any file (euid 0)")]

LABELS = ("left", "right", "up")  # tiny_model_dir's


@pytest.fixture
def locked(small_data, tmp_path):
    """(healthy clip, the same clip unreadable), side by side in one folder."""
    _, clip = small_data
    folder = tmp_path / "videos"
    folder.mkdir()
    healthy = Input("healthy", clip.rename(folder / "healthy.mp4"), "generated")
    yield healthy, Input("unreadable", unreadable_copy(healthy.path, folder / "locked.mp4"), "generated")
    (folder / "locked.mp4").chmod(0o644)  # let pytest clean up


def test_classify_and_predict_give_it_a_permission_denied_record(locked, tiny_model_dir, tmp_path, capfd):
    healthy, unreadable = locked
    run = run_in_process(capfd, "classify", unreadable.path, healthy.path, "--model", tiny_model_dir, "--json",
                         "--threads", "1")
    assert_no_traceback(run)
    records = json_lines(run.out)
    check_records(records, [unreadable, healthy], LABELS, 8)
    assert records[0]["error"] == "permission denied" and run.code == 1

    out = tmp_path / "preds.jsonl"
    run = run_in_process(capfd, "predict", healthy.path.parent, "-o", out, "--model", tiny_model_dir,
                         "--workers", "1", "--threads", "1", "--no-progress")
    check_records(json_lines(out.read_text()), [healthy, unreadable], LABELS, 8)
    assert run.code == 1


def test_train_lists_it_as_skipped(locked, tmp_path, capfd):
    _, unreadable = locked
    data = tmp_path / "data"
    class_folders([], data, classes=("a", "b"), clean_per_class=2)
    unreadable_copy(unreadable.path.with_name("healthy.mp4"), data / "b" / "locked.mp4")
    run = run_in_process(capfd, "train", data, "-o", tmp_path / "run", *TINY_TRAINING)
    assert run.code == 0, run.err[-2000:]
    skipped = json.loads((tmp_path / "run" / "model" / "metrics.json").read_text())["skipped_files"]
    assert skipped == ["b/locked.mp4"]
