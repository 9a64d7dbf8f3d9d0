"""OpenCV backend: grab() through short gaps, seek through long ones, retrieve() and resize only wanted frames."""
from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from vidlstm.io.backend_base import (
    BackendFailure,
    check_stream_length,
    normalize_rotation,
    stored_size,
    turn_upright,
    unique_sorted_indices,
    utf8_name,
)
from vidlstm.io.info import VideoInfo
from vidlstm.io.quiet import quiet_opencv

NAME = "opencv"
quiet_opencv(cv2)  # before the first capture: OpenCV reads its FFmpeg log level then
FALLBACK_FPS = 25.0  # what FFmpeg assumes for a stream that states no rate
# OpenCV cannot list keyframes; until it has seen two, assume x264's default keyframe interval (the
# longest common one). A seek decodes from the keyframe before its target, so it only beats grab()
# when the gap is longer than the keyframe interval.
ASSUMED_KEYFRAME_INTERVAL = 250
# Whether the packet grab() just read is a keyframe (OpenCV >= 4.6); it runs a few frames ahead of the
# decoded frame (B-frame reordering), which shifts keyframe positions but not the interval between them.
KEYFRAME_PROP = getattr(cv2, "CAP_PROP_LRF_HAS_KEY_FRAME", None)
# OpenCV reports garbage (e.g. -1.4e17 for a WebM without duration) where the container has no count.
MAX_PLAUSIBLE_FRAMES = 10**8
# OpenCV's FourCC for a stream -> the FFmpeg codec name the other backends report.
FOURCC_CODECS = {
    "avc1": "h264", "h264": "h264", "x264": "h264", "hev1": "hevc", "hvc1": "hevc", "hevc": "hevc",
    "fmp4": "mpeg4", "mp4v": "mpeg4", "xvid": "mpeg4", "divx": "mpeg4", "dx50": "mpeg4",
    "vp80": "vp8", "vp90": "vp9", "av01": "av1", "mjpg": "mjpeg", "gif": "gif", "vp6f": "vp6f",
}


def probe(path, threads: int = 0) -> VideoInfo:
    """Container metadata as OpenCV reports it; frames are counted by grabbing only where it reports none."""
    capture, rotation, turned_by_opencv = open_video(path, threads)
    try:
        num_frames = declared_frame_count(capture)
        info = make_info(path, capture, num_frames, rotation, turned_by_opencv)
    finally:
        capture.release()
    if num_frames == 0:
        info = make_info_counted(path, threads, info)
    return info


def stream_tags(path) -> tuple[str, int, int, int]:
    """(codec, clockwise rotation, upright width, upright height) for backends that cannot tell (decord)."""
    capture, rotation, turned_by_opencv = open_video(path, threads=1)
    try:
        info = make_info(path, capture, 0, rotation, turned_by_opencv)
    finally:
        capture.release()
    return info.codec, info.rotation, info.width, info.height


def read(path, indices, size, threads: int = 0, info: VideoInfo | None = None) -> tuple[np.ndarray, VideoInfo]:
    """Decode ``indices`` (any order, duplicates allowed) as (T, H, W, 3) uint8 RGB, upright, resized to ``size``."""
    wanted, inverse = unique_sorted_indices(indices)
    capture, rotation, turned_by_opencv = open_video(path, threads)
    try:
        declared = declared_frame_count(capture)
        decoded, real_length = _read_wanted(capture, wanted, declared, size, 0 if turned_by_opencv else rotation)
        own_info = make_info(path, capture, real_length or declared, rotation, turned_by_opencv)
    finally:
        capture.release()
    if info is None:
        info = own_info if own_info.num_frames else make_info_counted(path, threads, own_info)
    frames = np.stack([decoded[i] for i in wanted])[inverse]  # (T, H, W, 3)
    return frames, info


def open_video(path, threads: int):
    """(capture, clockwise rotation, whether OpenCV turns frames upright itself)."""
    threads_prop = getattr(cv2, "CAP_PROP_N_THREADS", None)  # OpenCV >= 4.6
    params = [threads_prop, int(threads)] if threads > 0 and threads_prop is not None else []
    # CAP_FFMPEG explicitly: other OpenCV backends read "name%d.jpg" as an image sequence, and so on.
    capture = cv2.VideoCapture(utf8_name(path), cv2.CAP_FFMPEG, params)
    if not capture.isOpened():
        capture.release()
        raise BackendFailure("cannot open")
    meta = getattr(cv2, "CAP_PROP_ORIENTATION_META", None)  # OpenCV >= 4.5
    if meta is None:
        return capture, 0, True  # such an OpenCV cannot tell the rotation at all
    rotation = normalize_rotation(capture.get(meta))
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    turned_by_opencv = rotation == 0 or capture.get(cv2.CAP_PROP_ORIENTATION_AUTO) > 0
    return capture, rotation, turned_by_opencv


def _read_wanted(capture, wanted: np.ndarray, declared: int, size, rotation: int):
    """Walk forward through the stream: ({index: frame}, the stream's real length if the walk hit its end)."""
    decoded: dict[int, np.ndarray] = {}
    position = -1  # index of the frame the next grab() follows
    last_grabbed = -1  # index of the last frame grab() really returned
    keyframes = _KeyframeSpacing()
    for target in (int(i) for i in wanted):
        if target - position - 1 > keyframes.interval:
            capture.set(cv2.CAP_PROP_POS_FRAMES, target)
            position = target - 1
            keyframes.restart()
        while position < target and capture.grab():
            position += 1
            last_grabbed = position
            keyframes.saw(position, KEYFRAME_PROP is not None and capture.get(KEYFRAME_PROP) > 0)
        if position == target and last_grabbed == target:
            decoded[target] = _retrieve(capture, size, rotation, target)
            continue
        # The stream ended before ``target``: the last real frame stands in for the rest.
        end = last_grabbed + 1 if last_grabbed == position else _frames_in_stream(capture, last_grabbed)
        check_stream_length(end, declared)
        stand_in = _retrieve_at(capture, end - 1, size, rotation)
        decoded.update({int(i): stand_in for i in wanted if int(i) not in decoded})
        return decoded, end
    return decoded, None


class _KeyframeSpacing:
    """The longest keyframe interval grab() has shown so far: a seek costs at most that much decoding."""

    def __init__(self):
        self.interval = ASSUMED_KEYFRAME_INTERVAL
        self._measured = 0
        self._last_keyframe = None

    def saw(self, position: int, is_keyframe: bool) -> None:
        if not is_keyframe:
            return
        if self._last_keyframe is not None:
            self._measured = max(self._measured, position - self._last_keyframe)
            self.interval = self._measured
        self._last_keyframe = position

    def restart(self) -> None:
        """After a seek, positions jump: measure the next interval from the next keyframe."""
        self._last_keyframe = None


def _frames_in_stream(capture, known: int) -> int:
    """How many frames the stream really has, when grab() failed after a seek past frame ``known``."""
    start = max(known, 0)
    capture.set(cv2.CAP_PROP_POS_FRAMES, start)
    count = start
    while capture.grab():
        count += 1
    if count == 0:
        raise BackendFailure("no decodable frame")
    return count


def _retrieve_at(capture, index: int, size, rotation: int) -> np.ndarray:
    """Seek to ``index`` and read it (only used for the last frame of a stream)."""
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    if not capture.grab():
        raise BackendFailure(f"cannot read frame {index}, the last one")
    return _retrieve(capture, size, rotation, index)


def _retrieve(capture, size, rotation: int, index: int) -> np.ndarray:
    """Convert the grabbed frame: INTER_AREA resize (before the colour swap, on fewer pixels), upright, RGB."""
    ok, bgr = capture.retrieve()
    if not ok or bgr is None:
        raise BackendFailure(f"cannot convert frame {index}")
    target = stored_size(size, rotation)
    if target is not None and bgr.shape[:2] != target:
        bgr = cv2.resize(bgr, (target[1], target[0]), interpolation=cv2.INTER_AREA)
    return turn_upright(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), rotation)


def declared_frame_count(capture) -> int:
    """OpenCV's frame count (the container's, or its duration * fps); 0 where it is missing or absurd."""
    count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    if not math.isfinite(count) or count <= 0 or count > MAX_PLAUSIBLE_FRAMES:
        return 0
    return int(round(count))


def make_info_counted(path, threads: int, info: VideoInfo) -> VideoInfo:
    """``info`` with the frame count established by grabbing every frame (decodes the whole stream)."""
    capture, _, _ = open_video(path, threads)
    try:
        count = 0
        while capture.grab():
            count += 1
    finally:
        capture.release()
    if count == 0:
        raise BackendFailure("no decodable frame")
    return dataclasses.replace(info, num_frames=count, duration=count / info.fps)


def make_info(path, capture, num_frames: int, rotation: int, turned_by_opencv: bool) -> VideoInfo:
    """VideoInfo in the upright orientation."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if math.isfinite(fps) and 0 < fps < 10_000 else FALLBACK_FPS
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if not turned_by_opencv and rotation % 180:
        width, height = height, width  # OpenCV reports the stored size when it does not turn frames
    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC))
    tag = "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4)).strip().lower() if fourcc > 0 else ""
    return VideoInfo(
        path=str(path), num_frames=int(num_frames), fps=float(fps), duration=num_frames / fps, width=width,
        height=height, rotation=rotation, codec=FOURCC_CODECS.get(tag, tag or "unknown"), backend=NAME,
    )
