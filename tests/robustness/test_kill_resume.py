"""kill -9 in the middle of `predict` and of `train`, then resume: nothing lost, nothing done twice."""
from __future__ import annotations

import csv
import json
import re
import shutil
import time
from pathlib import Path

import pytest

from cli_runs import TINY_TRAINING, check_records, json_lines, kill_group, run_in_process, start_vidlstm
from damaged_inputs import Input, class_folders, encode_exact, moving_square_clip

pytestmark = [pytest.mark.robustness, pytest.mark.slow]

LABELS = ("left", "right", "up")  # tiny_model_dir's
START_SECONDS = 180  # how long the killed run may take to get going on 2 busy cores


def wait_for(condition, proc, what: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}: nothing left to interrupt")
        if time.monotonic() > deadline:
            kill_group(proc)
            pytest.fail(f"no {what} after {START_SECONDS} s")
        time.sleep(0.005)


def test_predict_killed_mid_run_resumes_with_exactly_one_record_per_file(damaged_corpus, tiny_model_dir, tmp_path,
                                                                          capfd):
    folder = tmp_path / "videos"
    clean = [encode_exact(folder / f"clean{i:02d}.mp4", moving_square_clip(12, 32, 32, seed=i), pix_fmt="yuv420p")
             for i in range(16)]
    damaged = [Input(i.kind, Path(shutil.copy(i.path, folder / i.path.name)), i.origin) for i in damaged_corpus
               if i.kind in ("truncated", "header-only", "byte-flips", "zero-frame", "empty", "4k", "gif")]
    out = tmp_path / "preds.jsonl"
    args = [folder, "-o", out, "--model", tiny_model_dir, "--workers", "1", "--batch-size", "1", "--threads", "1",
            "--no-progress"]
    proc = start_vidlstm("predict", *args)
    wait_for(lambda: out.exists() and out.read_bytes().count(b"\n") >= 3, proc, "3 records")
    kill_group(proc)  # the run, its decode worker and the fork server, all at once
    done_before = out.read_bytes().count(b"\n")
    total = len(clean) + len(damaged)
    assert done_before < total, "the run finished before the kill; the test proves nothing"

    run = run_in_process(capfd, "predict", *args)  # the same command again
    records = json_lines(out.read_text())
    expected = sorted(damaged + [Input("healthy", p, "generated") for p in clean], key=lambda i: str(i.path))
    check_records(records, expected, LABELS, 8)  # every file exactly once, sorted, outcomes as expected
    assert run.code == 1  # some files fail (in either run)
    summary = re.match(r"(\d+) ok, (\d+) failed, (\d+) skipped", run.out.splitlines()[-1])
    ok, failed, skipped = map(int, summary.groups())
    assert skipped == done_before and ok + failed == total - done_before  # nothing redone, nothing left out


def test_train_killed_mid_run_resumes_to_the_end(tmp_path, capfd):
    from vidlstm.checkpoint import load_model, load_train_state

    data = tmp_path / "data"
    class_folders([], data, classes=("left", "right"), clean_per_class=3)
    run_dir, epochs = tmp_path / "run", 12
    args = [data, "-o", run_dir, *TINY_TRAINING, "--epochs", str(epochs)]  # the last --epochs counts
    proc = start_vidlstm("train", *args)
    metrics_csv = run_dir / "metrics.csv"
    wait_for(lambda: len(_epochs(metrics_csv)) >= 2, proc, "2 finished epochs")
    kill_group(proc)
    done_before = len(_epochs(metrics_csv))
    assert done_before < epochs, "the run finished before the kill; the test proves nothing"
    cache_entries = _files_and_mtimes(run_dir / "cache")
    assert cache_entries  # every clip was decoded into the cache before the first epoch

    run = run_in_process(capfd, "train", *args, "--resume")
    assert run.code == 0, run.err[-2000:]
    assert _epochs(metrics_csv) == list(range(epochs))  # each epoch once: none lost, none repeated
    assert load_train_state(run_dir / "last" / "train_state.pt")["epoch"] == epochs - 1
    metrics = json.loads((run_dir / "model" / "metrics.json").read_text())
    assert metrics["epochs_run"] == epochs
    assert load_model(run_dir / "model").config.labels == ["left", "right"]
    # The resumed run read the decoded clips from the cache: not one entry was written again.
    assert _files_and_mtimes(run_dir / "cache") == cache_entries


def _files_and_mtimes(cache) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in cache.rglob("*.safetensors")}


def _epochs(metrics_csv) -> list[int]:
    try:
        with open(metrics_csv, newline="") as f:
            return [int(row["epoch"]) for row in csv.DictReader(f)]
    except (FileNotFoundError, KeyError, ValueError):  # not written yet, or caught mid-replace
        return []
