"""Rewrite clips with the camera's translation undone: what a moving camera costs vidlstm, measured.

    python benchmarks/stabilize.py MANIFEST.csv       # every clip of a path,label[,group] manifest, in place

Consecutive frames are aligned by the median Lucas-Kanade flow of up to 200 corners (a translation), the shifts
are accumulated and undone about the middle frame, edges replicated; clips are read and rewritten at 112x112 px
(``SIZE``: what the session-20 numbers used; vidnet reads 48 px, the read-outs 224). The session-20 measurement of
what stabilizing could buy (`bench_accuracy.py --stabilize`; benchmarks/RESULTS.md, session 20), kept so it can be
re-run: vidlstm now stabilizes the frames it samples itself, with a guard against a subject taken for the camera
(`vidlstm/data/stabilize.py`, `train --stabilize`).
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vidlstm.data.stabilize import undo_path  # noqa: E402
from vidlstm.io import probe, read_frames  # noqa: E402
from vidlstm.io.encode import write_video  # noqa: E402

SIZE = (112, 112)  # (height, width) the clips are read at and rewritten at


def camera_path(frames: np.ndarray) -> np.ndarray:
    """(T, 2) x/y shift of each frame against the middle one, from the median flow of tracked corners."""
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    path = [np.zeros(2)]
    for a, b in zip(gray, gray[1:]):
        step = np.zeros(2)
        corners = cv2.goodFeaturesToTrack(a, 200, 0.01, 7)
        if corners is not None and len(corners) >= 8:
            moved, found, _ = cv2.calcOpticalFlowPyrLK(a, b, corners, None, winSize=(21, 21), maxLevel=3)
            found = found.ravel() == 1
            if found.sum() >= 8:
                step = np.median((moved - corners).reshape(-1, 2)[found], axis=0)
        path.append(path[-1] + step)
    path = np.array(path)
    return path - path[len(path) // 2]


def stabilize(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB with ``camera_path`` undone (vidlstm's own shift back, edges replicated)."""
    return undo_path(frames, camera_path(frames))


def stabilize_manifest(manifest: Path) -> Path:
    """Every clip of ``manifest`` rewritten stabilized, in place (H.264 at ``SIZE``, its own frame rate)."""
    with open(manifest, newline="") as f:
        for row in csv.DictReader(f):
            path = Path(row["path"]) if Path(row["path"]).is_absolute() else Path(manifest).parent / row["path"]
            info = probe(path)
            frames = np.asarray(read_frames(path, np.arange(info.num_frames), size=SIZE, info=info).frames)
            write_video(path, stabilize(frames), fps=info.fps or 25.0)
    return manifest


if __name__ == "__main__":
    print(stabilize_manifest(Path(sys.argv[1])))
