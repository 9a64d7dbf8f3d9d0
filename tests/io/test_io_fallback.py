"""The backend chain: order (argument > $VIDLSTM_BACKENDS > default), skipping, fallback on failure, final error."""
from __future__ import annotations

import numpy as np
import pytest

from io_frames import numbered_clip, read_frame_number
from vidlstm.errors import UsageError, VideoDecodeError
from vidlstm.io import DEFAULT_BACKENDS, available_backends, probe, read_frames
from vidlstm.io import registry
from vidlstm.io.backend_base import BackendFailure

BACKENDS = available_backends()
needs_two = pytest.mark.skipif(len(BACKENDS) < 2, reason="needs two installed decoder backends")


@pytest.fixture
def clip(make_video):
    return make_video("clip.mp4", frames=numbered_clip(20, 32, 64), fps=25.0)


@pytest.fixture(autouse=True)
def no_env_override(monkeypatch):
    monkeypatch.delenv(registry.BACKENDS_ENV, raising=False)


def break_backend(monkeypatch, name, error=RuntimeError("simulated crash inside the decoder")):
    """Make backend ``name`` fail on both probe and read."""
    module = registry.load_backend(name)

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(module, "read", fail)
    monkeypatch.setattr(module, "probe", fail)
    if hasattr(module, "read_sampled"):
        monkeypatch.setattr(module, "read_sampled", fail)


def test_default_order_is_pyav_decord_opencv():
    assert DEFAULT_BACKENDS == ("pyav", "decord", "opencv")
    assert registry.requested_backends() == DEFAULT_BACKENDS
    assert set(BACKENDS) <= set(DEFAULT_BACKENDS)


def test_the_first_working_backend_is_used(clip):
    result = read_frames(clip, [3], size=(32, 32))
    assert result.backend == BACKENDS[0]


@needs_two
def test_a_failing_backend_hands_over_to_the_next(monkeypatch, clip):
    break_backend(monkeypatch, BACKENDS[0])
    result = read_frames(clip, [3, 11], size=(32, 32))
    assert result.backend == BACKENDS[1]
    assert result.info.backend == BACKENDS[1]
    assert [read_frame_number(frame) for frame in result.frames] == [3, 11]
    assert probe(clip).backend == BACKENDS[1]


@needs_two
def test_a_backend_returning_the_wrong_frame_count_hands_over(monkeypatch, clip):
    module = registry.load_backend(BACKENDS[0])
    real_read = module.read

    def one_frame_short(path, indices, size, threads=0, info=None):
        frames, found = real_read(path, indices, size, threads, info)
        return frames[:-1], found

    monkeypatch.setattr(module, "read", one_frame_short)
    result = read_frames(clip, [3, 11], size=(32, 32))
    assert result.backend == BACKENDS[1] and result.frames.shape == (2, 32, 32, 3)


@needs_two
def test_backends_argument_sets_the_order(clip):
    order = tuple(reversed(BACKENDS))
    assert read_frames(clip, [0], backends=order).backend == order[0]
    assert read_frames(clip, [0], backends=",".join(order)).backend == order[0]  # "pyav,opencv" works too


@needs_two
def test_environment_sets_the_order_and_the_argument_wins(monkeypatch, clip):
    monkeypatch.setenv(registry.BACKENDS_ENV, f" {BACKENDS[-1]} , {BACKENDS[0]} ")
    assert registry.requested_backends() == (BACKENDS[-1], BACKENDS[0])
    assert read_frames(clip, [0]).backend == BACKENDS[-1]
    assert read_frames(clip, [0], backends=(BACKENDS[0],)).backend == BACKENDS[0]


@pytest.mark.parametrize("bad", [("decord", "ffmpeg-cli"), "nope", ()])
def test_unknown_backend_names_are_a_usage_error(bad, clip):
    with pytest.raises(UsageError, match="choose from decord, opencv, pyav"):
        read_frames(clip, [0], backends=bad)


def test_unknown_backend_in_the_environment_names_the_variable(monkeypatch, clip):
    monkeypatch.setenv(registry.BACKENDS_ENV, "pyav,gstreamer")
    with pytest.raises(UsageError, match="VIDLSTM_BACKENDS: unknown decoder backend 'gstreamer'"):
        probe(clip)


@needs_two
def test_a_backend_whose_package_is_missing_is_skipped(monkeypatch, clip):
    missing = BACKENDS[0]
    real_load = registry.load_backend
    monkeypatch.setattr("vidlstm.io.reader.load_backend", lambda name: None if name == missing else real_load(name))
    assert read_frames(clip, [0]).backend == BACKENDS[1]


def test_only_missing_packages_says_what_to_install(monkeypatch, clip):
    monkeypatch.setattr("vidlstm.io.reader.load_backend", lambda name: None)
    with pytest.raises(VideoDecodeError, match="no decoder backend installed .*install decord, opencv-python or av"):
        read_frames(clip, [0])


def test_when_every_backend_fails_the_error_lists_each_reason_on_one_line(monkeypatch, clip):
    for name in BACKENDS:
        break_backend(monkeypatch, name, BackendFailure(f"{name} says no"))
    with pytest.raises(VideoDecodeError) as caught:
        read_frames(clip, [0])
    expected = "; ".join(f"{name}: {name} says no" for name in BACKENDS)
    assert caught.value.reason == f"cannot decode ({expected})"
    assert str(caught.value) == f"{clip}: cannot decode ({expected})"
    assert "\n" not in str(caught.value)


def test_a_library_exception_is_summarised(monkeypatch, clip):
    for name in BACKENDS:
        break_backend(monkeypatch, name, RuntimeError("line one\nline two"))
    with pytest.raises(VideoDecodeError, match=r"cannot decode \(.*RuntimeError: line one line two"):
        read_frames(clip, [0], backends=BACKENDS)


def test_info_passed_in_is_handed_back(clip):
    info = probe(clip)
    result = read_frames(clip, [1, 2], size=(16, 16), info=info)
    assert result.info is info
    assert result.frames.shape == (2, 16, 16, 3)


@pytest.mark.parametrize("indices, message", [
    ([], "non-empty"),
    ([[1, 2]], "1-D"),
    ([-1, 3], ">= 0"),
    ([0.5], "integers"),
])
def test_bad_indices_are_the_callers_mistake(clip, indices, message):
    with pytest.raises(ValueError, match=message):
        read_frames(clip, indices)


@pytest.mark.parametrize("size", [(0, 10), (10,), "big"])
def test_bad_size_is_the_callers_mistake(clip, size):
    with pytest.raises(ValueError, match="size must be"):
        read_frames(clip, [0], size=size)


def test_indices_may_be_any_integer_sequence(clip):
    frames = read_frames(clip, np.array([5, 1], dtype=np.int32), size=(32, 64)).frames
    assert [read_frame_number(frame) for frame in frames] == [5, 1]
    frames = read_frames(clip, (2.0, 4.0), size=(32, 64)).frames
    assert [read_frame_number(frame) for frame in frames] == [2, 4]
