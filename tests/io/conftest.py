"""Fixtures for the decoding tests: rotated, short-GOP, damaged and audio-only files made on the spot."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

av = pytest.importorskip("av")

from vidlstm.io.encode import write_video  # noqa: E402  (after the importorskip)


@pytest.fixture
def make_h264(tmp_path):
    """make_h264(frames, clockwise=0, keyframe_interval=None, name="clip.mp4") -> Path of an H.264 .mp4.

    ``clockwise``: the display matrix says "turn clockwise by this to show upright" (phone videos).
    ``keyframe_interval``: a keyframe every this many frames (x264 defaults to 250: one per short clip).
    """

    def _make(frames: np.ndarray, clockwise: int = 0, keyframe_interval: int | None = None, name: str = "clip.mp4"):
        options = ({"g": str(keyframe_interval), "keyint_min": str(keyframe_interval), "sc_threshold": "0"}
                   if keyframe_interval else None)
        return write_video(tmp_path / name, frames, fps=25, codec="libx264", options=options,
                           display_rotation=clockwise)

    return _make


@pytest.fixture
def damage_packet(tmp_path):
    """damage_packet(path, k) -> a copy of an .mp4 whose k-th video packet has an impossible NAL length.

    The same damage as decord's corrupted.mp4: FFmpeg's H.264 decoder rejects the packet with
    "Invalid NAL unit size" / AVERROR_INVALIDDATA.
    """

    def _damage(path, packet_number: int):
        with av.open(str(path)) as container:
            positions = [packet.pos for packet in container.demux(video=0) if packet.size]
        damaged = tmp_path / f"damaged_{path.name}"
        shutil.copy(path, damaged)
        with open(damaged, "r+b") as handle:
            handle.seek(positions[packet_number])
            handle.write(b"\xff\xff\xff\xff")  # the 4-byte length prefix of the packet's first NAL unit
        return damaged

    return _damage


@pytest.fixture
def audio_only_file(tmp_path):
    """A one-second 440 Hz WAV file: a real media file without any video stream."""
    path = tmp_path / "tone.wav"
    samples = (np.sin(2 * np.pi * 440 * np.arange(8000) / 8000) * 10000).astype(np.int16)[None]  # (1, S)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
