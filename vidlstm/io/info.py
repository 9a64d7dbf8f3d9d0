"""What the decoding layer hands back: ``VideoInfo`` (probed metadata) and ``DecodeResult`` (frames + provenance)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VideoInfo:
    """Metadata of one video stream, as the backend that opened it sees it.

    ``num_frames`` is exact where the backend indexes the packets (decord, PyAV) and otherwise the
    container's count or duration * fps; a read past the real end returns the last real frame.
    ``duration`` is ``num_frames / fps`` seconds, so time <-> index conversions agree everywhere.
    ``width``/``height`` are the upright (displayed) size; ``rotation`` is how many degrees clockwise
    the stored frames must be turned to display upright (0, 90, 180 or 270) -- frames that
    ``read_frames`` returns are already turned.
    """

    path: str
    num_frames: int
    fps: float
    duration: float
    width: int
    height: int
    rotation: int
    codec: str
    backend: str


@dataclass(frozen=True)
class DecodeResult:
    """Frames decoded for the asked indices, in the asked order, and who decoded them."""

    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    backend: str
    info: VideoInfo
    indices: np.ndarray | None = None  # (T,) int64 frame indices decoded, where the reader chose them (read_sampled)


# Lower-case suffixes that count as videos when walking folders (matched case-insensitively, so "CLIP.MP4"
# from a camera card is found too). One list for predict's directory walk and training's class folders.
VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".flv", ".wmv", ".mpg", ".mpeg", ".mts", ".m2ts",
    ".ts", ".3gp", ".3g2", ".ogv", ".gif", ".mxf", ".vob", ".asf", ".divx", ".y4m",
})


def is_video_name(name: str) -> bool:
    """The one rule for which names count as videos when a folder is searched (`train`, `predict`, ...).

    A video suffix (VIDEO_EXTENSIONS, any case) and not a hidden file: names starting with "." are skipped,
    which covers macOS "._clip.mp4" AppleDouble metadata files that carry the suffix but hold no video.
    """
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS
