"""Keyframe-snapped sampling: keyframe positions, the snap rule, one-open reads, and the decoding it saves."""
from __future__ import annotations

import numpy as np
import pytest

from io_frames import numbered_clip, read_frame_number
from vidlstm.data.clips import EXACT_SAMPLING, KEYFRAME_SAMPLING, load_clip
from vidlstm.io import available_backends, keyframe_positions, read_frames, read_sampled
from vidlstm.io import pyav_backend
from vidlstm.io.sampling import KEYFRAME_COST, sample_segment_indices, snap_to_keyframes

KEYFRAME_INTERVAL = 12


@pytest.fixture
def gop_clip(make_h264):
    """60 numbered frames, a keyframe every 12 (0, 12, 24, 36, 48), x264's default B-frames."""
    return make_h264(numbered_clip(60, 48, 64), keyframe_interval=KEYFRAME_INTERVAL)


def segment_bounds(num_frames: int, num_segments: int):
    edges = np.arange(num_segments + 1) * num_frames / num_segments
    return np.floor(edges[:-1]).astype(int), np.maximum(np.floor(edges[1:]).astype(int), np.floor(edges[:-1]).astype(int) + 1)


def decode_cost(indices, keyframes, keyframe_cost=KEYFRAME_COST) -> float:
    """What the walk pays for ``indices`` (sorted): a keyframe per GOP entered, one per frame walked inside it."""
    keyframes = np.unique(np.concatenate([[0], keyframes]))
    gop = lambda frame: np.searchsorted(keyframes, frame, side="right") - 1  # noqa: E731
    cost, before = 0.0, None
    for frame in indices:
        if before is not None and frame == before:
            continue
        if before is not None and gop(before) == gop(frame):
            cost += frame - before
        else:
            cost += keyframe_cost + frame - keyframes[gop(frame)]
        before = frame
    return cost


@pytest.mark.parametrize("num_frames,num_segments,interval",
                         [(60, 4, 12), (60, 8, 12), (1500, 16, 50), (500, 16, 50), (250, 16, 50), (125, 16, 50),
                          (35, 16, 250), (5, 16, 50)])
def test_keyframe_aware_sampling_keeps_one_frame_per_segment_and_costs_least(num_frames, num_segments, interval):
    keyframes = np.arange(0, num_frames, interval)
    chosen = sample_segment_indices(num_frames, num_segments, keyframes=keyframes)
    centres = sample_segment_indices(num_frames, num_segments)
    starts, ends = segment_bounds(num_frames, num_segments)
    assert chosen.shape == (num_segments,) and np.all(np.diff(chosen) >= 0)
    assert np.all((starts <= chosen) & (chosen < np.maximum(ends, starts + 1)))  # any frame of a segment is fair
    # Never dearer than the segment centres, nor than each segment's keyframe nearest its centre (the rule before).
    nearest = []
    for centre, start, end in zip(centres, starts, ends):
        inside = keyframes[(keyframes >= start) & (keyframes < end)]
        nearest.append(inside[np.argmin(np.abs(inside - (start + end) / 2))] if inside.size else centre)
    cost = decode_cost(chosen, keyframes)
    assert cost <= decode_cost(centres, keyframes) and cost <= decode_cost(nearest, keyframes)


def test_keyframe_aware_sampling_examples():
    # One GOP per clip (x264's default keyint, short clip): each segment's first frame, the shortest walk.
    assert snap_to_keyframes(35, 4, keyframes=[0]).tolist() == [0, 8, 17, 26]
    # A keyframe in the segment is taken when walking to the segment's start would cost more.
    assert snap_to_keyframes(300, 3, keyframes=[0, 120, 250]).tolist() == [0, 120, 250]
    # Walking on from the keyframe just before is cheaper than decoding another keyframe.
    assert snap_to_keyframes(30, 3, keyframes=[0, 12]).tolist() == [0, 12, 20]
    # Among equal costs, the frame nearest the centre (a long segment holding several keyframes).
    assert snap_to_keyframes(300, 1, keyframes=[0, 50, 100, 150, 200, 250]).tolist() == [150]


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
        # Keyframes 12 and 36, each followed by a short walk into the next segment (3 and 9 frames).
        assert clip.indices.tolist() == [12, 15, 36, 45]
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


def test_the_decoder_is_drained_where_the_walk_seeks_next(monkeypatch, gop_clip):
    """Keyframes 12 frames apart, each one wanted: after each keyframe's packet the decoder gives up the
    frame it holds instead of decoding the next packets to push it out; the frames are the same."""
    fed = []
    real = pyav_backend._decode_from_here

    class CountingContainer:
        def __init__(self, container):
            self.container = container

        def demux(self, stream):
            for packet in self.container.demux(stream):
                fed.append(packet.pts)
                yield packet

    monkeypatch.setattr(pyav_backend, "_decode_from_here",
                        lambda container, *args: real(CountingContainer(container), *args))
    wanted = [0, 24, 48]  # keyframes; from one to the next a seek skips 23 frames
    drained = read_frames(gop_clip, wanted, size=None, backends=("pyav",)).frames
    drained_fed, fed[:] = list(fed), []
    real_up_to = pyav_backend._IndexedWalk.frames_up_to
    monkeypatch.setattr(pyav_backend._IndexedWalk, "frames_up_to",
                        lambda self, target, drain=False: real_up_to(self, target, drain=False))
    pushed = read_frames(gop_clip, wanted, size=None, backends=("pyav",)).frames
    assert np.array_equal(drained, pushed)
    assert [read_frame_number(f) for f in drained] == wanted
    assert len(drained_fed) == 3, drained_fed  # one packet per wanted keyframe, nothing after it
    assert len(fed) > 3, fed  # x264's B-frames hold each keyframe back until later packets push it out


def test_a_frame_the_drained_decoder_never_gives_is_an_error_not_a_stand_in(monkeypatch, gop_clip):
    real = pyav_backend._decode_from_here
    lost_pts = []

    def losing(container, stream, keep_pts, walk=None):
        lost_pts[:] = lost_pts or [int(walk.index.pts[24])]
        return (frame for frame in real(container, stream, keep_pts, walk) if frame.pts != lost_pts[0])

    monkeypatch.setattr(pyav_backend, "_decode_from_here", losing)
    with pytest.raises(pyav_backend.BackendFailure, match="cannot seek to frame 24"):
        pyav_backend.read(gop_clip, [0, 24, 48], size=None)
