"""DDP: `torchrun --nproc_per_node 2 -m vidlstm train` on CPU (gloo) trains one model, saved once by rank 0."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vidlstm.data.synth import SynthConfig, generate_dataset

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_cpu_processes_train_with_gloo(tmp_path):
    data = generate_dataset(tmp_path / "data", SynthConfig(per_class=4, size=32, min_frames=6, max_frames=8, seed=3),
                            classes=("left", "right"))
    run_dir = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "vidlstm", "train", str(data), "-o", str(run_dir), "--frames", "4", "--image-size", "32",
           "--epochs", "2", "--views", "2", "--batch-size", "2", "--threads", "1", "--no-progress", "--device", "cpu"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained 2 epochs") == 1  # only rank 0 reports
    with open(run_dir / "metrics.csv", newline="") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["0", "1"]
    metrics = json.loads((run_dir / "model" / "metrics.json").read_text())
    assert metrics["train_clips"] == 6 and metrics["val_clips"] == 2  # every clip, not one rank's share
    assert (run_dir / "last" / "train_state.pt").is_file()
    assert not list(run_dir.rglob("*.tmp"))
