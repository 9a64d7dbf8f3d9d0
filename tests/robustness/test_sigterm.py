"""SIGTERM (what `kill`, systemd and job schedulers send) ends predict cleanly: workers stopped, one line, and the
same command resumes with one record per file."""
from __future__ import annotations

import os
import signal
import time

import pytest

from cli_runs import json_lines, kill_group, run_in_process, start_vidlstm
from damaged_inputs import encode_exact, moving_square_clip
from test_kill_resume import wait_for

pytestmark = [pytest.mark.robustness, pytest.mark.slow]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_ends_the_workers_and_leaves_a_resumable_output(tiny_model_dir, tmp_path, capfd):
    import subprocess

    folder = tmp_path / "videos"
    for i in range(24):
        encode_exact(folder / f"c{i:02d}.mp4", moving_square_clip(12, 32, 32, seed=i), pix_fmt="yuv420p")
    out = tmp_path / "p.jsonl"
    args = [folder, "-o", out, "--model", tiny_model_dir, "--workers", "2", "--batch-size", "1", "--threads", "1",
            "--no-progress"]
    proc = start_vidlstm("predict", *args)
    wait_for(lambda: out.exists() and out.read_bytes().count(b"\n") >= 2, proc, "2 records")
    os.kill(proc.pid, signal.SIGTERM)  # the main process only, as `kill PID` does
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        pytest.fail("predict did not end on SIGTERM")
    assert code == 128 + signal.SIGTERM
    deadline = time.monotonic() + 10
    while _group_alive(proc.pid) and time.monotonic() < deadline:  # decode workers and the fork server
        time.sleep(0.05)
    if _group_alive(proc.pid):
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("a decode worker outlived the terminated run")
    done_before = len(json_lines(out.read_text()))
    run = run_in_process(capfd, "predict", *args)
    assert run.code == 0
    assert run.out.startswith(f"{24 - done_before} ok, 0 failed, {done_before} skipped"), run.out
    assert [r["path"] for r in json_lines(out.read_text())] == sorted(str(p) for p in folder.iterdir())
