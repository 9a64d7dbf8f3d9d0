"""`vidlstm train` on class folders mixed with damaged inputs: it trains on what decodes and lists what it skipped."""
from __future__ import annotations

import json

import pytest

from cli_runs import TINY_TRAINING, assert_no_traceback, run_in_process, run_vidlstm
from damaged_inputs import class_folders, expected_status

pytestmark = pytest.mark.robustness

NOT_FILES = ("directory",)  # a folder named x.mp4 is walked, not listed; FIFOs and link loops are listed


def train_subprocess(data, run_dir):
    # A subprocess: train decodes in its own process, where a decoder abort would take pytest down too.
    run = run_vidlstm("train", data, "-o", run_dir, *TINY_TRAINING)
    assert_no_traceback(run)
    return run


def check_every_file_accounted_for(run, run_dir, placed: dict):
    """Exit 0; every entry named like a video but a folder was trained on or is listed in metrics.json's
    skipped_files; kinds with a known outcome have it; the model loads."""
    from vidlstm.checkpoint import load_model

    assert run.code == 0, run.err[-3000:]
    metrics = json.loads((run_dir / "model" / "metrics.json").read_text())
    skipped = set(metrics["skipped_files"])
    files = {name: item for name, item in placed.items() if item.kind not in NOT_FILES}
    assert skipped <= set(files)  # the clean clips all decode; a folder is no input
    clean = 3 * len(metrics["train_class_counts"])
    assert metrics["train_clips"] == clean + len(files) - len(skipped)
    for name, item in files.items():
        assert expected_status(item.kind) != ("ok" if name in skipped else "error"), (name, item.kind)
    assert f"skipped {len(skipped)} undecodable file(s)" in run.out
    assert load_model(run_dir / "model").config.labels == ["a", "b"]
    return skipped


@pytest.fixture(scope="module")
def damaged_training_run(damaged_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("train_damaged")
    placed = class_folders(damaged_corpus, root / "data")
    run = train_subprocess(root / "data", root / "run")
    return run, root / "run", placed


@pytest.mark.slow
def test_train_uses_what_decodes_and_lists_every_other_file(damaged_training_run):
    run, run_dir, placed = damaged_training_run
    skipped = check_every_file_accounted_for(run, run_dir, placed)
    assert {placed[name].kind for name in skipped} >= {"truncated", "header-only", "zero-frame", "empty"}


@pytest.mark.slow
def test_train_lists_fifo_and_symlink_loop_as_skipped(damaged_training_run):
    run, run_dir, placed = damaged_training_run
    skipped = json.loads((run_dir / "model" / "metrics.json").read_text())["skipped_files"]
    assert {placed[name].kind for name in skipped} >= {"fifo", "symlink-loop"}


@pytest.mark.realdata
@pytest.mark.slow
def test_train_survives_a_decoder_that_aborts(real_damaged_corpus, tmp_path):
    flipped = [i for i in real_damaged_corpus if i.kind == "byte-flips"]  # the AVI among them aborts decord
    placed = class_folders(flipped, tmp_path / "data", clean_per_class=3)
    run = train_subprocess(tmp_path / "data", tmp_path / "run")
    check_every_file_accounted_for(run, tmp_path / "run", placed)


def test_class_whose_clips_all_fail_is_a_usage_error(damaged_corpus, tmp_path, capfd):
    unreadable = [i for i in damaged_corpus if i.kind in ("empty", "header-only")]
    class_folders(unreadable, tmp_path / "data", classes=("b",), clean_per_class=0)
    class_folders([], tmp_path / "data", classes=("a",), clean_per_class=2)
    # In this process: only files no decoder even opens, so nothing here can crash a decoder.
    run = run_in_process(capfd, "train", tmp_path / "data", "-o", tmp_path / "run", *TINY_TRAINING)
    assert run.code == 2, run.err[-2000:]
    # What was skipped may be listed first; the run ends on one line naming the class.
    last = run.err.strip().splitlines()[-1]
    assert last.startswith("vidlstm train: error: ") and ("'b'" in last or "/b" in last)
    assert not (tmp_path / "run" / "model").exists()
