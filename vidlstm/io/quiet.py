"""Keep the decoders' own log lines (FFmpeg's, OpenCV's, decord's) off stderr; VIDLSTM_DECODER_LOGS=1 keeps them.

vidlstm reports a file it cannot decode in one line naming the file and the reason. The libraries under
the backends would add their own 2-6 lines per damaged file ("moov atom not found", "[ WARN:0@0.06]
global cap.cpp:212 ...", "[h264 @ 0x...] error while decoding MB ..."), which land between ours, and
which repeat what the reason already says. PyAV, decord and OpenCV each bundle their own copy of FFmpeg,
so each copy's log level is set by its backend module when it is first imported.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading

DECODER_LOGS_ENV = "VIDLSTM_DECODER_LOGS"

_stderr_lock = threading.RLock()


def decoder_logs_wanted() -> bool:
    """True when $VIDLSTM_DECODER_LOGS asks to see the decoders' own messages (debugging a file)."""
    return os.environ.get(DECODER_LOGS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def quiet_pyav(av) -> None:
    """PyAV drops FFmpeg's messages by default; make sure its FFmpeg prints none even if its default
    callback is restored elsewhere, or restore that callback when the messages are wanted."""
    if decoder_logs_wanted():
        av.logging.restore_default_callback()
        av.logging.set_libav_level(av.logging.INFO)  # FFmpeg's own default
    else:
        av.logging.set_libav_level(av.logging.PANIC)


def quiet_decord(decord) -> None:
    """decord's FFmpeg, down to nothing (its own "ERROR opening" line needs ``native_stderr_silenced``)."""
    if not decoder_logs_wanted():
        decord.logging.set_level(decord.logging.QUIET)


def quiet_opencv(cv2) -> None:
    """OpenCV's own log (the "[ WARN:0@...]" lines) and its FFmpeg's (read at the first capture opened)."""
    if decoder_logs_wanted():
        return
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; a value the user set wins
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


@contextlib.contextmanager
def native_stderr_silenced():
    """Point file descriptor 2 at /dev/null for the duration: for C++ code that writes to std::cerr
    unconditionally (decord's dmlc logging). Keep the block short: anything else this process writes
    to stderr meanwhile is lost too."""
    if decoder_logs_wanted():
        yield
        return
    with _stderr_lock:
        try:
            sys.stderr.flush()  # Python's buffered text belongs before the switch, not in /dev/null
        except (AttributeError, OSError, ValueError):
            pass
        saved = _redirect_stderr_to_devnull()
        if saved is None:  # no fd 2 to move (a daemon) or no /dev/null: nothing to silence
            yield
            return
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _redirect_stderr_to_devnull() -> int | None:
    """Point fd 2 at /dev/null; returns a duplicate of the old fd 2 to restore it from, or None on failure."""
    try:
        saved = os.dup(2)
    except OSError:
        return None
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        os.close(saved)
        return None
    os.dup2(devnull, 2)
    os.close(devnull)
    return saved


def silence_worker_stderr() -> None:
    """For a decode worker process: fd 2 to /dev/null for good (unless $VIDLSTM_DECODER_LOGS asks).

    A worker reports every failure to the main process through its pipe, so nothing it would print is
    lost; what this removes is what native code prints as it dies, e.g. libstdc++'s "terminate called
    after throwing an instance of 'std::bad_alloc'" when decord aborts, which would otherwise land
    beside the main process's one-line error for that file.
    """
    if decoder_logs_wanted():
        return
    saved = _redirect_stderr_to_devnull()
    if saved is not None:
        os.close(saved)
