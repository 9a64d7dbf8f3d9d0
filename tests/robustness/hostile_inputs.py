"""Make inputs that lie: containers whose metadata claims hours of a 2-second clip, model folders whose
config.json claims absurd sizes, output files that are not ours.

Plain functions (no pytest), like damaged_inputs.py, so that the tests and benchmarks/robustness_report.py
build the same cases. Each patches a few bytes of a healthy file made on the spot.
"""
from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

from damaged_inputs import encode_exact, moving_square_clip

CLAIMED_HOURS = 46  # what the lying durations claim (the clips hold 50 frames, 2 s at 25 fps)


def healthy_clip(path, num_frames: int = 50, size: int = 32) -> Path:
    """A small clip with the container the suffix names (H.264 in .mp4/.mkv, MPEG-4 Part 2 in .avi)."""
    codec = "mpeg4" if Path(path).suffix == ".avi" else "libx264"
    return encode_exact(path, moving_square_clip(num_frames, size, size), codec=codec, pix_fmt="yuv420p")


def _patch_boxes(data: bytearray, box: bytes, seconds: float) -> int:
    """Set the duration of every MP4 ``box`` (mvhd, tkhd or mdhd, version 0 or 1) to ``seconds``."""
    patched, start = 0, 0
    while (at := data.find(box, start)) >= 0:
        start = at + 4
        version = data[at + 4]
        body = at + 8  # after the type, the version byte and 3 flag bytes
        if box == b"tkhd":  # creation, modification, track id, reserved, then the duration (movie timescale)
            scale = _movie_timescale(data)
            offset, width = (body + 16, 4) if version == 0 else (body + 24, 8)
        else:  # creation, modification, timescale, then the duration
            scale = struct.unpack(">I", data[body + (8 if version == 0 else 16):][:4])[0]
            offset, width = (body + 12, 4) if version == 0 else (body + 20, 8)
        value = min(int(seconds * scale), 2 ** (8 * width) - 1)
        data[offset:offset + width] = value.to_bytes(width, "big")
        patched += 1
    return patched


def _movie_timescale(data: bytearray) -> int:
    at = data.find(b"mvhd")
    body = at + 8
    return struct.unpack(">I", data[body + (8 if data[at + 4] == 0 else 16):][:4])[0]


def mp4_claiming_hours(path, hours: float = CLAIMED_HOURS) -> Path:
    """A 50-frame MP4 whose mvhd, tkhd and mdhd durations claim ``hours``: its stated rate drops to ~0.0003 fps."""
    path = healthy_clip(path)
    data = bytearray(path.read_bytes())
    assert sum(_patch_boxes(data, box, hours * 3600) for box in (b"mvhd", b"tkhd", b"mdhd")) >= 3
    # The sample durations (stts) too, which is where FFmpeg takes the frame rate from.
    at = data.find(b"stts")
    mdhd = data.find(b"mdhd")
    scale = struct.unpack(">I", data[mdhd + 8 + (8 if data[mdhd + 4] == 0 else 16):][:4])[0]
    entries = struct.unpack(">I", data[at + 8:at + 12])[0]
    for entry in range(entries):
        where = at + 12 + 8 * entry
        delta = min(2 ** 32 - 1, int(hours * 3600 * scale / 50))
        data[where + 4:where + 8] = struct.pack(">I", delta)
    path.write_bytes(bytes(data))
    return path


def mkv_claiming_hours(path, hours: float = 1000) -> Path:
    """A 50-frame Matroska file whose segment Duration (EBML 0x4489, a float in TimecodeScale units of 1 ms)
    claims ``hours``."""
    path = healthy_clip(path)
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89")
    assert at >= 0, "no Duration element"
    size = data[at + 2] & 0x7F  # a one-byte EBML size: 0x84 (float) or 0x88 (double)
    millis = hours * 3600 * 1000
    data[at + 3:at + 3 + size] = struct.pack(">f" if size == 4 else ">d", millis)
    path.write_bytes(bytes(data))
    return path


def avi_declaring_fps(path, fps: float = 1e-6) -> Path:
    """A 50-frame AVI whose stream header declares ``fps`` (dwRate / dwScale) and whose main header agrees."""
    path = healthy_clip(path)
    data = bytearray(path.read_bytes())
    strh = data.find(b"strh")
    assert strh >= 0 and data[strh + 8:strh + 12] == b"vids", "no video stream header"
    scale, rate = 1_000_000, max(1, round(fps * 1_000_000))
    # strh body: fccType, fccHandler, dwFlags, wPriority+wLanguage, dwInitialFrames, dwScale, dwRate
    body = strh + 8
    data[body + 20:body + 28] = struct.pack("<II", scale, rate)
    avih = data.find(b"avih")
    data[avih + 8:avih + 12] = struct.pack("<I", min(2 ** 32 - 1, round(1e6 / fps)))  # dwMicroSecPerFrame
    path.write_bytes(bytes(data))
    return path


LYING_CONTAINERS = {"mp4-claims-46h": ("lying.mp4", mp4_claiming_hours),
                    "mkv-claims-1000h": ("lying.mkv", mkv_claiming_hours),
                    "avi-declares-1e-6-fps": ("lying.avi", avi_declaring_fps)}


def lying_containers(folder) -> dict[str, Path]:
    """kind -> path of each lying container, made in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return {kind: make(folder / name) for kind, (name, make) in LYING_CONTAINERS.items()}


# --- model folders whose config.json lies ------------------------------------------------------------

ABSURD_CONFIGS = {
    "num_frames-1e9": {"num_frames": 10 ** 9},
    "hidden_size-1e9": {"hidden_size": 10 ** 9},
    "num_layers-1e5": {"num_layers": 10 ** 5},
    "image_size-1e6": {"image_size": 10 ** 6},
    "3-GB-clips": {"num_frames": 1024, "image_size": 1024},  # each size in range, their product not
    "mean-NaN": {"mean": [float("nan"), 0.5, 0.5]},
    "temperature-1e-300": {"temperature": 1e-300},
}


def model_with_config(model_dir, folder, changes: dict) -> Path:
    """A copy of ``model_dir`` whose config.json has ``changes`` (NaN written as JSON's non-standard NaN,
    as Python's json module writes and reads it)."""
    folder = Path(folder)
    shutil.copytree(model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


# --- record files that are not ours ------------------------------------------------------------------

def foreign_lines(video) -> dict[str, bytes]:
    """kind -> a line that an existing output file might hold without being a record of ours."""
    return {"json-list": b"[1, 2]\n", "json-object": b'{"a": 1}\n', "json-string": b'"just text"\n',
            "not-utf8": b"\xff\xfe\x00garbage\n",
            "path-without-status": json.dumps({"path": str(video), "label": "left"}).encode() + b"\n"}
