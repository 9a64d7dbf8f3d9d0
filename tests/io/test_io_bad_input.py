"""Files that are not (healthy) videos: each gets a VideoDecodeError with a short, specific reason."""
from __future__ import annotations

import os
import shutil

import pytest

from io_frames import numbered_clip, read_frame_number
from vidlstm.errors import VideoDecodeError
from vidlstm.io import available_backends, probe, read_frames
from vidlstm.io.backend_base import DamagedStream, check_stream_length

BACKENDS = available_backends()


def decode_error(path, **kwargs) -> VideoDecodeError:
    """The error read_frames raises for ``path``, after checking probe raises the same."""
    with pytest.raises(VideoDecodeError) as from_probe:
        probe(path, **kwargs)
    with pytest.raises(VideoDecodeError) as from_read:
        read_frames(path, [0, 1], **kwargs)
    assert from_read.value.reason == from_probe.value.reason
    assert from_read.value.path == str(path) and "\n" not in str(from_read.value)
    return from_read.value


def test_missing_file(tmp_path):
    assert decode_error(tmp_path / "missing.mp4").reason == "no such file"


def test_a_url_or_a_dash_is_no_file_and_the_error_says_where_streams_are_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for given in ("http://127.0.0.1:9/x.mp4", "rtsp://cam/1", "-"):
        assert decode_error(given).reason == ("no such file (files are read from disk; `vidlstm stream` reads a URL "
                                              "or a webcam)"), given
    assert decode_error("clip:v1.mp4").reason == "no such file"  # a colon alone is a file name


def test_directory_named_like_a_video(tmp_path):
    (tmp_path / "x.mp4").mkdir()
    assert decode_error(tmp_path / "x.mp4").reason == "is a directory"


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert decode_error(tmp_path / "empty.mp4").reason == "empty file (0 bytes)"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path, make_video):
    path = make_video("locked.mp4", num_frames=4)
    path.chmod(0)
    try:
        assert decode_error(path).reason == "permission denied"
    finally:
        path.chmod(0o644)


def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are meeting notes, not a video\n" * 20)
    reason = decode_error(path).reason
    assert reason.startswith("cannot decode (") and reason.endswith(")")
    for name in BACKENDS:  # every installed backend tried and said why, briefly
        assert f"{name}: " in reason
    assert len(reason) < 300


def test_audio_only_file_has_no_video_stream(audio_only_file):
    assert decode_error(audio_only_file).reason == "no video stream"


def test_truncated_file(make_video, tmp_path):
    path = make_video("whole.mp4", num_frames=30)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # the index (moov) is at the end: lost
    assert decode_error(cut).reason.startswith("cannot decode (")


@pytest.mark.parametrize("backend", BACKENDS)
def test_file_name_starting_with_a_dash_and_holding_a_colon(backend, make_video, tmp_path, monkeypatch):
    """FFmpeg reads "name:rest" as a protocol and a leading "-" can look like an option: paths go in absolute."""
    path = make_video("clip.mp4", frames=numbered_clip(8, 32, 64))
    shutil.copy(path, tmp_path / "-odd:name %d.mp4")
    monkeypatch.chdir(tmp_path)
    result = read_frames("-odd:name %d.mp4", [2, 5], size=None, backends=(backend,))
    assert [read_frame_number(frame) for frame in result.frames] == [2, 5]
    assert result.info.path == "-odd:name %d.mp4"  # reported as given


@pytest.mark.parametrize("backend", BACKENDS)
def test_damaged_packet_is_a_damaged_stream_for_every_backend(backend, make_video, damage_packet):
    """The damage of decord's corrupted.mp4, made here: one packet's NAL length is impossible."""
    path = damage_packet(make_video("clip.mp4", frames=numbered_clip(40, 32, 64)), 20)
    with pytest.raises(VideoDecodeError) as caught:
        read_frames(path, list(range(0, 40, 4)), backends=(backend,))
    assert caught.value.reason.startswith(f"damaged stream ({backend}: ")


def test_damaged_stream_reason_names_every_backend(make_video, damage_packet):
    path = damage_packet(make_video("clip.mp4", frames=numbered_clip(40, 32, 64)), 20)
    with pytest.raises(VideoDecodeError) as caught:
        read_frames(path, list(range(0, 40, 4)))
    reason = caught.value.reason
    assert reason.startswith("damaged stream (") and all(f"{name}: " in reason for name in BACKENDS)


def test_frames_before_the_damage_still_decode(make_video, damage_packet):
    """Only the frames asked for are decoded, so damage after them does not matter."""
    path = damage_packet(make_video("clip.mp4", frames=numbered_clip(40, 32, 64)), 30)
    frames = read_frames(path, [0, 5, 10], size=None).frames
    assert [read_frame_number(frame) for frame in frames] == [0, 5, 10]


def test_stream_length_rule_tolerates_metadata_noise_not_lost_frames():
    check_stream_length(310, 311)  # Matroska duration * fps, one over
    check_stream_length(97, 100)
    check_stream_length(10, 0)  # no declared count: nothing to compare
    with pytest.raises(DamagedStream, match="decoding stops at frame 28 of 50 declared"):
        check_stream_length(28, 50)
    with pytest.raises(DamagedStream):
        check_stream_length(900, 1000)  # 5 % of 1000 = 50 tolerated, 100 missing


def faststart_copy(path, dest):
    """``path`` remuxed with its index (moov) at the front, as web video is: a cut keeps the index, not the frames."""
    av = pytest.importorskip("av")
    with av.open(str(path)) as source, av.open(str(dest), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(video=0):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    with av.open(str(dest)) as container:
        assert container.streams.video[0].frames == 30
        return [(packet.pos, packet.size) for packet in container.demux(video=0) if packet.size]


@pytest.mark.skipif("pyav" not in BACKENDS, reason="PyAV tells where the file ends")
def test_a_file_cut_short_is_said_to_be_so(make_video, tmp_path):
    """A faststart MP4 cut inside its second frame's data was "decoder rejected data after frame -1"."""
    packets = faststart_copy(make_video("whole.mp4", num_frames=30), tmp_path / "fast.mp4")
    data = (tmp_path / "fast.mp4").read_bytes()
    for name, size in (("second", packets[1][0] + packets[1][1] // 2), ("half", len(data) // 2),
                       ("first", packets[0][0] + packets[0][1] // 2)):
        cut = tmp_path / f"cut_{name}.mp4"
        cut.write_bytes(data[:size])
        whole = sum(pos + length <= size for pos, length in packets)
        with pytest.raises(VideoDecodeError) as caught:
            read_frames(cut, list(range(0, 30, 4)))
        assert caught.value.reason == (f"cut short: the file holds {whole} of the 30 frames it lists (an unfinished "
                                       f"download or copy?)"), name
        for backend in BACKENDS:  # each alone: its own words, none of them "frame -1" or FFmpeg's error number
            with pytest.raises(VideoDecodeError) as caught:
                read_frames(cut, list(range(0, 30, 4)), backends=(backend,))
            assert "-1" not in caught.value.reason and "1094995529" not in caught.value.reason, caught.value.reason


@pytest.mark.skipif("pyav" not in BACKENDS, reason="PyAV's words")
def test_damage_before_the_first_frame_is_said_without_a_frame_number(make_video, damage_packet):
    path = damage_packet(make_video("clip.mp4", frames=numbered_clip(40, 32, 64)), 0)
    with pytest.raises(VideoDecodeError) as caught:
        read_frames(path, list(range(0, 40, 4)), backends=("pyav",))
    assert caught.value.reason == ("damaged stream (pyav: decoder rejected data before the first frame came out "
                                   "(Invalid data found when processing input))")
