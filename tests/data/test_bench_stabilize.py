"""benchmarks/stabilize.py: the camera's pan is found and undone; what moves against the scene stays."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from stabilize import camera_path, stabilize  # noqa: E402


def _panned_clip(num_frames: int = 12):
    """A textured scene panned 3 px right and 1 px down per frame, and a bright square moving 4 px/frame down
    within the scene. Returns (frames, the pan of each frame against the middle one)."""
    rng = np.random.default_rng(0)
    scene = (rng.random((40, 50)) * 255).astype(np.uint8).repeat(4, 0).repeat(4, 1)
    scene = np.stack([scene] * 3, -1)
    pan = np.array([[3 * t, t] for t in range(num_frames)])
    frames = []
    for t, (x, y) in enumerate(pan):
        view = scene[20 + y:20 + y + 96, 20 + x:20 + x + 128].copy()
        top = 10 + 4 * t - y  # the square moves in the scene, so in the frame it also carries the pan
        view[max(top, 0):max(top + 10, 0), 60 - x:70 - x] = 255
        frames.append(view)
    return np.stack(frames), (pan - pan[num_frames // 2]) * -1


def test_camera_path_is_the_pan_of_the_scene():
    frames, expected = _panned_clip()
    # the content moves opposite to the view: x left by 3, y up by 1 per frame
    np.testing.assert_allclose(camera_path(frames), expected, atol=1.0)


def test_stabilized_scene_stands_still():
    frames, _ = _panned_clip()
    before = np.abs(np.diff(frames[:, 20:76, 30:98].astype(int), axis=0)).mean()
    after = np.abs(np.diff(stabilize(frames)[:, 20:76, 30:98].astype(int), axis=0)).mean()
    assert before > 40 and after < 0.25 * before
