"""Synthetic frames that carry their own index, and frame comparisons, for the decoding tests."""
from __future__ import annotations

import cv2
import numpy as np

BITS = 6  # frame numbers 0..63


def numbered_clip(num_frames: int, height: int = 48, width: int = 64) -> np.ndarray:
    """(T, H, W, 3) uint8: an asymmetric gradient (so a wrong turn shows) with the frame number in binary.

    The top third is a band of ``BITS`` blocks, most significant first: white for 1, black for 0.
    Blocks are ~10 px wide, big enough to survive H.264 and a 2x downscale.
    """
    if num_frames > 2**BITS:
        raise ValueError(f"at most {2**BITS} numbered frames")
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), np.full_like(xx, 96)], -1)
    band = height // 3
    edges = np.linspace(0, width, BITS + 1).astype(int)
    frames = np.repeat(background[None].astype(np.uint8), num_frames, axis=0)  # (T, H, W, 3)
    for t in range(num_frames):
        for bit in range(BITS):
            on = (t >> (BITS - 1 - bit)) & 1
            frames[t, :band, edges[bit]:edges[bit + 1]] = 255 if on else 0
    return frames


def read_frame_number(frame: np.ndarray) -> int:
    """The number ``numbered_clip`` drew into an upright frame (any size): each block's centre, thresholded."""
    height, width = frame.shape[:2]
    band = max(height // 3, 1)
    edges = np.linspace(0, width, BITS + 1)
    gray = frame.astype(np.float64).mean(-1)
    number = 0
    for bit in range(BITS):
        left, right = int(edges[bit] + (edges[bit + 1] - edges[bit]) / 4), int(edges[bit + 1] - (edges[bit + 1] - edges[bit]) / 4)
        centre = gray[band // 4: max(band * 3 // 4, band // 4 + 1), left:max(right, left + 1)]
        number = number * 2 + int(centre.mean() > 128)
    return number


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def closest_source_frame(frame: np.ndarray, source: np.ndarray) -> int:
    """Index of the source frame (T, H, W, 3) most like ``frame`` (H, W, 3)."""
    return int(np.argmin([mean_abs_diff(frame, candidate) for candidate in source]))


def resize_area(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``frame`` scaled to size=(height, width) by OpenCV's area averaging: an independent reference."""
    return cv2.resize(np.ascontiguousarray(frame), (size[1], size[0]), interpolation=cv2.INTER_AREA)
