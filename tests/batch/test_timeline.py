"""Per-step probabilities -> segments: merged where the label stays, tiling the video, mean scores."""
from __future__ import annotations

import numpy as np
import pytest

from vidlstm.batch.timeline import steps_to_segments


def test_runs_of_the_same_label_become_one_segment():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.6, 0.4]])
    timestamps = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    segments = steps_to_segments(probs, timestamps, ["walk", "run"], duration=2.4)
    assert segments == [
        {"start": 0.0, "end": 1.0, "label": "walk", "score": 0.85},
        {"start": 1.0, "end": 2.0, "label": "run", "score": 0.65},
        {"start": 2.0, "end": 2.4, "label": "walk", "score": 0.6},
    ]


def test_single_label_covers_everything_and_empty_gives_nothing():
    probs = np.tile([[0.2, 0.8]], (4, 1))
    segments = steps_to_segments(probs, np.arange(4) * 0.5, ["a", "b"], duration=2.0)
    assert segments == [{"start": 0.0, "end": 2.0, "label": "b", "score": 0.8}]
    assert steps_to_segments(np.zeros((0, 2)), np.zeros(0), ["a", "b"], 1.0) == []


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="disagree"):
        steps_to_segments(np.zeros((3, 2)), np.zeros(4), ["a", "b"], 1.0)
