"""`torchrun --standalone --nproc-per-node 2 -m vidlstm predict` then `vidlstm merge` equals one unsharded run."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from batch.predict_helpers import assert_same_records
from vidlstm.batch.records import read_records
from vidlstm.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_torchrun_ranks_then_merge_equal_one_run(tmp_path, make_video, tiny_model_dir):
    for i in range(5):
        make_video(f"v{i}.mp4", num_frames=12, seed=i)
    folder = tmp_path
    # No broken file here: a rank that exits 1 makes torchrun stop the other rank at once (SIGTERM), which
    # races with its work. Error records across shards are tested with merge and the Ray engine.
    out = tmp_path / "out" / "preds.jsonl"
    out.parent.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "vidlstm", "predict", str(folder), "-o", str(out), "--model", str(tiny_model_dir),
           "--workers", "0", "--threads", "1", "--no-progress", "--device", "cpu"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    parts = sorted(out.parent.glob("preds.part*-of-2.jsonl"))
    assert [p.name for p in parts] == ["preds.part0-of-2.jsonl", "preds.part1-of-2.jsonl"]
    assert all(read_records(p) for p in parts)  # both ranks had files
    merged = tmp_path / "out" / "merged.jsonl"
    assert main(["merge", *map(str, parts), "-o", str(merged)]) == 0

    single = tmp_path / "out" / "single.jsonl"
    assert main(["predict", str(folder), "-o", str(single), "--model", str(tiny_model_dir), "--workers", "0",
                 "--no-progress", "--device", "cpu"]) == 0
    got, expected = read_records(merged), read_records(single)
    assert len(got) == 5
    assert_same_records(got, expected)
    assert all(r["status"] == "ok" for r in got)
