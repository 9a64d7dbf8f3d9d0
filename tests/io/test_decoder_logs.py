"""The decoders' own log lines (FFmpeg's, OpenCV's, decord's) stay off stderr unless VIDLSTM_DECODER_LOGS=1.

Each check runs in a fresh process: the log levels are process-wide state set when a backend is first
imported, and FFmpeg writes to file descriptor 2 directly, past any capture of sys.stderr.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vidlstm.io.registry import available_backends

REPO = Path(__file__).resolve().parents[2]
# Lines the libraries print on their own for a truncated MP4 or a damaged H.264 packet.
DECODER_NOISE = ("moov atom", "[ WARN", "ERROR opening", "@ 0x", "NAL unit")
READ_EACH_BACKEND = """
import sys
import numpy as np
from vidlstm.io import read_frames
for backend in sys.argv[2:]:
    try:
        read_frames(sys.argv[1], np.arange(40), size=(32, 32), backends=(backend,))
        print(backend, "ok")
    except Exception as err:
        print(backend, type(err).__name__)
"""


def run_python(args, decoder_logs: bool) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    env.pop("VIDLSTM_DECODER_LOGS", None)
    env.pop("OPENCV_FFMPEG_LOGLEVEL", None)
    if decoder_logs:
        env["VIDLSTM_DECODER_LOGS"] = "1"
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env, timeout=120)


def noise(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if any(mark in line for mark in DECODER_NOISE)]


@pytest.fixture
def truncated_mp4(make_video, tmp_path):
    healthy = make_video("healthy.mp4", num_frames=24)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(healthy.read_bytes()[: healthy.stat().st_size // 3])  # the moov atom is at the end
    return cut


def test_classify_of_a_truncated_mp4_prints_only_its_one_error_line(truncated_mp4, tiny_model_dir):
    run = run_python(["-m", "vidlstm", "classify", truncated_mp4, "--model", tiny_model_dir, "--threads", "1"],
                     decoder_logs=False)
    assert run.returncode == 1, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"vidlstm classify: error: {truncated_mp4}: cannot decode ("), run.stderr


def test_every_backend_is_quiet_on_bad_files_and_loud_when_asked(truncated_mp4, make_video, damage_packet):
    backends = available_backends()
    damaged = damage_packet(make_video("clip.mp4", num_frames=40, height=32, width=64), 20)
    for path in (truncated_mp4, damaged):
        quiet = run_python(["-c", READ_EACH_BACKEND, path, *backends], decoder_logs=False)
        assert quiet.returncode == 0 and len(quiet.stdout.splitlines()) == len(backends), quiet.stderr
        assert quiet.stderr == "", (path.name, quiet.stderr)
    # The same reads with the messages asked for: they are there to hide (this test can fail).
    loud = run_python(["-c", READ_EACH_BACKEND, truncated_mp4, *backends], decoder_logs=True)
    assert any("moov atom not found" in line for line in noise(loud.stderr)), loud.stderr
    assert len(noise(loud.stderr)) >= len(backends), loud.stderr
