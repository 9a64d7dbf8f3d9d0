"""Frames in order from a video file, a webcam or a network stream, subsampled to a fixed rate (for `vidlstm stream`).

Files go through the decoder fallback chain (``read_sampled`` to count the frames, then ``read_frames`` a chunk of
frames at a time, so memory does not grow with the video's length); a webcam index or a URL is read with OpenCV's
capture, the only backend here that opens live sources.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from vidlstm.errors import UsageError, VideoDecodeError, shown_name
from vidlstm.io.backend_base import BackendFailure, stored_size, turn_upright, utf8_name
from vidlstm.io.reader import missing_file_reason, read_frames, read_sampled
from vidlstm.logs import log as logger

LIVE_FALLBACK_FPS = 30.0  # a camera or file that reports no frame rate
FILE_CHUNK_FRAMES = 32  # frames of a file decoded per read_frames call


@dataclass
class StreamFrame:
    """One sampled frame: its index in the source, its time (s) and its pixels (H, W, 3) uint8 RGB."""

    index: int
    time: float
    rgb: np.ndarray


def keep_slot(index: int, t: float, fps: float, last_slot: int) -> int | None:
    """The 1/fps-second slot of a frame at time ``t`` if it is the first of its slot, else None (fps 0: every frame)."""
    slot = index if fps <= 0 else math.floor(t * fps + 1e-6)  # 1e-6: times exactly on a slot edge
    return slot if slot > last_slot else None


class FileFrames:
    """The first frame of every 1/fps-second slot of a file (all frames if fps is 0), decoded through the chain.

    Times are frame index / the file's frame rate (exact, repeatable). ``frames_read`` counts the frames
    of the file passed so far, kept or not.
    """

    live = False

    def __init__(self, path, size: int, fps: float, backends=None, chunk_frames: int = FILE_CHUNK_FRAMES):
        self.path, self.size, self.fps, self.backends, self.chunk_frames = str(path), size, fps, backends, chunk_frames
        # The frames there are where the backend counts packets (a header can claim 30 s of a file cut after
        # 1.4 s; frames past the real end would come back as copies of the last). VideoDecodeError naming the file
        # where no decoder opens it.
        self.info = read_sampled(self.path, lambda info, keyframes: np.zeros(1, dtype=np.int64), size=(size, size),
                                 backends=backends).info
        self.frames_read = 0

    def _kept(self) -> list[tuple[int, float]]:
        source_fps = self.info.fps if math.isfinite(self.info.fps) and self.info.fps > 0 else LIVE_FALLBACK_FPS
        kept, last_slot = [], -1
        for index in range(self.info.num_frames):
            t = index / source_fps
            slot = keep_slot(index, t, self.fps, last_slot)
            if slot is not None:
                kept.append((index, t))
                last_slot = slot
        return kept

    def __iter__(self) -> Iterator[StreamFrame]:
        kept = self._kept()
        size = (self.size, self.size)
        for first in range(0, len(kept), self.chunk_frames):
            chunk = kept[first:first + self.chunk_frames]
            result = read_frames(self.path, [i for i, _ in chunk], size=size, info=self.info, backends=self.backends)
            for (index, t), rgb in zip(chunk, result.frames):
                self.frames_read = index + 1
                yield StreamFrame(index, t, rgb)
        self.frames_read = self.info.num_frames

    def close(self) -> None:
        pass


class CaptureFrames:
    """The same sampling over an OpenCV capture (a webcam or a URL), to its end.

    Times are the stream's own (its frames' timestamps, since the first frame) where it has them, as a URL's stream
    does: a recording served faster than real time is sampled as a file would be (by arrival time its whole length
    came in within a second, and one frame was classified). A webcam, or a stream whose timestamps do not advance,
    is timed by the wall clock since the first frame (a live source may drop frames). Only kept frames are converted:
    area-interpolation resize, upright, RGB. ``frames_read`` counts every frame grabbed so far. A source that sent
    nothing for ``STALL_SECONDS`` before it ended is warned about: OpenCV ends a stalled connection as if the
    stream had ended. Ctrl-C ends a wait for a live source's next frame at once (``_grab``).
    """

    def __init__(self, capture, size: int, fps: float, rotation: int = 0, live: bool = True,
                 media_clock: bool = False, name: str = "stream"):
        self.capture, self.size, self.fps, self.rotation, self.live = capture, size, fps, rotation, live
        self.media_clock, self.name = media_clock, name
        self.frames_read = 0
        self._grabber, self._grabbing = None, False

    def _grab(self) -> bool:
        """``capture.grab()``; a live source's in a daemon helper thread while this one waits, so that Ctrl-C ends
        a stalled stream's wait at once (OpenCV holds the calling thread up to its read timeout, and Python runs
        the signal handler only once it returns), and the process exits without waiting for OpenCV."""
        if not self.live:
            return self.capture.grab()
        if self._grabber is None:
            import queue
            import threading

            self._grabber = (queue.SimpleQueue(), queue.SimpleQueue())
            threading.Thread(target=self._grabbing_loop, daemon=True, name="vidlstm-grab").start()
        asks, answers = self._grabber
        self._grabbing = True
        asks.put(True)
        got = answers.get()  # a lock wait: a signal interrupts it
        self._grabbing = False
        if isinstance(got, BaseException):
            raise got
        return got

    def _grabbing_loop(self) -> None:
        asks, answers = self._grabber
        while asks.get():
            try:
                answers.put(self.capture.grab())
            except Exception as err:  # noqa: BLE001 - raised in the caller's thread
                answers.put(err)

    def _media_seconds(self, cv2) -> float | None:
        ms = self.capture.get(cv2.CAP_PROP_POS_MSEC)
        return ms / 1000.0 if math.isfinite(ms) and ms >= 0 else None

    def __iter__(self) -> Iterator[StreamFrame]:
        try:
            yield from self._frames()
        finally:
            self._stop_grabbing()

    def _frames(self) -> Iterator[StreamFrame]:
        import cv2

        source_fps = self.capture.get(cv2.CAP_PROP_FPS)
        if not (math.isfinite(source_fps) and source_fps > 0):
            source_fps = LIVE_FALLBACK_FPS
        target = stored_size((self.size, self.size), self.rotation)
        started, last_slot = None, -1
        media = self.media_clock  # until its timestamps stop advancing
        first_media = last_media = None
        offset = 0.0  # added to the wall clock where it takes over from the stream's timestamps, so time goes on
        while True:
            asked = time.monotonic()
            got = self._grab()
            waited = time.monotonic() - asked
            if self.live and waited > STALL_SECONDS:  # FFmpeg may hand over a buffered frame after its read timeout
                logger.warning(f"{self.name}: no frame came for {waited:.0f} s"
                               + ("; taken as the end of the stream" if not got else " (the stream stalled)"))
            if not got:
                break
            index = self.frames_read
            self.frames_read += 1
            now = time.monotonic()
            started = now if started is None else started
            t = (now - started + offset) if self.live else index / source_fps
            if media:
                stamp = self._media_seconds(cv2)
                if stamp is None or (last_media is not None and stamp <= last_media):
                    media = False  # no timestamps, or ones that do not advance: the wall clock from here on
                    if last_media is not None:
                        offset = (last_media - first_media) + 1.0 / source_fps - (now - started)
                        t = now - started + offset
                else:
                    first_media = stamp if first_media is None else first_media
                    last_media, t = stamp, stamp - first_media
            slot = keep_slot(index, t, self.fps, last_slot)
            if slot is None:
                continue
            ok, bgr = self.capture.retrieve()
            if not ok or bgr is None:
                continue  # a damaged frame of a live stream: skip it, the stream goes on
            last_slot = slot
            if bgr.shape[:2] != target:
                bgr = cv2.resize(bgr, (target[1], target[0]), interpolation=cv2.INTER_AREA)
            yield StreamFrame(index, t, turn_upright(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.rotation))

    def _stop_grabbing(self) -> None:
        if self._grabber is not None:
            self._grabber[0].put(False)  # the helper thread ends (after the grab it may be waiting in)
            self._grabber = None

    def close(self) -> None:
        self._stop_grabbing()
        if not self._grabbing:  # interrupted while OpenCV waits in grab(): releasing under it could crash
            self.capture.release()


MAX_WEBCAM_INDEX = 2**31 - 1
URL_TIMEOUT_SECONDS = 15.0  # opening a URL, and waiting for its next frame (OpenCV's FFmpeg: 30 s)
STALL_SECONDS = 10.0  # a source silent this long before it ended is warned about


def open_capture(source: str):
    """An opened OpenCV capture of a URL (rtsp://, http://) or a webcam index ("0"); VideoDecodeError if it fails.

    A URL that does not answer is given up after ``URL_TIMEOUT_SECONDS`` (OpenCV's FFmpeg waited 30 s), and the
    opening runs in a helper thread so that Ctrl-C ends the wait at once (OpenCV holds the main thread until it
    returns, and Python runs the signal handler only then)."""
    import cv2

    from vidlstm.io.quiet import quiet_opencv

    quiet_opencv(cv2)  # its "[ WARN:0@30.1] ... Stream timeout triggered" lines: the error says what happened
    if "://" in source:
        try:
            name = utf8_name(source)
        except BackendFailure:  # OpenCV crashes (SIGSEGV) on such a name
            raise UsageError(f"{shown_name(source)}: a URL must be UTF-8 text") from None
        timeout_ms = int(URL_TIMEOUT_SECONDS * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
        opened = _in_thread(lambda: cv2.VideoCapture(name, cv2.CAP_FFMPEG, params), source)
    elif int(source) > MAX_WEBCAM_INDEX:  # OpenCV raises on an index past a C int
        raise UsageError(f"{source}: no webcam index (give 0, 1, ... or a URL)")
    else:
        opened = _in_thread(lambda: cv2.VideoCapture(int(source)), source)
    capture, seconds = opened
    if not capture.isOpened():
        capture.release()
        late = "://" in source and seconds >= 0.9 * URL_TIMEOUT_SECONDS
        raise VideoDecodeError(source, "OpenCV cannot open this camera or stream"
                               + (f" (no answer within {URL_TIMEOUT_SECONDS:g} s)" if late else ""))
    return capture


def _in_thread(open_fn, source: str):
    """(``open_fn()``, seconds it took), run in a daemon thread while this one waits in short steps (Ctrl-C works);
    what OpenCV raised there is a VideoDecodeError naming ``source``."""
    import threading

    result, failed, started = [], [], time.monotonic()

    def opening():
        try:
            result.append(open_fn())
        except Exception as err:  # noqa: BLE001 - cv2.error and kin: the source cannot be opened
            failed.append(err)

    worker = threading.Thread(target=opening, daemon=True, name="vidlstm-open")
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if not result:
        reason = " ".join(str(failed[0]).split())[:200] if failed else "no capture came back"
        raise VideoDecodeError(source, f"OpenCV cannot open this camera or stream ({reason})")
    return result[0], time.monotonic() - started


def open_stream(source: str, size: int, fps: float, backends=None) -> FileFrames | CaptureFrames:
    """Sampled frames of ``source`` (a file, a webcam index or a URL) as ``size`` x ``size`` RGB at ``fps`` (0: all).

    Iterate over the result, then ``close()`` it. Bad input is a one-line error naming the source:
    UsageError for a missing path or a directory, VideoDecodeError for a file no decoder can read.
    """
    source = str(source)
    if "://" in source or (source.isdigit() and not Path(source).exists()):
        return CaptureFrames(open_capture(source), size, fps, rotation=0, live=True, media_clock="://" in source,
                             name=shown_name(source))
    path = Path(source)
    if not path.exists():
        if path.is_symlink():  # a link to nothing, or a loop of links: said as classify and predict say it
            raise UsageError(f"{shown_name(source)}: {missing_file_reason(path)}")
        raise UsageError(f"{shown_name(source)}: no such file (give a video file, a webcam index or a URL)")
    if path.is_dir():
        raise UsageError(f"{source}: is a directory, not a video")
    return FileFrames(path, size, fps, backends=backends)
