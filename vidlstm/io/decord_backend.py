"""decord backend: one get_batch() over the distinct wanted indices, resized inside decord's filter graph."""
from __future__ import annotations

import re

import decord
import numpy as np

from vidlstm.io.backend_base import (BackendFailure, DamagedStream, NoVideoStream, one_line, unique_sorted_indices,
                                     utf8_name)
from vidlstm.io.info import VideoInfo
from vidlstm.io.quiet import native_stderr_silenced, quiet_decord

NAME = "decord"
quiet_decord(decord)  # our one-line reasons, not FFmpeg's log lines (VIDLSTM_DECODER_LOGS=1 keeps those)
# decord's errors carry C++ source locations ("[18:02:26] /.../video_reader.cc:270: ...").
_SOURCE_LOCATION = re.compile(r"\[\d\d:\d\d:\d\d\]\s*\S+:\d+:\s*")
# FFmpeg's AVERROR_INVALIDDATA, which decord prints when the decoder rejects a packet, and FFmpeg's words for it.
_INVALID_DATA, _INVALID_DATA_TEXT = "-1094995529", "Invalid data found when processing input"
# decord's copy of a decoded frame into the batch found another size than it allocated (damaged data, 1x1 frames).
_SIZE_MISMATCH = re.compile(r"from_size == to_size \((\d+) vs\. (\d+)\)")
_UNSCALABLE: set[tuple[int, int]] = set()
"""Output sizes decord's scaler gets wrong. Asked for 48x48 or 72x72 (the default model's size among them), decord
0.6 fills a 64x48 or 96x72 frame into the 48x48 or 72x72 buffer it allocated and fails, on every file tried; 32, 40,
56, 64, 80, 96, 112 and 224 work. Such a size is learnt from its first failure: from then on frames are decoded at
the video's own size and resized here (INTER_AREA, as the OpenCV backend does)."""


class _ScalerMismatch(BackendFailure):
    """decord handed back a frame of another size than the one it allocated."""


def probe(path, threads: int = 0) -> VideoInfo:
    """decord's packet-exact frame count and its rate; codec, rotation and size from ``stream_tags``."""
    reader = open_video(path, threads, size=None)
    return make_info(path, len(reader), reader.get_avg_fps(), stream_tags(path, reader))


def read(path, indices, size, threads: int = 0, info: VideoInfo | None = None,
         reader=None) -> tuple[np.ndarray, VideoInfo]:
    """Decode ``indices`` (any order, duplicates allowed) as (T, H, W, 3) uint8 RGB, upright, resized to ``size``.

    decord 0.6 turns rotated videos upright itself (a transpose filter ahead of its scaler, so
    ``width``/``height`` are the upright output size): nothing to turn here.
    """
    if reader is None:
        return _scaled_here_where_decord_cannot(size, lambda at: _read(path, indices, at, threads, info))
    return _read(path, indices, size, threads, info, reader)


def _read(path, indices, size, threads: int = 0, info: VideoInfo | None = None,
          reader=None) -> tuple[np.ndarray, VideoInfo]:
    wanted, inverse = unique_sorted_indices(indices)
    reader = reader if reader is not None else open_video(path, threads, size)
    num_frames = len(reader)
    if num_frames <= 0:
        raise BackendFailure("no frames")
    # decord indexes every packet, so its count is the real end: later indices get the last frame.
    in_stream = np.minimum(wanted, num_frames - 1)
    if _seeks_by_timestamp(reader, num_frames):
        batch = _decode_batch(reader, in_stream.tolist())  # (U, H, W, 3)
    else:
        batch = _decode_in_sequence(reader, in_stream.tolist())
    if batch.shape[0] != len(wanted) or batch.ndim != 4 or batch.shape[-1] != 3:
        raise BackendFailure(f"returned frames of shape {batch.shape} for {len(wanted)} asked")
    if info is None:
        info = make_info(path, num_frames, reader.get_avg_fps(), stream_tags(path, reader if size is None else None))
    return np.ascontiguousarray(batch[inverse]), info


def read_sampled(path, choose, size, threads: int = 0) -> tuple[np.ndarray, VideoInfo, np.ndarray]:
    """One reader for everything: ``choose(info, keyframes)`` picks indices from decord's count and key indices."""
    return _scaled_here_where_decord_cannot(size, lambda at: _read_sampled(path, choose, at, threads))


def _scaled_here_where_decord_cannot(size, decode):
    """``decode(size)``'s result, decoded at the video's own size and resized here where ``size`` is one that
    decord's scaler gets wrong (``_UNSCALABLE``); the frames come first in the result."""
    if size is None:
        return decode(None)
    if tuple(size) not in _UNSCALABLE:
        try:
            return decode(size)
        except _ScalerMismatch:
            _UNSCALABLE.add(tuple(size))
    frames, *rest = decode(None)
    import cv2

    height, width = size
    if frames.shape[1:3] != (height, width):
        frames = np.stack([cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA) for frame in frames])
    return (frames, *rest)


def _read_sampled(path, choose, size, threads: int = 0) -> tuple[np.ndarray, VideoInfo, np.ndarray]:
    reader = open_video(path, threads, size)
    num_frames = len(reader)
    if num_frames <= 0:
        raise BackendFailure("no frames")
    info = make_info(path, num_frames, reader.get_avg_fps(), stream_tags(path, reader if size is None else None))
    indices = np.asarray(choose(info, keyframe_positions(reader)), dtype=np.int64)  # (T,)
    frames, _ = _read(path, indices, size, threads, info, reader=reader)
    return frames, info, indices


def keyframe_positions(path_or_reader) -> np.ndarray | None:
    """(K,) int64 keyframe indices from decord's packet index (None where it has none)."""
    reader = path_or_reader if isinstance(path_or_reader, decord.VideoReader) else open_video(path_or_reader, 1, None)
    try:
        keys = np.asarray(reader.get_key_indices(), dtype=np.int64)
    except Exception:  # noqa: BLE001 - no key index just means no snapping
        return None
    return keys if keys.size else None


def open_video(path, threads: int, size):
    """A decord VideoReader that scales to ``size`` (height, width) while decoding."""
    height, width = size if size is not None else (-1, -1)
    name = utf8_name(path)
    try:
        with native_stderr_silenced():  # decord prints "ERROR opening: ..." itself, past any log level
            return decord.VideoReader(name, ctx=decord.cpu(0), width=width, height=height,
                                      num_threads=threads)
    except Exception as err:  # decord raises RuntimeError / DECORDError for every failure
        raise _failure(err) from None


def _decode_batch(reader, indices: list[int]) -> np.ndarray:
    try:
        batch = reader.get_batch(indices)
    except Exception as err:
        raise _failure(err) from None
    # decord's bridge is process-wide state: another library may have switched it to torch.
    return batch.asnumpy() if hasattr(batch, "asnumpy") else np.asarray(batch.numpy() if hasattr(batch, "numpy") else batch)


def _seeks_by_timestamp(reader, num_frames: int) -> bool:
    """Whether decord's frame timestamps can find frames: finite and strictly increasing.

    decord seeks to a frame by its timestamp and counts frames from the keyframe it meant to land on. Where
    the container states none (H.264 in AVI), every frame's timestamp is the same made-up number, the seek
    lands at the start, and frames after the second keyframe come back shifted by it, silently (measured:
    frame 59 of a 64-frame AVI read as frame 27).
    """
    try:
        times = np.asarray(reader.get_frame_timestamp(list(range(num_frames))), dtype=np.float64)[:, 0]
    except Exception:  # noqa: BLE001 - no timestamps at all: read in sequence
        return False
    return bool(np.all(np.isfinite(times)) and times[0] > -1e6 and np.all(np.diff(times) > 0))


def _decode_in_sequence(reader, indices: list[int]) -> np.ndarray:
    """(U, H, W, 3) frames at ``indices`` (sorted), decoded front to back without a seek."""
    wanted, frames = set(indices), {}
    try:
        reader.seek(0)
        for position in range(indices[-1] + 1):
            frame = reader.next()
            if position in wanted:
                frames[position] = frame.asnumpy() if hasattr(frame, "asnumpy") else np.asarray(frame)
    except StopIteration:
        raise BackendFailure(f"stream ended after {len(frames)} of the wanted frames") from None
    except Exception as err:
        raise _failure(err) from None
    return np.stack([frames[i] for i in indices])


def stream_tags(path, reader=None) -> tuple[str, int, int, int]:
    """(codec, clockwise rotation, upright width, upright height): decord exposes none but the size.

    Taken from OpenCV (opens the container, decodes nothing) or PyAV where installed; failing both,
    the size comes from decoding frame 0 through ``reader`` and codec/rotation stay unknown.
    """
    from vidlstm.io.registry import load_backend  # late: the registry imports this module

    for name in ("opencv", "pyav"):
        backend = load_backend(name)
        if backend is None:
            continue
        try:
            return backend.stream_tags(path)
        except BackendFailure:
            continue
    if reader is None:
        reader = open_video(path, 1, None)
    height, width = _decode_batch(reader, [0]).shape[1:3]
    return "unknown", 0, int(width), int(height)


def make_info(path, num_frames: int, fps: float, tags: tuple[str, int, int, int]) -> VideoInfo:
    codec, rotation, width, height = tags
    return VideoInfo(
        path=str(path), num_frames=int(num_frames), fps=float(fps), duration=num_frames / fps if fps else 0.0,
        width=int(width), height=int(height), rotation=int(rotation), codec=codec, backend=NAME,
    )


def _failure(err: Exception) -> BackendFailure:
    """A short BackendFailure from decord's multi-line, source-located error text."""
    text = _SOURCE_LOCATION.sub("", " ".join(str(err).split()))
    if "av_read_frame failed" in text:  # the demuxer's, not the decoder's: the words pyav has for it
        invalid = _INVALID_DATA.lstrip("-") in text  # printed without its minus here
        return DamagedStream("container unreadable" + (f" ({_INVALID_DATA_TEXT})" if invalid else ""))
    if _INVALID_DATA in text or "avcodec_send_packet" in text:
        return DamagedStream(f"decoder rejected data ({_INVALID_DATA_TEXT})")
    if "video stream" in text.lower():
        return NoVideoStream("no video stream")
    if "broken metadata" in text:
        return BackendFailure("cannot measure duration/frame count (broken metadata)")
    mismatch = _SIZE_MISMATCH.search(text)
    if mismatch:
        return _ScalerMismatch(f"a decoded frame has {mismatch[1]} bytes where {mismatch[2]} were allocated")
    if text.startswith("Error reading"):  # decord's Python wrapper hides FFmpeg's reason behind this
        return BackendFailure("cannot open")
    return BackendFailure(one_line(text.split("Stack trace")[0], limit=100))
