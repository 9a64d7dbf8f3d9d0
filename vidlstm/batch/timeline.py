"""Turn per-time-step class probabilities into labelled segments: "what happens when" in a video."""
from __future__ import annotations

import numpy as np


def steps_to_segments(step_probs: np.ndarray, timestamps: np.ndarray, labels, duration: float) -> list[dict]:
    """Consecutive steps with the same top label become one segment ``{"start", "end", "label", "score"}``.

    A segment runs from its first step's timestamp to the next segment's first timestamp (the last one to
    ``duration``), so segments tile the video without gaps; ``score`` is the mean probability of the
    segment's label over its steps.
    """
    step_probs = np.asarray(step_probs, dtype=np.float64)  # (T, C)
    timestamps = np.asarray(timestamps, dtype=np.float64)  # (T,)
    if step_probs.ndim != 2 or len(step_probs) != len(timestamps):
        raise ValueError(f"step_probs (T, C) and timestamps (T,) disagree: {step_probs.shape} vs {timestamps.shape}")
    if len(timestamps) == 0:
        return []
    best = step_probs.argmax(axis=1)  # (T,)
    # Indices where the label changes start a new segment.
    starts = np.concatenate([[0], np.flatnonzero(best[1:] != best[:-1]) + 1])
    ends = np.concatenate([starts[1:], [len(best)]])
    end_time = max(float(duration), float(timestamps[-1]))
    segments = []
    for first, stop in zip(starts, ends):
        label_index = int(best[first])
        segments.append({
            "start": round(float(timestamps[first]), 3),
            "end": round(float(timestamps[stop]) if stop < len(timestamps) else end_time, 3),
            "label": labels[label_index],
            "score": round(float(step_probs[first:stop, label_index].mean()), 6),
        })
    return segments
