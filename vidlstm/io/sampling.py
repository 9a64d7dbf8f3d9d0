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
    if keyframes is not None:
        return snap_to_keyframes(num_frames, num_segments, keyframes)
    return np.minimum(indices, num_frames - 1).astype(np.int64)


# What decoding a keyframe costs, in frames walked forward inside a GOP (measured on x264 streams at
# 320x240-1280x720: an I-frame takes 10-15x a P-frame, and the walk skips the B-frames it is not asked
# for, so a walked frame costs about half a P-frame).
KEYFRAME_COST = 20.0


def snap_to_keyframes(num_frames: int, num_segments: int, keyframes, keyframe_cost: float = KEYFRAME_COST) -> np.ndarray:
    """One frame per segment, chosen so that decoding them all costs least: keyframe-aware sampling.

    A keyframe decodes on its own; any other frame needs every frame since the keyframe before it,
    or since the frame decoded last when that is in the same GOP. Each segment's candidates are its
    first frame (the cheapest to walk to) and its keyframes; a dynamic program over the segments picks
    the sequence with the least cost (``keyframe_cost`` frames per keyframe, one per frame walked),
    ties going to the frame nearest the segment's centre. Training draws a uniformly random frame per
    segment, so any frame of a segment is a fair sample. Returns (num_segments,) int64, sorted, each
    inside its segment.
    """
    keyframes = np.unique(np.asarray(keyframes, dtype=np.int64).reshape(-1))  # sorted, distinct
    if keyframes.size == 0 or keyframes[0] != 0:
        keyframes = np.concatenate([[0], keyframes])  # decoding always works from the very start
    starts, ends, centres = _segment_bounds(num_frames, num_segments)
    gop = lambda frame: int(np.searchsorted(keyframes, frame, side="right")) - 1  # noqa: E731 - GOP of a frame
    costs: list[dict[int, tuple[float, int]]] = []  # per segment: frame -> (least cost up to it, frame before)
    for segment in range(num_segments):
        inside = keyframes[(keyframes >= starts[segment]) & (keyframes < ends[segment])]
        candidates = {int(starts[segment])}
        if inside.size:  # any keyframe costs the same; the last one shortens the walk into the next segment
            nearest = inside[np.argmin(np.abs(inside - centres[segment]))]
            candidates |= {int(inside[0]), int(nearest), int(inside[-1])}
        row = {}
        for frame in sorted(candidates):
            # A tie-breaker well under one walked frame: nearer the centre wins among equal costs.
            off_centre = 1e-3 * abs(frame - centres[segment]) / max(1, ends[segment] - starts[segment])
            from_keyframe = keyframe_cost + frame - keyframes[gop(frame)]
            if not costs:
                row[frame] = (from_keyframe + off_centre, -1)
                continue
            steps = [(cost + (0.0 if before == frame else frame - before if gop(before) == gop(frame)
                              else from_keyframe), before)
                     for before, (cost, _) in costs[-1].items() if before <= frame]
            cost, before = min(steps)
            row[frame] = (cost + off_centre, before)
        costs.append(row)
    frame = min(costs[-1], key=lambda f: costs[-1][f][0])
    chosen = [frame]
    for row in reversed(costs[1:]):
        frame = row[frame][1]
        chosen.append(frame)
    return np.minimum(np.asarray(chosen[::-1], dtype=np.int64), num_frames - 1)


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
