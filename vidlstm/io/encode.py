"""Write uint8 RGB frames to a video file (PyAV/FFmpeg, OpenCV as fallback): synthetic data, tests, benchmarks."""
from __future__ import annotations

from pathlib import Path

import numpy as np

# container suffix -> (PyAV codec, pixel format)
_PYAV_CODECS = {
    ".mp4": ("libx264", "yuv420p"),
    ".mkv": ("libx264", "yuv420p"),
    ".mov": ("libx264", "yuv420p"),
    ".avi": ("mpeg4", "yuv420p"),
    ".webm": ("libvpx", "yuv420p"),
}


def write_video(path, frames, fps: float = 25.0, codec: str | None = None, crf: int = 23, *,
                pix_fmt: str | None = None, options: dict | None = None, display_rotation: int = 0) -> Path:
    """Encode ``frames`` (T, H, W, 3) uint8 RGB into ``path``; the container follows the suffix.

    H.264 (libx264) for .mp4/.mkv/.mov, MPEG-4 Part 2 for .avi, VP8 for .webm; ``codec`` overrides.
    Odd sizes are fine for OpenCV but yuv420p needs even sizes, so PyAV pads by one pixel if needed
    (``pix_fmt="yuv444p"`` keeps any size, 1x1 included). ``options`` go to the encoder (e.g. x264's
    ``{"g": "10"}`` for a keyframe every 10 frames); ``display_rotation`` writes a display matrix
    saying "turn this many degrees clockwise to show upright", as phones do.
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if codec in ("mp4v", "MJPG", "XVID") or (codec is None and suffix not in _PYAV_CODECS):
        return _write_opencv(path, frames, fps, codec or "mp4v")
    import av
    from fractions import Fraction

    name, default_pix_fmt = _PYAV_CODECS.get(suffix, ("libx264", "yuv420p"))
    name, pix_fmt = codec or name, pix_fmt or default_pix_fmt
    h, w = frames.shape[1:3]
    if pix_fmt == "yuv420p" and (h % 2 or w % 2):
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        h, w = frames.shape[1:3]
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(name, rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        stream.options = _encoder_options(name, crf, options or {})
        stream.codec_context.thread_count = 1
        if display_rotation:
            stream.set_display_rotation(-display_rotation)  # PyAV takes the counter-clockwise angle FFmpeg stores
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _encoder_options(name: str, crf: int, options: dict) -> dict:
    """x264 gets crf and preset, and ``mbtree=0`` ahead of any ``x264-params`` the caller gives.

    With the macroblock tree on, the same frames written from two processes may give different files (first
    seen as data drawn from one seed that varied between runs). ``asm=0`` or ``mbtree=0`` each made it
    repeatable, so x264's assembly seems to read memory it never wrote there. ``mbtree=0`` costs no time;
    a caller's own ``mbtree=1`` still wins, since x264 reads its params left to right.
    """
    if name != "libx264":
        return dict(options)
    params = ":".join(p for p in ("mbtree=0", options.get("x264-params", "")) if p)
    return {"crf": str(crf), "preset": "veryfast", **options, "x264-params": params}


def _write_opencv(path: Path, frames: np.ndarray, fps: float, fourcc: str) -> Path:
    import cv2

    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(fps), (w, h))
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV cannot write fourcc {fourcc!r}")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path
