"""probe() and read_frames(): check the file, then try each decoder backend in turn until one succeeds."""
from __future__ import annotations

import dataclasses
import errno
import os
import re
import stat
from pathlib import Path

import numpy as np

from vidlstm.errors import LINK_TO_NO_FILE, NO_SUCH_FILE, VideoDecodeError, shown_name
from vidlstm.io.backend_base import (
    BackendFailure,
    CutShort,
    DamagedStream,
    NoVideoStream,
    check_output_size,
    one_line,
    unique_sorted_indices,
)
from vidlstm.io.info import DecodeResult, VideoInfo
from vidlstm.io.registry import load_backend, requested_backends


def probe(path, backends=None, threads: int = 0) -> VideoInfo:
    """Metadata of the video at ``path`` from the first backend that can open it.

    ``backends`` overrides the order to try ($VIDLSTM_BACKENDS, else ``DEFAULT_BACKENDS``).
    Raises VideoDecodeError(path, reason) when none can.
    """
    given, path = str(path), check_video_file(path)
    info = _first_success(given, backends, lambda backend: backend.probe(path, threads))
    return dataclasses.replace(info, path=given)


def read_frames(path, indices, size=(112, 112), info: VideoInfo | None = None, backends=None,
                threads: int = 0) -> DecodeResult:
    """Decode the frames at ``indices`` (any order, duplicates allowed) of the video at ``path``.

    Returns frames (len(indices), H, W, 3) uint8 RGB, upright, resized by the decoder to
    ``size=(height, width)`` (None keeps the native size). An index past the real end gets the
    last frame. ``info`` (from ``probe``) is handed back in the result and spares the backend the
    metadata work; ``threads`` is the decoder's thread count (0: the backend's default, 1 for
    worker processes sharing few cores). Raises VideoDecodeError(path, reason) when no backend
    can decode the frames, ValueError for malformed ``indices`` or ``size``.
    """
    given, path = str(path), check_video_file(path)
    size = check_output_size(size)
    asked = np.asarray(indices)
    unique_sorted_indices(asked)  # malformed indices are the caller's mistake, not a backend failure
    expected = (len(asked),) + (size if size is not None else ())

    def read(backend) -> DecodeResult:
        frames, found = backend.read(path, asked, size, threads, info)
        _check_frames(frames, expected)
        if info is None:
            found = dataclasses.replace(found, path=given)
        return DecodeResult(frames=frames, backend=backend.NAME, info=found)

    return _first_success(given, backends, read)


def read_sampled(path, choose, size=(112, 112), backends=None, threads: int = 0) -> DecodeResult:
    """Open the video once, let ``choose(info, keyframes)`` pick frame indices, decode them.

    ``choose`` gets the VideoInfo and the (K,) int64 keyframe positions (None where the backend cannot
    tell, e.g. OpenCV) and returns the indices to decode; the result carries them in ``indices``.
    One open instead of ``probe`` + ``read_frames`` (two opens, two demuxes), and the sampler can
    favour keyframes. Raises VideoDecodeError(path, reason) when no backend can decode the frames.
    """
    given, path = str(path), check_video_file(path)
    size = check_output_size(size)

    def read(backend) -> DecodeResult:
        if hasattr(backend, "read_sampled"):
            frames, info, indices = backend.read_sampled(path, choose, size, threads)
        else:  # probe, then read: the backend knows no keyframes
            info = backend.probe(path, threads)
            indices = np.asarray(choose(info, None), dtype=np.int64)
            frames, _ = backend.read(path, indices, size, threads, info)
        _check_frames(frames, (len(indices),) + (size if size is not None else ()))
        return DecodeResult(frames=frames, backend=backend.NAME, info=dataclasses.replace(info, path=given),
                            indices=np.asarray(indices, dtype=np.int64))

    return _first_success(given, backends, read)


def keyframe_positions(path, backends=None) -> np.ndarray | None:
    """(K,) int64 presentation indices of the video's keyframes, from the first backend that indexes them.

    Demuxing only (PyAV's packet index, decord's key indices): no frame is decoded. None when no
    installed backend can tell (OpenCV cannot). Raises VideoDecodeError when no backend opens the file.
    """
    given, path = str(path), check_video_file(path)
    names = [name for name in requested_backends(backends) if hasattr(load_backend(name), "keyframe_positions")]
    if not names:
        return None
    try:
        return _first_success(given, tuple(names), lambda backend: backend.keyframe_positions(path))
    except VideoDecodeError as err:
        if "no decoder backend installed" in err.reason:
            return None
        raise


def _check_frames(frames: np.ndarray, expected: tuple) -> None:
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[: len(expected)] != expected or frames.shape[-1] != 3:
        raise BackendFailure(f"returned {frames.dtype} frames of shape {frames.shape}, not {expected} + (..., 3)")


STREAM_HINT = " (files are read from disk; `vidlstm stream` reads a URL or a webcam)"


def names_a_stream(given) -> bool:
    """A URL (``scheme://...``) or ``-`` (stdin), which no file path is: said where no file of that name exists."""
    return isinstance(given, str) and (given == "-" or re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", given) is not None)


def check_video_file(path) -> Path:
    """The absolute path, after ruling out what no decoder needs to try: missing, a folder, empty, unreadable.

    Absolute because FFmpeg reads "name:rest" as a protocol ("-clip:v1.mp4" would fail).
    """
    given = os.fspath(path)
    path = Path(given)
    try:
        status = path.stat()
    except FileNotFoundError:
        if names_a_stream(given) and not path.is_symlink():  # named as given: a Path would show "http:/host"
            raise VideoDecodeError(given, NO_SUCH_FILE + STREAM_HINT) from None
        raise VideoDecodeError(path, missing_file_reason(path)) from None
    except PermissionError:
        raise VideoDecodeError(path, "permission denied") from None
    except OSError as err:
        if err.errno == errno.ELOOP and path.is_symlink():
            raise VideoDecodeError(path, missing_file_reason(path)) from None
        raise VideoDecodeError(path, one_line(err.strerror or err)) from None
    if stat.S_ISDIR(status.st_mode):
        raise VideoDecodeError(path, "is a directory")
    if not stat.S_ISREG(status.st_mode):
        raise VideoDecodeError(path, "not a regular file")
    if status.st_size == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise VideoDecodeError(path, "permission denied") from None
    return path.absolute()


def missing_file_reason(path) -> str:
    """Why ``path``, which no stat() could follow to a file, names no video: NO_SUCH_FILE, or where the name is a
    symbolic link (the user sees it listed) LINK_TO_NO_FILE and where the links lead. Every command that takes a
    video path says this."""
    if not os.path.islink(path):
        return NO_SUCH_FILE
    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return f"{LINK_TO_NO_FILE} (the links loop back on themselves)"
    return f"{LINK_TO_NO_FILE} ({shown_name(os.path.realpath(path))} does not exist)"  # where the chain of links ends


def _first_success(given_path: str, backends, attempt):
    """Run ``attempt(backend_module)`` along the backend order; the first result wins."""
    names = requested_backends(backends)
    failures: list[tuple[str, Exception]] = []
    for name in names:
        backend = load_backend(name)
        if backend is None:  # its package is not installed
            continue
        try:
            return attempt(backend)
        except Exception as err:  # noqa: BLE001 - whatever a backend raises, the next one gets its turn
            failures.append((name, err))
    raise VideoDecodeError(given_path, failure_reason(names, failures))


def failure_reason(names: tuple[str, ...], failures: list[tuple[str, Exception]]) -> str:
    """One specific line: "no video stream", "cut short: ...", "damaged stream (...)" or "cannot decode (decord: ...;
    ...)"."""
    if not failures:
        return f"no decoder backend installed (tried {', '.join(names)}; install decord, opencv-python or av)"
    if any(isinstance(err, NoVideoStream) for _, err in failures):
        return "no video stream"
    cut = next((err for _, err in failures if isinstance(err, CutShort)), None)
    if cut is not None:  # a fact of the file, which the other backends' words for the missing data only obscure
        return str(cut)
    details = "; ".join(f"{name}: {_short(err)}" for name, err in failures)
    if all(isinstance(err, DamagedStream) for _, err in failures):
        return f"damaged stream ({details})"
    return f"cannot decode ({details})"


def _short(err: Exception) -> str:
    if isinstance(err, BackendFailure):
        return str(err)
    return one_line(f"{type(err).__name__}: {err}", limit=100)
