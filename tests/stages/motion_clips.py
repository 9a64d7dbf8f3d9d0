"""Tiny synthetic clips the stage tests train on."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vidlstm.io.encode import write_video


def moving_square(direction: str, rng, steps: int = 10, size: int = 32) -> np.ndarray:
    """(T, H, W, 3) uint8: a bright square crossing a noisy frame to the left or to the right."""
    side = size // 3
    frames = rng.integers(0, 60, (steps, size, size, 3)).astype(np.uint8)
    y = int(rng.integers(0, size - side))
    xs = np.linspace(0, size - side, steps).astype(int)
    xs = xs[::-1] if direction == "left" else xs
    colour = rng.integers(150, 256, 3)
    for t, x in enumerate(xs):
        frames[t, y:y + side, x:x + side] = colour
    return frames


def write_moving_squares(folder: Path, per_class: int, seed: int = 0, steps: int = 10) -> Path:
    """``folder``/left and ``folder``/right, ``per_class`` clips each of ``moving_square`` (10 fps): a class folder
    data set that only the direction of motion tells apart."""
    rng = np.random.default_rng(seed)
    for label in ("left", "right"):
        for i in range(per_class):
            write_video(folder / label / f"{label}_{i:02d}.mp4", moving_square(label, rng, steps=steps), fps=10)
    return folder
