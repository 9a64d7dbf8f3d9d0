"""PyAV frames and streams to what vidlstm hands back: RGB arrays turned upright, VideoInfo, one-line errors."""
from __future__ import annotations

import numpy as np

from vidlstm.io.backend_base import (
    MISSING_FRAMES_TOLERATED,
    DamagedStream,
    normalize_rotation,
    one_line,
    rotation_from_display_matrix,
    stored_size,
    turn_upright,
)
from vidlstm.io.info import VideoInfo

NAME = "pyav"
# FFmpeg itself assumes 25 fps for a stream that states no rate at all.
FALLBACK_FPS = 25.0


def convert_frame(frame, size, rotation: int, position: int) -> np.ndarray:
    """RGB (H, W, 3) uint8, scaled by swscale's bilinear filter (as decord scales) and turned upright."""
    if getattr(frame, "is_corrupt", False):
        raise DamagedStream(f"frame {position} decoded with errors")
    target = stored_size(size, rotation)
    if target is None:
        array = frame.to_ndarray(format="rgb24")
    else:
        array = frame.to_ndarray(format="rgb24", height=target[0], width=target[1], interpolation="BILINEAR")
    return turn_upright(array, rotation)


def frame_rotation(frame) -> int:
    """Clockwise display rotation of a frame: ``frame.rotation`` (PyAV >= 13) or its display-matrix side data."""
    counter_clockwise = getattr(frame, "rotation", None)
    if counter_clockwise is not None:
        return normalize_rotation(-counter_clockwise)
    for side_data in frame.side_data:
        if "DISPLAYMATRIX" in str(getattr(side_data, "type", "")):
            return rotation_from_display_matrix(np.frombuffer(bytes(side_data), dtype="<i4"))
    return 0


def declared_frame_count(stream) -> int:
    """The container's frame count (0 where it has none: Matroska, WebM, FLV)."""
    return max(int(stream.frames or 0), 0)


def stream_fps(stream) -> float:
    """Average frame rate, else FFmpeg's guess, else the 25 fps FFmpeg itself assumes."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and float(rate) > 0:
            return float(rate)
    return FALLBACK_FPS


def make_info(path, stream, num_frames: int, rotation: int) -> VideoInfo:
    """VideoInfo in the upright orientation."""
    fps = stream_fps(stream)
    width, height = stream.codec_context.width, stream.codec_context.height
    if rotation % 180:
        width, height = height, width
    return VideoInfo(
        path=str(path), num_frames=int(num_frames), fps=fps, duration=num_frames / fps, width=int(width),
        height=int(height), rotation=rotation, codec=stream.codec_context.name, backend=NAME,
    )


def err_text(err) -> str:
    """FFmpeg's own words for an error, without the errno and file name PyAV adds."""
    return one_line(getattr(err, "strerror", None) or err, limit=80)


def cut_short_reason(container, stream, packets: int, last) -> str | None:
    """Where the file ends inside the data its container lists, the reason to give when decoding it fails; else None.

    ``packets``: how many the demuxer gave (the index's), ``last``: the last of them. The demuxer hands back a packet
    cut by the end of the file flagged corrupt; an MP4 whose index (moov) comes first lists every frame, so one cut
    between two packets still ends short of its count. Only said when decoding failed: the decoders' own words for a
    missing end ("decoder rejected data", "cannot seek to frame 8") do not tell a user that the file is incomplete."""
    if last is None:
        return None
    size, declared = container.size, declared_frame_count(stream)
    reaches_end = size > 0 and last.pos is not None and last.pos + last.size >= size
    if not reaches_end or not (last.is_corrupt or declared > packets + MISSING_FRAMES_TOLERATED):
        return None
    whole = packets - 1 if last.is_corrupt else packets
    if declared > whole:
        return f"cut short: the file holds {whole} of the {declared} frames it lists (an unfinished download or copy?)"
    return f"cut short: the file ends after {whole} whole frames (an unfinished download or copy?)"
