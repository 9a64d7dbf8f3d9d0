"""Keyframe-snapped sampling: keyframe positions, the snap rule, one-open reads, and the decoding it saves."""
from __future__ import annotations

import numpy as np
import pytest

from io_frames import numbered_clip, read_frame_number
from vidlstm.data.clips import EXACT_SAMPLING, KEYFRAME_SAMPLING, load_clip
from vidlstm.io import available_backends, keyframe_positions, read_frames, read_sampled
from vidlstm.io import pyav_backend
from vidlstm.io.sampling import sample_segment_indices, snap_to_keyframes

KEYFRAME_INTERVAL = 12


@pytest.fixture
def gop_clip(make_h264):
    """60 numbered frames, a keyframe every 12 (0, 12, 24, 36, 48), x264's default B-frames."""
    return make_h264(numbered_clip(60, 48, 64), keyframe_interval=KEYFRAME_INTERVAL)


def segment_bounds(num_frames: int, num_segments: int):
    edges = np.arange(num_segments + 1) * num_frames / num_segments
    return np.floor(edges[:-1]).astype(int), np.maximum(np.floor(edges[1:]).astype(int), np.floor(edges[:-1]).astype(int) + 1)


@pytest.mark.parametrize("num_frames,num_segments", [(60, 4), (60, 8), (1500, 16), (125, 16), (5, 16)])
def test_snapped_indices_stay_in_their_segment_and_are_keyframes_where_one_is_there(num_frames, num_segments):
    keyframes = np.arange(0, num_frames, 50 if num_frames > 100 else KEYFRAME_INTERVAL)
    snapped = sample_segment_indices(num_frames, num_segments, keyframes=keyframes)
    centres = sample_segment_indices(num_frames, num_segments)
    starts, ends = segment_bounds(num_frames, num_segments)
    assert snapped.shape == (num_segments,) and np.all(np.diff(snapped) >= 0)
    for index, centre, start, end in zip(snapped, centres, starts, ends):
        assert start <= index < max(end, start + 1)
        inside = keyframes[(keyframes >= start) & (keyframes < end)]
        if inside.size:
            assert index in inside
            assert abs(index - (start + end) / 2) <= np.min(np.abs(inside - (start + end) / 2)) + 0.5
        else:
            assert index == centre  # no keyframe in the segment: its centre frame stays


def test_snap_keeps_the_given_frame_of_a_segment_without_keyframe():
    assert snap_to_keyframes([5, 15, 25], 30, 3, keyframes=[0, 12]).tolist() == [0, 12, 25]


def test_training_never_snaps():
    with pytest.raises(ValueError, match="evaluation only"):
        sample_segment_indices(100, 4, train=True, rng=0, keyframes=[0, 50])


@pytest.mark.parametrize("backend", [b for b in ("pyav", "decord") if b in available_backends()])
def test_keyframe_positions_come_from_the_packet_index(gop_clip, backend):
    assert keyframe_positions(gop_clip, backends=(backend,)).tolist() == [0, 12, 24, 36, 48]


def test_opencv_knows_no_keyframes(gop_clip):
    if "opencv" not in available_backends():
        pytest.skip("opencv not installed")
    assert keyframe_positions(gop_clip, backends=("opencv",)) is None


@pytest.mark.parametrize("backend", available_backends())
def test_load_clip_snaps_for_inference_and_the_frames_are_the_ones_named(gop_clip, backend):
    clip = load_clip(gop_clip, 4, 32, backends=(backend,), keyframe_snap=True)
    expected_sampling = EXACT_SAMPLING if backend == "opencv" else KEYFRAME_SAMPLING
    assert clip.sampling == expected_sampling
    if backend != "opencv":
        assert clip.indices.tolist() == [12, 24, 36, 48]  # one keyframe inside each 15-frame segment
    else:
        assert clip.indices.tolist() == sample_segment_indices(60, 4).tolist()
    assert [read_frame_number(frame) for frame in clip.frames] == clip.indices.tolist()


def test_load_clip_for_training_or_offsets_ignores_snapping(gop_clip):
    trained = load_clip(gop_clip, 4, 32, train=True, rng=3, keyframe_snap=True)
    assert trained.sampling == EXACT_SAMPLING
    assert trained.indices.tolist() == sample_segment_indices(60, 4, train=True, rng=3).tolist()
    shifted = load_clip(gop_clip, 4, 32, offset_fraction=0.25, keyframe_snap=True)
    assert shifted.sampling == EXACT_SAMPLING and shifted.indices.tolist() == [3, 18, 33, 48]


def count_decoded_frames(monkeypatch) -> list[int]:
    """Count every frame PyAV's walk gets out of the decoder (skipped non-reference frames never come out)."""
    counter = [0]
    real = pyav_backend._decode_from_here

    def counting(*args, **kwargs):
        for frame in real(*args, **kwargs):
            counter[0] += 1
            yield frame

    monkeypatch.setattr(pyav_backend, "_decode_from_here", counting)
    return counter


def test_snapped_sampling_decodes_fewer_frames(monkeypatch, gop_clip):
    counter = count_decoded_frames(monkeypatch)
    exact = load_clip(gop_clip, 4, 32, backends=("pyav",))
    exact_count, counter[0] = counter[0], 0
    snapped = load_clip(gop_clip, 4, 32, backends=("pyav",), keyframe_snap=True)
    assert exact.indices.tolist() == [7, 22, 37, 52]
    assert [read_frame_number(f) for f in exact.frames] == [7, 22, 37, 52]
    # Snapped: each keyframe plus the B-frame reorder delay; exact: the whole walk up to frame 52.
    assert counter[0] <= exact_count / 2, (counter[0], exact_count)


def test_skipping_non_reference_frames_changes_no_wanted_frame(monkeypatch, gop_clip):
    wanted = [1, 5, 10, 11, 23, 30, 41, 59]
    counter = count_decoded_frames(monkeypatch)
    skipping = read_frames(gop_clip, wanted, size=None, backends=("pyav",)).frames
    skipped_count, counter[0] = counter[0], 0
    real_init = pyav_backend._IndexedWalk.__init__
    monkeypatch.setattr(pyav_backend._IndexedWalk, "__init__",
                        lambda self, container, stream, index, keep_pts=None: real_init(self, container, stream, index))
    every = read_frames(gop_clip, wanted, size=None, backends=("pyav",)).frames
    assert np.array_equal(skipping, every)  # the skipped frames are references of nothing: bit-identical
    assert [read_frame_number(f) for f in skipping] == wanted
    assert skipped_count < counter[0], (skipped_count, counter[0])


def test_read_sampled_opens_the_file_once(monkeypatch, gop_clip):
    opened = []
    real_open = pyav_backend.av.open
    monkeypatch.setattr(pyav_backend.av, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    seen = []

    def choose(info, keyframes):
        seen.append((info.num_frames, None if keyframes is None else keyframes.tolist()))
        return [0, 30]

    result = read_sampled(gop_clip, choose, size=(32, 32), backends=("pyav",))
    assert len(opened) == 1
    assert seen == [(60, [0, 12, 24, 36, 48])]
    assert result.indices.tolist() == [0, 30] and result.info.num_frames == 60
    assert [read_frame_number(f) for f in result.frames] == [0, 30]
