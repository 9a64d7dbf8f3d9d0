"""Frame samplers: map a video's frame count (and rate) to the frame indices a model sees."""
from __future__ import annotations

import math

import numpy as np


def sample_segment_indices(num_frames: int, num_segments: int, train: bool = False, rng=None,
                           keyframes=None) -> np.ndarray:
    """TSN-style sampling: split [0, num_frames) into ``num_segments`` equal segments, one frame from each.

    Evaluating takes each segment's centre frame (deterministic); training takes a uniformly
    random frame inside each segment (``rng``: a numpy Generator or seed). With fewer frames than
    segments, segments share frames, so frames repeat. ``keyframes`` (evaluation only): snap each
    segment's frame to its keyframe nearest the centre, see ``snap_to_keyframes``.
    Returns (num_segments,) int64, sorted.
    """
    if train and keyframes is not None:
        # Training must see every frame of a segment with equal chance, or it learns keyframe statistics.
        raise ValueError("keyframe snapping is for evaluation only: training draws a random frame per segment")
    starts, ends, centres = _segment_bounds(num_frames, num_segments)
    if train:
        rng = np.random.default_rng(rng)
        indices = rng.integers(starts, ends)  # (T,) one draw per segment
    else:
        indices = np.clip(centres, starts, ends - 1)
    indices = np.minimum(indices, num_frames - 1).astype(np.int64)
    if keyframes is not None:
        indices = snap_to_keyframes(indices, num_frames, num_segments, keyframes)
    return indices


def snap_to_keyframes(indices, num_frames: int, num_segments: int, keyframes) -> np.ndarray:
    """Replace each segment's frame by the keyframe nearest the segment's centre, where the segment holds one.

    A keyframe decodes on its own, while any other frame needs every frame since the keyframe before
    it (with a keyframe every 2 s, ~25 frames on average): this is what makes sparse decoding cheap.
    Training draws a uniformly random frame per segment, so any frame of a segment is a fair sample.
    A segment without a keyframe keeps its frame from ``indices`` (one per segment, as
    ``sample_segment_indices`` gives). Returns (num_segments,) int64, sorted, each inside its segment.
    """
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if indices.size != num_segments:
        raise ValueError(f"expected one index per segment ({num_segments}), got {indices.size}")
    keyframes = np.unique(np.asarray(keyframes, dtype=np.int64).reshape(-1))  # sorted, distinct
    starts, ends, centres = _segment_bounds(num_frames, num_segments)
    first = np.searchsorted(keyframes, starts, side="left")  # (T,) first keyframe >= start
    stop = np.searchsorted(keyframes, ends, side="left")  # (T,) first keyframe >= end
    snapped = indices.copy()
    for segment in np.nonzero(stop > first)[0]:
        inside = keyframes[first[segment]:stop[segment]]
        snapped[segment] = inside[np.argmin(np.abs(inside - centres[segment]))]  # ties: the earlier one
    return np.minimum(snapped, num_frames - 1)


def _segment_bounds(num_frames: int, num_segments: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, exclusive ends, centres) of the ``num_segments`` equal segments of [0, num_frames), each (T,) int64."""
    _check_positive(num_frames=num_frames, num_segments=num_segments)
    edges = np.arange(num_segments + 1, dtype=np.float64) * (num_frames / num_segments)
    starts = np.floor(edges[:-1]).astype(np.int64)  # (T,)
    # A segment shorter than one frame still owns the frame it starts in.
    ends = np.maximum(np.floor(edges[1:]).astype(np.int64), starts + 1)  # (T,) exclusive
    centres = np.floor((edges[:-1] + edges[1:]) / 2).astype(np.int64)  # (T,)
    return starts, ends, centres


def sample_fixed_fps_indices(num_frames: int, fps: float, target_fps: float, max_frames: int | None = None) -> np.ndarray:
    """Frames evenly spaced in time at ``target_fps``, starting at frame 0 (time-faithful: upsampling repeats frames).

    When that gives more than ``max_frames``, the rate drops so that ``max_frames`` frames still
    span the whole video (a long video is summarised, not cut). Returns (N,) int64, sorted.
    """
    _check_positive(num_frames=num_frames, fps=fps, target_fps=target_fps)
    count = max(1, math.ceil(num_frames * target_fps / fps - 1e-9))
    if max_frames is not None:
        _check_positive(max_frames=max_frames)
        count = min(count, max_frames)
    step = max(num_frames * 1.0 / count, fps / target_fps) if count > 1 else 0.0  # frames per sample
    indices = np.floor(np.arange(count) * step + 1e-9).astype(np.int64)
    return np.minimum(indices, num_frames - 1)


def sliding_window_indices(num_frames: int, fps: float, window_seconds: float, stride_seconds: float,
                           frames_per_window: int) -> list[tuple[float, float, np.ndarray]]:
    """Windows of ``window_seconds`` every ``stride_seconds``, each with ``frames_per_window`` segment-sampled frames.

    Returns [(start_s, end_s, indices (frames_per_window,) int64)]. Every window is full length and
    together they cover the whole video: the last window ends at the video's end (so it may overlap
    its neighbour more than ``stride_seconds`` says); a video shorter than one window gets one window.
    """
    _check_positive(num_frames=num_frames, fps=fps, window_seconds=window_seconds, stride_seconds=stride_seconds,
                    frames_per_window=frames_per_window)
    duration = num_frames / fps
    if duration <= window_seconds:
        starts = [0.0]
    else:
        last_start = duration - window_seconds
        count = int(math.floor(last_start / stride_seconds + 1e-9)) + 1
        starts = [k * stride_seconds for k in range(count)]
        if last_start - starts[-1] > 1e-9:
            starts.append(last_start)
    windows = []
    for start in starts:
        end = min(start + window_seconds, duration)
        first = min(int(math.floor(start * fps + 1e-9)), num_frames - 1)
        stop = max(min(int(math.ceil(end * fps - 1e-9)), num_frames), first + 1)  # exclusive
        indices = first + sample_segment_indices(stop - first, frames_per_window)  # (F,)
        windows.append((float(start), float(end), indices))
    return windows


def pad_indices(indices, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad ``indices`` to ``length`` by repeating the last one; the mask is True on real entries, False on padding.

    Returns ((length,) int64, (length,) bool). Raises ValueError when there are more than ``length``
    indices or none at all (there is nothing to repeat).
    """
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if indices.size == 0:
        raise ValueError("cannot pad an empty index list: there is no last index to repeat")
    if indices.size > length:
        raise ValueError(f"{indices.size} indices do not fit in length {length}")
    padded = np.concatenate([indices, np.full(length - indices.size, indices[-1], dtype=np.int64)])  # (L,)
    mask = np.arange(length) < indices.size  # (L,)
    return padded, mask


def _check_positive(**values) -> None:
    for name, value in values.items():
        if value is None or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
