"""Every installed backend against the source frames and against every other backend, on generated clips."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from io_frames import closest_source_frame, mean_abs_diff, numbered_clip, read_frame_number, resize_area
from vidlstm.io import available_backends, probe, read_frames

BACKENDS = available_backends()
pytestmark = pytest.mark.skipif(not BACKENDS, reason="no decoder backend installed")

# H.264 at crf 23 on these synthetic clips: ~3 grey levels from the source, ~9+ from a neighbour frame.
LOSSY_NATIVE_TOLERANCE = 6.0
# decord and PyAV scale with swscale's bilinear filter, OpenCV with INTER_AREA: 2-4 grey levels apart.
RESIZED_TOLERANCE = 6.0


@pytest.fixture
def clip(make_video):
    """(path, source frames): 40 numbered frames of 48x64 H.264 at 25 fps."""
    frames = numbered_clip(40, 48, 64)
    return make_video("clip.mp4", frames=frames, fps=25.0), frames


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_frame_is_the_asked_one(backend, clip):
    path, source = clip
    indices = [0, 1, 7, 19, 20, 33, 39]
    result = read_frames(path, indices, size=None, backends=(backend,))
    assert result.backend == backend
    assert result.frames.shape == (7, 48, 64, 3) and result.frames.dtype == np.uint8
    assert [read_frame_number(frame) for frame in result.frames] == indices
    for frame, index in zip(result.frames, indices):
        assert mean_abs_diff(frame, source[index]) < LOSSY_NATIVE_TOLERANCE
        assert closest_source_frame(frame, source) == index  # closer to its own index than to any neighbour


@pytest.mark.parametrize("backend", BACKENDS)
def test_order_duplicates_and_indices_past_the_end(backend, clip):
    path, source = clip
    result = read_frames(path, [30, 2, 30, 500, 39], size=None, backends=(backend,))
    frames = result.frames
    assert np.array_equal(frames[0], frames[2])  # a duplicate is the same decoded frame
    assert closest_source_frame(frames[1], source) == 2
    assert np.array_equal(frames[3], frames[4])  # past the end: the last real frame
    assert closest_source_frame(frames[3], source) == 39


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size, tolerance", [
    ((32, 32), RESIZED_TOLERANCE),
    ((48, 48), RESIZED_TOLERANCE),  # the default model's size: decord's own scaler fails at it (and at 72)
    ((72, 72), RESIZED_TOLERANCE),
    ((24, 40), RESIZED_TOLERANCE),
    ((57, 75), RESIZED_TOLERANCE),  # upscaling, odd sizes
    ((97, 13), 2 * RESIZED_TOLERANCE),  # 5x narrower, 2x taller: the filters differ most at the block edges
])
def test_size_resizes_to_height_width(backend, clip, size, tolerance):
    path, source = clip
    frames = read_frames(path, [4, 25], size=size, backends=(backend,)).frames
    assert frames.shape == (2,) + size + (3,)
    if min(size) >= 24:  # narrower frames blur the number's blocks together
        assert [read_frame_number(frame) for frame in frames] == [4, 25]
    for frame, index in zip(frames, [4, 25]):
        assert mean_abs_diff(frame, resize_area(source[index], size)) < tolerance


@pytest.mark.parametrize("backend", BACKENDS)
def test_probe_reports_the_clip(backend, clip):
    path, _ = clip
    info = probe(path, backends=(backend,))
    assert (info.num_frames, info.fps, info.width, info.height, info.rotation) == (40, 25.0, 64, 48, 0)
    assert info.duration == pytest.approx(1.6)
    assert info.codec == "h264" and info.backend == backend
    assert info.path == str(path)


@pytest.mark.parametrize("first, second", list(itertools.combinations(BACKENDS, 2)))
def test_backends_agree_with_each_other(first, second, clip):
    path, _ = clip
    indices = [0, 5, 21, 38]
    native = [read_frames(path, indices, size=None, backends=(name,)).frames for name in (first, second)]
    # At native size all three convert YUV->RGB the same way: the same pixels up to rounding.
    assert mean_abs_diff(*native) < 1.0
    resized = [read_frames(path, indices, size=(32, 32), backends=(name,)).frames for name in (first, second)]
    assert mean_abs_diff(*resized) < RESIZED_TOLERANCE


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name, codec", [
    ("clip.avi", None),  # MPEG-4 Part 2
    ("clip.webm", None),  # VP8, no frame count in the header
    ("clip.mkv", None),  # H.264 in Matroska, no frame count in the header
    ("h264.avi", "libx264"),  # AVI has no presentation timestamps: B-frames come out with made-up ones
])
def test_other_containers_and_codecs(backend, make_video, name, codec):
    num_frames = 30
    source = numbered_clip(num_frames, 32, 64)  # decord 0.6 fails on some narrow widths (16, 24, 48, 72 px)
    path = make_video(name, frames=source, fps=25.0, codec=codec)
    info = probe(path, backends=(backend,))
    assert abs(info.num_frames - num_frames) <= 1  # duration * fps where the container has no count
    indices = [0, 9, 17, num_frames - 1]
    frames = read_frames(path, indices, size=None, info=info, backends=(backend,)).frames
    assert [read_frame_number(frame) for frame in frames] == indices
    for frame, index in zip(frames, indices):
        assert closest_source_frame(frame, source) == index


@pytest.mark.parametrize("threads", [1, 0])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("codec, options", [
    ("libx264", {"g": "12"}),  # no timestamps at all: decord's seeks by timestamp land at the start
    ("libx264", {"g": "12", "bf": "0"}),
    ("mpeg4", {"g": "12", "bf": "2"}),  # B-frames whose packets carry made-up timestamps
])
def test_avi_frames_past_later_keyframes_are_the_asked_ones(backend, make_video, codec, options, threads):
    source = numbered_clip(64, 32, 64)
    path = make_video("clip.avi", frames=source, fps=25.0, codec=codec, options=options)
    indices = [0, 5, 13, 30, 47, 55, 63]  # keyframes every 12 frames (x264 adds some): most reads need a seek
    frames = read_frames(path, indices, size=None, backends=(backend,), threads=threads).frames
    assert [read_frame_number(frame) for frame in frames] == indices


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("clockwise", [90, 180, 270])
def test_rotated_videos_come_out_upright(backend, make_h264, clockwise):
    stored = numbered_clip(6, 32, 64)  # (T, H, W, 3) as the camera stored it
    path = make_h264(stored, clockwise=clockwise)
    upright = np.rot90(stored, k=-clockwise // 90, axes=(1, 2))  # turned clockwise for display
    info = probe(path, backends=(backend,))
    assert info.rotation == clockwise
    assert (info.height, info.width) == upright.shape[1:3]
    frames = read_frames(path, [0, 3, 5], size=None, backends=(backend,)).frames
    assert frames.shape == (3,) + upright.shape[1:]
    for frame, index in zip(frames, [0, 3, 5]):
        assert mean_abs_diff(frame, upright[index]) < LOSSY_NATIVE_TOLERANCE
    resized = read_frames(path, [0], size=(20, 30), backends=(backend,)).frames
    assert resized.shape == (1, 20, 30, 3)
    assert mean_abs_diff(resized[0], resize_area(upright[0], (20, 30))) < RESIZED_TOLERANCE


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_thread_decoding_gives_the_same_frames(backend, clip):
    path, _ = clip
    default = read_frames(path, [3, 30], size=(32, 32), backends=(backend,)).frames
    single = read_frames(path, [3, 30], size=(32, 32), backends=(backend,), threads=1).frames
    assert np.array_equal(default, single)


@pytest.mark.parametrize("backend", BACKENDS)
def test_short_keyframe_intervals_and_seeking(backend, make_h264, monkeypatch):
    """Keyframes every 5 frames: the backends seek between far-apart frames and must land exactly."""
    from vidlstm.io import opencv_backend

    monkeypatch.setattr(opencv_backend, "ASSUMED_KEYFRAME_INTERVAL", 3)  # make OpenCV seek too
    path = make_h264(numbered_clip(60, 32, 64), keyframe_interval=5)
    indices = [57, 3, 4, 26, 40, 41, 12, 59, 33]
    frames = read_frames(path, indices, size=(32, 64), backends=(backend,)).frames
    assert [read_frame_number(frame) for frame in frames] == indices


def test_pyav_decodes_only_from_the_keyframe_before_each_wanted_frame(make_h264, monkeypatch):
    pyav_backend = pytest.importorskip("vidlstm.io.pyav_backend")
    decoded, seeks = [], []
    real_frame_index, real_seek = pyav_backend._frame_index, pyav_backend._IndexedWalk._seek

    def counting_frame_index(pts, frame):  # called once per decoded frame
        decoded.append(real_frame_index(pts, frame))
        return decoded[-1]

    def counting_seek(walk, keyframe):
        seeks.append(keyframe)
        real_seek(walk, keyframe)

    monkeypatch.setattr(pyav_backend, "_frame_index", counting_frame_index)
    monkeypatch.setattr(pyav_backend._IndexedWalk, "_seek", counting_seek)
    path = make_h264(numbered_clip(60, 32, 64), keyframe_interval=10)
    frames, _ = pyav_backend.read(path, [2, 5, 33, 58], (32, 64), threads=1)
    assert [read_frame_number(frame) for frame in frames] == [2, 5, 33, 58]
    assert seeks == [0, 30, 50]  # 2 and 5 share a keyframe; 33 and 58 each skip ahead
    # Only frames between each keyframe and its wanted frame come out, in order; non-reference frames
    # that nobody asked for are not decoded at all (skip_frame=NONREF), so some of those are missing.
    walked = [0, 1, 2, 3, 4, 5, 30, 31, 32, 33, 50, 51, 52, 53, 54, 55, 56, 57, 58]
    assert decoded == sorted(set(decoded)) and set(decoded) <= set(walked)
    assert {0, 2, 5, 30, 33, 50, 58} <= set(decoded)
    assert len(decoded) < len(walked)
