"""write_video: the same frames give the same file, whichever process writes them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vidlstm.io.encode import write_video

REPO = Path(__file__).resolve().parents[2]

# Renders four clips of benchmarks/airdraw.py (real backgrounds, changing light) in a fresh process and writes them;
# with x264's macroblock tree on, the first clips of a process came out different from one run to the next.
_WRITER = """
import hashlib, sys
import numpy as np
sys.path[:0] = [{repo!r}, {bench!r}]
import airdraw
from vidlstm.io.encode import write_video
rng = np.random.default_rng(5)
scenes = airdraw.backgrounds(3)
for label in list(airdraw.PATHS)[:4]:
    _, background = scenes[int(rng.integers(len(scenes)))]
    frames = airdraw.render(label, background, rng)
    path = write_video(sys.argv[1] + "/" + label + ".mp4", frames, fps=airdraw.FPS)
    print(label, hashlib.md5(path.read_bytes()).hexdigest())
"""


def _x264_settings(path: Path) -> str:
    """The settings x264 writes into the stream (an SEI message: "x264 - core ... options: ...")."""
    data = path.read_bytes()
    start = data.index(b"options: ")
    return data[start:data.index(b"\x00", start)].decode()


def _clip() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (6, 32, 48, 3), dtype=np.uint8)


def test_x264_writes_without_the_macroblock_tree(tmp_path):
    settings = _x264_settings(write_video(tmp_path / "a.mp4", _clip()))
    assert " mbtree=0 " in settings and " crf=23.0 " in settings


def test_callers_x264_params_are_kept_and_may_turn_the_tree_back_on(tmp_path):
    settings = _x264_settings(write_video(tmp_path / "b.mp4", _clip(), options={"x264-params": "keyint=5"}))
    assert " mbtree=0 " in settings and " keyint=5 " in settings
    settings = _x264_settings(write_video(tmp_path / "c.mp4", _clip(), options={"x264-params": "mbtree=1"}))
    assert " mbtree=1 " in settings


def test_two_processes_write_identical_files(shared_data, tmp_path):
    script = _WRITER.format(repo=str(REPO), bench=str(REPO / "benchmarks"))
    outputs = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path / run)], capture_output=True, text=True,
                              timeout=300)
        if done.returncode != 0 and "not here" in done.stderr:
            pytest.skip(done.stderr.strip().splitlines()[-1])
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout.split())
    assert len(outputs[0]) == 8
    assert outputs[0] == outputs[1]
