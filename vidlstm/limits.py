"""Upper bounds on every size read from a file (config.json, container metadata) before it allocates anything.

Torch-free and import-free on purpose: the early decode worker of `vidlstm classify` checks a model
folder's config.json against these before torch is even imported (vidlstm/batch/early.py).
"""
from __future__ import annotations

import math

# name -> (smallest, largest) value a model config may hold. Far above any real model (the shipped one is
# 8 frames, 48 px, hidden 128), far below what would exhaust memory or hang the build.
MODEL_INT_RANGES = {
    "num_frames": (1, 1024),
    "image_size": (32, 1024),  # >= 32: the backbones downsample by 32
    "proj_dim": (1, 4096),
    "hidden_size": (1, 4096),
    "num_layers": (1, 16),
    "test_views": (1, 8),
}
MAX_KEYPOINTS = 256
MAX_CLASSES = 100_000
TEMPERATURE_RANGE = (1e-3, 1e3)  # calibration fits ~0.5-3; 1e-300 turns every logit into inf (NaN scores)

MAX_CLIP_BYTES = 256 << 20
"""One decoded clip, num_frames x image_size^2 x 3 bytes, at most: each size alone may be in range and their
product still not (1024 frames at 1024 px would be 3 GB per clip, per decode worker)."""

MAX_TIMELINE_FRAMES = 7200
"""Frames one timeline looks at, at most (an hour at the default 2 fps): a longer video, or one whose
metadata claims a longer one, is summarised at a lower rate instead of decoded without end."""


def int_range_error(name: str, value) -> str | None:
    """Why ``value`` is no acceptable ``name`` of a model config (MODEL_INT_RANGES), or None when it is."""
    low, high = MODEL_INT_RANGES[name]
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{name} must be an integer from {low} to {high} (got {value!r})"
    if not low <= value <= high:
        return f"{name} must be from {low} to {high} (got {value})"
    return None


def is_finite_number(value) -> bool:
    try:
        return not isinstance(value, bool) and math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        return False


def clip_size_error(num_frames: int, image_size: int) -> str | None:
    """Why a clip of ``num_frames`` frames at ``image_size`` px is too large to decode (MAX_CLIP_BYTES), or None."""
    size = num_frames * image_size * image_size * 3
    if size > MAX_CLIP_BYTES:
        return (f"num_frames x image_size^2 x 3 = {size / 2**20:.0f} MB per clip, above {MAX_CLIP_BYTES >> 20} MB "
                f"(num_frames {num_frames}, image_size {image_size})")
    return None
