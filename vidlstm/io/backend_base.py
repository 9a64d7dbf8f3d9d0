"""What every decoder backend shares: its failure types, the read plan, rotation maths and the damage rule.

A backend is a module (``decord_backend``, ``opencv_backend``, ``pyav_backend``) that imports its
package at the top (so a missing package means a missing backend) and offers:

    NAME: str
    probe(path, threads=0) -> VideoInfo
    read(path, indices, size, threads=0, info=None) -> (frames (T, H, W, 3) uint8 RGB upright, VideoInfo)
    stream_tags(path) -> (codec, rotation, width, height)   # opencv and pyav, for decord's probe

and raises BackendFailure (or its kinds below) for files it cannot handle; ``reader`` tries the next.
"""
from __future__ import annotations

import math

import numpy as np

# A container's frame count may be off by a frame or two (edit lists, a trailing empty packet,
# duration * fps rounding); a stream that ends further short than this was cut or damaged.
MISSING_FRAMES_TOLERATED = 3
MISSING_FRACTION_TOLERATED = 0.05


class BackendFailure(Exception):
    """One backend could not open or read a file; ``str()`` is a short, one-line reason."""


def utf8_name(path) -> str:
    """``str(path)``; a BackendFailure where the name's bytes are not UTF-8 (held as surrogate escapes): decord cannot
    take such a name, and OpenCV's capture crashes on it with SIGSEGV, which would end the caller's process (PyAV,
    first in the chain, opens it)."""
    name = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise BackendFailure("cannot open a file name that is not UTF-8") from None
    return name


class NoVideoStream(BackendFailure):
    """The file opened but holds no video stream (audio only, subtitles, ...)."""


class DamagedStream(BackendFailure):
    """The decoder rejected data, or the stream ends far before the frame count its container declares."""


class CutShort(DamagedStream):
    """The file ends before the data its container lists (a download or copy that stopped early): said instead of
    whatever the decoders made of the missing data, which reads as damage of some other kind."""


def unique_sorted_indices(indices) -> tuple[np.ndarray, np.ndarray]:
    """(wanted, inverse): the distinct indices in decoding order and where each asked index sits in them.

    Backends decode ``wanted`` once each, front to back, then ``decoded[inverse]`` restores the asked
    order with its duplicates.
    """
    asked = np.asarray(indices)
    if asked.ndim != 1 or asked.size == 0:
        raise ValueError(f"frame indices must be a non-empty 1-D sequence, got shape {asked.shape}")
    if not np.issubdtype(asked.dtype, np.integer):
        if not np.all(np.equal(np.mod(asked, 1), 0)):
            raise ValueError("frame indices must be integers")
        asked = asked.astype(np.int64)
    if asked.min() < 0:
        raise ValueError(f"frame indices must be >= 0, got {int(asked.min())}")
    wanted, inverse = np.unique(asked.astype(np.int64), return_inverse=True)
    return wanted, inverse.reshape(-1)


def normalize_rotation(degrees_clockwise: float) -> int:
    """Snap an angle to 0/90/180/270 (display matrices carry small float errors and negative angles)."""
    if degrees_clockwise is None or not math.isfinite(degrees_clockwise):
        return 0
    return int(round(degrees_clockwise / 90.0)) * 90 % 360


def rotation_from_display_matrix(matrix) -> int:
    """Clockwise display rotation from an FFmpeg display matrix (9 int32, 16.16 fixed point, row-major).

    The same atan2 as FFmpeg's ``av_display_rotation_get``, which negates it to report the
    counter-clockwise angle; FFmpeg's autorotate negates it back. Mirroring is ignored.
    """
    m = np.asarray(matrix, dtype=np.float64).reshape(-1)[:9] / 65536.0
    scale0, scale1 = math.hypot(m[0], m[3]), math.hypot(m[1], m[4])
    if scale0 == 0 or scale1 == 0:
        return 0
    clockwise = math.degrees(math.atan2(m[1] / scale1, m[0] / scale0))
    return normalize_rotation(clockwise)


def turn_upright(frame: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a stored (H, W, 3) frame clockwise by ``rotation`` degrees so it displays upright."""
    if rotation == 0:
        return frame
    return np.ascontiguousarray(np.rot90(frame, k=-(rotation // 90)))  # np.rot90 turns counter-clockwise


def stored_size(size: tuple[int, int] | None, rotation: int) -> tuple[int, int] | None:
    """The (height, width) to scale a stored frame to, so that it is ``size`` once turned upright."""
    if size is None or rotation % 180 == 0:
        return size
    return size[1], size[0]


def check_output_size(size) -> tuple[int, int] | None:
    """Validate ``size=(height, width)``; None keeps the native size."""
    if size is None:
        return None
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (height, width) or None, got {size!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return height, width


def check_stream_length(frames_decoded: int, frames_declared: int) -> None:
    """Raise DamagedStream when a stream ends well before the frame count its container declares.

    Called when a read runs past the real end: a frame or two short is metadata noise (and the
    last real frame stands in for the missing ones); more than that means frames were lost.
    """
    if frames_declared <= 0:
        return
    tolerated = max(MISSING_FRAMES_TOLERATED, int(MISSING_FRACTION_TOLERATED * frames_declared))
    if frames_declared - frames_decoded > tolerated:
        raise DamagedStream(f"decoding stops at frame {frames_decoded} of {frames_declared} declared")


def one_line(message: object, limit: int = 120) -> str:
    """Fold a library's (often multi-line) error text into one short line."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
