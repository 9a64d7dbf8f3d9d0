"""Tiny synthetic clips the stage tests train on."""
from __future__ import annotations

import numpy as np


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
