"""kill -9 in the middle of `vidlstm predict`, then the same command again: exactly one record per file."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batch.predict_helpers import tiny_model_dir, video_folder

REPO = Path(__file__).resolve().parents[2]


def _predict_command(videos, out, model_dir):
    return [sys.executable, "-m", "vidlstm", "predict", str(videos), "-o", str(out), "--model", str(model_dir),
            "--workers", "1", "--batch-size", "1", "--threads", "1", "--no-progress"]


def _env():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return env


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun_gives_exactly_one_record_per_file(tmp_path, make_video):
    model_dir = tiny_model_dir(tmp_path)
    videos = video_folder(make_video, 24)
    out = tmp_path / "preds.jsonl"
    # Its own process group, so the kill takes the decode worker and the fork server down with it.
    proc = subprocess.Popen(_predict_command(videos, out, model_dir), env=_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = out.read_bytes().count(b"\n")
    assert 2 <= done_before < 24, "the run was not interrupted mid-way; the test proves nothing"
    with open(out, "ab") as f:  # and as if the kill had also torn a line in half
        f.write(b'{"path": "' + str(videos / "v23.mp4").encode() + b'", "sta')

    result = subprocess.run(_predict_command(videos, out, model_dir), env=_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"skipped (already in the output" in result.stdout
    assert "dropped a torn last line" in result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    paths = [r["path"] for r in records]
    assert paths == sorted(str(p) for p in videos.glob("*.mp4"))  # every file once, sorted
    assert all(r["status"] == "ok" for r in records)
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"{24 - done_before} ok, 0 failed, {done_before} skipped")
