"""Undo a moving camera's pan in a clip's sampled frames, where the whole view moves and nothing else explains it.

A head-mounted or hand-held camera turns while a hand traces a path: everything in the frame shifts, the frame
differences carry the scene's edges and the traced path is bent by the head's motion (benchmarks/RESULTS.md,
"A turning head": 0.62 against 0.91 from a still view). ``stabilize`` estimates, between consecutive sampled
frames, the translation of the view (the median Lucas-Kanade flow of corners, on a copy of at most
``ANALYSIS_SIZE`` px) and shifts every frame back onto the middle one.

The median follows the background only where the background holds most of the corners. So a step counts as the
camera's only where the frame agrees that everything moved (``camera_step``): most corners follow the median
(``MIN_AGREE_SHARE``: corners on sensor noise each go their own way), those that do spread over most of the frame
(``MIN_CELLS`` of a 3x3 grid), and few corners stand still (under ``MAX_STILL_SHARE``: a hand moving over a still
room leaves the room's corners at rest). Otherwise the step is 0, so a still camera's clips, and what cannot be
told apart, come out as they went in. What cannot be told apart: a hand that fills the frame before a plain wall,
whose corners are the only ones (``train --stabilize off`` there).

The same function runs on training views (``data.views``) and in every inference path (``Predictor``, or a batch
run's decode workers: ``batch.decode``), on the frames the model sees, so a model trained on stabilized clips always
sees stabilized clips.
"""
from __future__ import annotations

import cv2
import numpy as np

ANALYSIS_SIZE = 64  # px: the flow is measured on a copy this small (vidnet reads 48 px; measured 0.1 px error there)
MAX_CORNERS, MIN_CORNERS = 100, 8
MIN_CELLS = 5  # of the 3x3 grid: the corners that moved with the median must cover most of the view
MAX_STILL_SHARE = 0.25  # a quarter of the corners at rest: something else moved, not the camera
MIN_AGREE_SHARE = 0.6  # the view moves as one: most corners follow the median (a pan: 0.75-0.9; noise: ~0.4)
AGREE_PX = 0.5  # at the analysis size: a corner agrees with a step within this (plus 20% of the step)


def _gray(frames: np.ndarray) -> tuple[list[np.ndarray], float]:
    """Grey analysis copies of (T, H, W, 3) RGB frames (uint8, or 0-255 floats) and the factor back to their pixels."""
    if frames.dtype != np.uint8:
        frames = np.clip(frames, 0, 255).astype(np.uint8)
    h, w = frames.shape[1:3]
    scale = min(1.0, ANALYSIS_SIZE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    gray = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    if scale < 1.0:
        gray = [cv2.resize(g, size, interpolation=cv2.INTER_AREA) for g in gray]
    return gray, 1.0 / scale


def camera_step(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(2,) x/y shift of the view from grey frame ``a`` to ``b`` (analysis pixels), or zeros where it cannot be
    told from something moving in front of a still camera."""
    h, w = a.shape
    corners = cv2.goodFeaturesToTrack(a, MAX_CORNERS, 0.01, max(2, min(h, w) // 16))
    if corners is None or len(corners) < MIN_CORNERS:
        return np.zeros(2)
    moved, found, _ = cv2.calcOpticalFlowPyrLK(a, b, corners, None, winSize=(9, 9), maxLevel=2)
    found = found.ravel() == 1
    if found.sum() < MIN_CORNERS:
        return np.zeros(2)
    start = corners.reshape(-1, 2)[found]
    flow = (moved.reshape(-1, 2) - corners.reshape(-1, 2))[found]
    step = np.median(flow, axis=0)
    if np.hypot(*step) < AGREE_PX:
        return np.zeros(2)  # nothing to undo (and no pan to tell from noise)
    still = np.hypot(flow[:, 0], flow[:, 1]) < AGREE_PX
    agree = np.hypot(*(flow - step).T) < AGREE_PX + 0.2 * np.hypot(*step)
    cells = {(int(3 * x / w), int(3 * y / h)) for x, y in start[agree]}
    if still.mean() >= MAX_STILL_SHARE or agree.mean() < MIN_AGREE_SHARE or len(cells) < MIN_CELLS:
        return np.zeros(2)
    return step


def camera_path(frames: np.ndarray) -> np.ndarray:
    """(T, 2) float x/y shift of each frame's view against the middle frame, in the frames' pixels."""
    gray, back = _gray(frames)
    steps = [np.zeros(2)] + [camera_step(a, b) for a, b in zip(gray, gray[1:])]
    path = np.cumsum(steps, axis=0) * back
    return path - path[len(path) // 2]


def _shift_back(frame: np.ndarray, shift) -> np.ndarray:
    """``frame`` (H, W, 3) moved by -``shift`` (x, y) px, sub-pixel, edges replicated."""
    x, y = float(shift[0]), float(shift[1])
    if not (x or y):
        return frame
    h, w = frame.shape[:2]
    return cv2.warpAffine(np.ascontiguousarray(frame), np.float32([[1, 0, -x], [0, 1, -y]]), (w, h),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def stabilize(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB with the camera's pan undone about the middle frame (edges replicated)."""
    return frames if len(frames) < 2 else undo_path(frames, camera_path(frames))


def undo_path(frames: np.ndarray, path: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) frames each moved back by its (T, 2) x/y ``path`` shift; ``frames`` itself where none moved."""
    if not np.any(path):
        return frames
    return np.stack([_shift_back(f, shift) for f, shift in zip(frames, path)])


class StreamStabilizer:
    """The pan undone in frames that arrive a chunk at a time (``stream``, ``predict --timeline``), statefully.

    Each frame is shifted back by the pan accumulated since the stream began, so consecutive frames line up as in
    a stabilized clip (the frame differences are the same; positions differ by a constant, which the clip-centred
    keypoints do not see). Where the accumulated shift passes a quarter of the frame, the view has moved on for
    good: it starts again from 0, and that one pair of frames differs by the jump.
    """

    def __init__(self):
        self.previous = None  # the last frame's grey analysis copy
        self.path = np.zeros(2)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """(t, H, W, 3) uint8 consecutive frames -> the same, stabilized against every frame fed before."""
        gray, back = _gray(frames)
        out = []
        for g, frame in zip(gray, frames):
            if self.previous is not None:
                self.path = self.path + camera_step(self.previous, g) * back
                if np.abs(self.path).max() > max(frame.shape[:2]) / 4:
                    self.path = np.zeros(2)
            self.previous = g
            out.append(_shift_back(frame, self.path))
        return np.stack(out) if out else frames


def camera_motion(frames: np.ndarray) -> float:
    """How far the view moves over a clip: the mean |shift| against the middle frame, as a share of the frame side."""
    return float(np.abs(camera_path(frames)).mean() / max(frames.shape[1:3])) if len(frames) > 1 else 0.0
