"""Real videos from ../shared/data/videos: the whole corpus, tricky files per backend, rotation, damage, empty file."""
from __future__ import annotations

import csv
import functools

import numpy as np
import pytest

from io_frames import mean_abs_diff, resize_area
from vidlstm.errors import VideoDecodeError
from vidlstm.io import available_backends, probe, read_frames
from vidlstm.io.sampling import sample_segment_indices

av = pytest.importorskip("av")

BACKENDS = available_backends()
pytestmark = pytest.mark.realdata
ROTATION_VIDEOS = "decord/tests/test_data/video_{}.mov"
CORRUPTED = "decord/tests/test_data/corrupted.mp4"
# Small files that trip decoders up: out-of-order timestamps, VP6 in FLV (no frame count), GIFs with
# variable frame delays, VP9 WebM, a 1x1 yuv444p clip whose name starts with "-", a 6 fps clip.
# (H.264 in AVI, which has no presentation timestamps, is also made on the spot in test_io_backends.)
TRICKY = [
    "decord/tests/test_data/unordered.mov",
    "moviepy/media/clip1024.flv",
    "moviepy/media/pigs_in_a_polka.gif",
    "mmaction2/resources/spatio-temporal-det.gif",
    "moviepy/media/transparent.webm",
    "moviepy/media/-video-with-dash-.mp4",
    "mmaction2/demo/demo_spatiotemporal_det.mp4",
    "mmaction2/tests/data/test.avi",
]
# AVI states no presentation timestamps and FFmpeg makes them up: packed MPEG-4 B-frames (test.avi) come out of
# the decoder out of the order of their packets' made-up timestamps; H.264 in AVI (ntu_sample.avi) has none at
# all, and decord's seeks by timestamp land at the start.
AVI = ["mmaction2/tests/data/test.avi", "mmaction2/demo/ntu_sample.avi"]


def manifest(shared_data) -> list[dict]:
    with open(shared_data / "videos" / "MANIFEST.tsv", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def decodable(row) -> bool:
    return int(row["decoded_frames"] or 0) > 0 and "CORRUPT" not in row["label_or_note"]


@functools.lru_cache(maxsize=4)
def every_frame_upright(path, size=(64, 64)) -> np.ndarray:
    """Reference frames from plain PyAV, (N, 64, 64, 3): decode all in order, turn by the display matrix, shrink."""
    with av.open(str(path)) as container:
        return np.stack([
            resize_area(np.rot90(frame.to_ndarray(format="rgb24"), k=frame.rotation // 90), size)
            for frame in container.decode(video=0)
        ])


@pytest.mark.slow
def test_every_decodable_file_reads_through_the_default_chain(shared_data):
    rows = [row for row in manifest(shared_data) if decodable(row)]
    assert len(rows) >= 45
    failures = []
    for row in rows:
        path = shared_data / "videos" / row["local_path"]
        try:
            info = probe(path)
            result = read_frames(path, sample_segment_indices(info.num_frames, 16), size=(112, 112), info=info)
        except VideoDecodeError as err:
            failures.append(str(err))
            continue
        assert result.frames.shape == (16, 112, 112, 3) and result.frames.dtype == np.uint8, row["local_path"]
        # Header counts may be off by one (Matroska/FLV durations); never by more on healthy files.
        assert abs(info.num_frames - int(row["decoded_frames"])) <= 1, row["local_path"]
    assert failures == []


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", TRICKY)
def test_tricky_files_give_the_right_frames_with_every_backend(shared_data, backend, name):
    path = shared_data / "videos" / name
    reference = every_frame_upright(path)
    indices = sample_segment_indices(len(reference), 6).tolist() + [len(reference) - 1]
    try:
        frames = read_frames(path, indices, size=None, backends=(backend,)).frames
    except VideoDecodeError as err:
        # decord 0.6 cannot measure GIFs or a WebM without duration, nor copy 1x1 yuv444p frames.
        assert backend == "decord", err
        pytest.skip(f"decord cannot read {name}: {err.reason}")
    assert_frames_are(frames, indices, reference)


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 0])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", AVI)
def test_avi_files_give_the_right_frames_with_every_backend_and_thread_count(shared_data, backend, name, threads):
    path = shared_data / "videos" / name
    reference = every_frame_upright(path)
    indices = sample_segment_indices(len(reference), 8).tolist() + [len(reference) // 2 + 3, len(reference) - 1]
    frames = read_frames(path, indices, size=None, backends=(backend,), threads=threads).frames
    assert_frames_are(frames, indices, reference)


def assert_frames_are(frames, indices, reference) -> None:
    """Each frame is the reference frame at its index, and no other reference frame is closer."""
    for frame, index in zip(frames, indices):
        distances = [mean_abs_diff(resize_area(frame, (64, 64)), candidate) for candidate in reference]
        # decord bundles an older FFmpeg than PyAV: a few grey levels apart on VP6, identical elsewhere.
        assert distances[index] < 4.0, (index, distances[index])
        assert distances[index] <= min(distances) + 1e-9  # no other frame is closer


@pytest.mark.parametrize("backend", BACKENDS)
def test_rotation_metadata_gives_upright_frames(shared_data, backend):
    brighter_top = []
    for clockwise in (0, 90, 180, 270):
        path = shared_data / "videos" / ROTATION_VIDEOS.format(clockwise)
        info = probe(path, backends=(backend,))
        assert info.rotation == clockwise
        # Stored 568x320 (landscape); displayed portrait when turned a quarter.
        assert (info.width, info.height) == ((568, 320) if clockwise % 180 == 0 else (320, 568))
        frames = read_frames(path, [0, 2], size=None, info=info, backends=(backend,)).frames
        reference = every_frame_upright(path, (info.height, info.width))
        assert mean_abs_diff(frames[0], reference[0]) < 1.0 and mean_abs_diff(frames[1], reference[2]) < 1.0
        resized = read_frames(path, [1], size=(64, 40), info=info, backends=(backend,)).frames
        assert resized.shape == (1, 64, 40, 3)
        gray = frames[0].astype(np.float64).mean(-1)
        brighter_top.append(gray[: gray.shape[0] // 2].mean() - gray[gray.shape[0] // 2:].mean())
    # All four film the same keyboard lit from above: upright, the top half is the brighter one, as in
    # video_0 (by 10 to 55 grey levels); a frame turned the wrong way round would be darker on top.
    assert min(brighter_top) > 5, brighter_top


def test_corrupted_file_is_a_damaged_stream(shared_data):
    path = shared_data / "videos" / CORRUPTED
    info = probe(path)  # the header is intact: 50 frames declared
    assert info.num_frames == 50
    with pytest.raises(VideoDecodeError) as caught:
        read_frames(path, sample_segment_indices(info.num_frames, 16), size=(112, 112), info=info)
    reason = caught.value.reason
    assert reason.startswith("damaged stream (") and all(f"{name}: " in reason for name in BACKENDS)


def test_decord_at_a_size_its_scaler_gets_wrong_names_the_damage_and_decodes_sound_files(shared_data):
    """At 48x48 decord 0.6 fills a 64x48 frame into a 48x48 buffer on every file; it once blamed that on the file."""
    pytest.importorskip("decord")
    path = shared_data / "videos" / CORRUPTED
    with pytest.raises(VideoDecodeError) as caught:
        read_frames(path, [0, 5, 10, 20, 30, 40, 49], size=(48, 48), backends=("decord",), threads=1)
    assert caught.value.reason == "damaged stream (decord: decoder rejected data (Invalid data found when processing " \
                                  "input))"
    sound = read_frames(shared_data / "videos" / "moviepy/media/chaplin.mp4", [0, 9], size=(48, 48),
                        backends=("decord",), threads=1)
    assert sound.backend == "decord" and sound.frames.shape == (2, 48, 48, 3)


def test_zero_byte_file_is_empty(shared_data):
    path = shared_data / "videos" / "moviepy/media/doc_medias/result.webm"
    with pytest.raises(VideoDecodeError, match=r"result\.webm: empty file \(0 bytes\)$"):
        read_frames(path, [0])
