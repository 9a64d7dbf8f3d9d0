"""Frame samplers: range, order, count, determinism, segment membership, spacing, window coverage, padding."""
from __future__ import annotations

import numpy as np
import pytest

from vidlstm.io.sampling import pad_indices, sample_fixed_fps_indices, sample_segment_indices, sliding_window_indices


@pytest.mark.parametrize("num_frames", [1, 3, 15, 16, 17, 100, 301])
@pytest.mark.parametrize("train", [False, True])
def test_segment_indices_are_sorted_in_range_and_one_per_segment(num_frames, train):
    indices = sample_segment_indices(num_frames, 16, train=train, rng=0)
    assert indices.shape == (16,) and indices.dtype == np.int64
    assert np.all(np.diff(indices) >= 0)
    assert indices.min() >= 0 and indices.max() < num_frames


def test_segment_indices_take_centres_when_evaluating():
    # 100 frames in 4 segments of 25: centres 12.5, 37.5, ... floor to 12, 37, 62, 87.
    assert sample_segment_indices(100, 4).tolist() == [12, 37, 62, 87]
    assert np.array_equal(sample_segment_indices(100, 4), sample_segment_indices(100, 4))


def test_segment_indices_are_random_when_training_but_stay_inside_their_segment():
    rng = np.random.default_rng(0)
    draws = np.stack([sample_segment_indices(100, 4, train=True, rng=rng) for _ in range(200)])  # (200, 4)
    for segment in range(4):
        assert draws[:, segment].min() >= 25 * segment and draws[:, segment].max() < 25 * (segment + 1)
        assert len(np.unique(draws[:, segment])) > 15  # spread over the segment, not a fixed offset
    assert not np.array_equal(draws[0], draws[1])


def test_segment_indices_repeat_frames_of_short_clips():
    assert sample_segment_indices(3, 8).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert sample_segment_indices(3, 8, train=True, rng=1).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert sample_segment_indices(1, 4).tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize("bad", [(0, 4), (10, 0), (-1, 4)])
def test_segment_indices_reject_empty_requests(bad):
    with pytest.raises(ValueError, match="must be positive"):
        sample_segment_indices(*bad)


def test_fixed_fps_indices_are_evenly_spaced_in_time():
    # 30 fps video, 5 fps target: every 6th frame, 10 s -> 50 frames.
    indices = sample_fixed_fps_indices(300, 30.0, 5.0)
    assert indices.tolist() == list(range(0, 300, 6))
    # A non-integer step (25 fps -> 10 fps = every 2.5 frames) stays within one frame of the ideal times.
    indices = sample_fixed_fps_indices(250, 25.0, 10.0)
    assert len(indices) == 100 and np.all(np.abs(indices - np.arange(100) * 2.5) < 1)


def test_fixed_fps_indices_spread_over_the_whole_video_when_capped():
    indices = sample_fixed_fps_indices(3000, 30.0, 5.0, max_frames=10)
    assert len(indices) == 10
    assert indices[0] == 0 and indices[-1] >= 2700  # the last sample is in the last tenth
    assert len(set(np.diff(indices).tolist())) == 1  # still evenly spaced


def test_fixed_fps_indices_repeat_frames_when_the_target_rate_is_higher():
    indices = sample_fixed_fps_indices(10, 5.0, 10.0)
    assert indices.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9]


def test_sliding_windows_cover_the_whole_video_with_full_length_windows():
    # 10 s at 30 fps, 4 s windows every 3 s: starts 0, 3, then one ending at 10 s.
    windows = sliding_window_indices(300, 30.0, 4.0, 3.0, 8)
    assert [(start, end) for start, end, _ in windows] == [(0.0, 4.0), (3.0, 7.0), (6.0, 10.0)]
    for start, end, indices in windows:
        assert indices.shape == (8,) and np.all(np.diff(indices) >= 0)
        assert start * 30 <= indices.min() and indices.max() < end * 30
    covered = np.zeros(300, bool)
    for start, end, _ in windows:
        covered[int(start * 30):int(end * 30)] = True
    assert covered.all()


def test_sliding_windows_of_a_short_video_is_one_window():
    windows = sliding_window_indices(20, 10.0, 4.0, 1.0, 4)
    assert len(windows) == 1
    start, end, indices = windows[0]
    assert (start, end) == (0.0, 2.0) and indices.tolist() == [2, 7, 12, 17]


def test_pad_indices_repeats_the_last_index_and_masks_the_padding():
    padded, mask = pad_indices([3, 5, 9], 6)
    assert padded.tolist() == [3, 5, 9, 9, 9, 9]
    assert mask.tolist() == [True, True, True, False, False, False]
    padded, mask = pad_indices(np.array([1, 2]), 2)
    assert padded.tolist() == [1, 2] and mask.all()


def test_pad_indices_rejects_what_it_cannot_pad():
    with pytest.raises(ValueError, match="empty"):
        pad_indices([], 4)
    with pytest.raises(ValueError, match="do not fit"):
        pad_indices([1, 2, 3], 2)
