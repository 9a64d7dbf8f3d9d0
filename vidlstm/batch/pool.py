"""Decode files in worker processes so that a decoder crash or hang costs one file, never the run.

Each worker owns a pipe and decodes the requests it is given one after another, sending back pieces
(a clip, or timeline chunks) and an end marker. The main process watches pipes and process sentinels
together: a worker that dies (segfault, out-of-memory kill) or goes ``timeout`` seconds without sending
anything is killed and replaced, its current file gets an error, and the files queued behind it go back
to the queue. Only small requests and finished pieces cross the pipes, and a worker that has decoded
ahead blocks on its pipe until the main process reads, so memory stays flat however many files there are.
"""
from __future__ import annotations

import collections
import contextlib
import multiprocessing as mp
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait

from vidlstm.batch.decode import DecodeRequest, decode_request
from vidlstm.batch.events import Failed, Finished, Piece
from vidlstm.errors import failure_reason
from vidlstm.io.quiet import silence_worker_stderr


def limit_decoder_threads(threads: int = 1) -> None:
    """Keep a worker to ``threads`` threads so workers plus the CNN never oversubscribe the cores."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:
        pass


def worker_main(conn, decode_fn, threads: int) -> None:
    """The loop of one worker process: receive a request, send its pieces and an end marker (or a failure)."""
    # Ctrl-C reaches the whole process group; the main process decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_decoder_threads(threads)
    silence_worker_stderr()
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):  # the main process is gone
            return
        if request is None:
            return
        try:
            for value in decode_fn(request):
                conn.send(("piece", value))
            conn.send(("done", None))
        except Exception as err:  # any decoder failure costs this file only
            try:
                conn.send(("error", failure_reason(err)))
            except (BrokenPipeError, OSError):
                return


@contextlib.contextmanager
def main_script_not_rerun(needed: bool = False):
    """Start processes without their running the caller's main script again.

    A forkserver or spawn child imports the parent's ``__main__`` (as ``__mp_main__``) to find what was defined
    there. A script that calls ``VideoClassifier.predict`` on a list at its top level, without an
    ``if __name__ == "__main__":`` guard, would then run its whole body again in the fork server and in every decode
    worker, and fail there ("start a new process before ... bootstrapping"), each worker's death blamed on a video.
    A worker runs vidlstm's code alone, so it needs nothing from ``__main__``: while it starts, ``__main__`` names
    no file and no module to import. ``needed``: the work function is itself defined in ``__main__``; left as is.
    """
    main = sys.modules.get("__main__")
    if needed or main is None:
        yield
        return
    saved = {key: main.__dict__[key] for key in ("__file__", "__spec__") if key in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


@dataclass
class _Slot:
    """One worker process and the requests handed to it, oldest (the one being decoded) first."""

    process: object
    conn: object
    assigned: collections.deque = field(default_factory=collections.deque)
    last_progress: float = 0.0  # when the worker last sent something (or got work while idle)
    started: float = 0.0  # when the worker began its current file


def _block_interrupts() -> bool:
    """Hold SIGINT and SIGTERM back (delivered when unblocked) in the main thread; False where that cannot be."""
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        return True
    except (AttributeError, OSError, ValueError):
        return False


def _kill_if_ours(pid: int | None) -> None:
    """SIGKILL ``pid`` if a process of ours (our process group) still has it: a worker whose fork server died."""
    if pid is None:
        return
    try:
        if os.getpgid(pid) == os.getpgid(0) and _state(pid) not in ("Z", "X", None):
            os.kill(pid, signal.SIGKILL)
    except OSError:  # gone (or not ours to signal)
        pass


def _state(pid: int) -> str | None:
    """The process state letter of ``pid`` (R, S, T, Z ...) from /proc, None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return None


class DecodePool:
    """``workers`` decode processes fed from a queue of requests; ``poll()`` returns Piece/Finished/Failed events."""

    def __init__(self, workers: int, timeout: float = 60.0, decode_fn=decode_request, prefetch: int = 2,
                 threads_per_worker: int = 1, start_method: str = "forkserver"):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.timeout = float(timeout)
        self.decode_fn = decode_fn
        self.prefetch = max(1, prefetch)
        self.threads_per_worker = threads_per_worker
        self.replaced = 0  # workers killed and replaced (crash or hang)
        self._ctx = mp.get_context(start_method)
        if start_method == "forkserver":
            # Import the decoders once in the fork server, so a replacement worker starts in milliseconds.
            self._ctx.set_forkserver_preload(["vidlstm.batch.pool", "vidlstm.batch.decode"])
        self._pending: collections.deque[DecodeRequest] = collections.deque()
        self._slots: list[_Slot] = []

    # -- life cycle ---------------------------------------------------------------------------------
    def start(self) -> "DecodePool":
        if not self._slots:  # idempotent: a pool started early (vidlstm.batch.early) is entered again later
            self._slots = [self._spawn() for _ in range(self.workers)]
        return self

    def _spawn(self) -> _Slot:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=worker_main, args=(child_conn, self.decode_fn, self.threads_per_worker),
                                    daemon=True, name="vidlstm-decode")
        try:
            with main_script_not_rerun(getattr(self.decode_fn, "__module__", None) == "__main__"):
                process.start()
        except OSError as err:  # e.g. a sandbox that refuses the fork server its socket
            parent_conn.close()
            child_conn.close()
            if self._ctx.get_start_method() != "forkserver":
                raise
            print(f"warning: decode workers cannot start through a fork server ({err}); starting them with spawn",
                  file=sys.stderr)
            self._ctx = mp.get_context("spawn")
            return self._spawn()
        child_conn.close()  # so the parent sees EOF when the worker dies
        return _Slot(process, parent_conn)

    def close(self) -> None:
        """End every worker: asked to stop, killed after 2 s. A second Ctrl-C waits for this (a run interrupted
        twice left a hung worker behind, holding the caller's pipes), and a worker is killed by its pid where the
        fork server died first (then ``is_alive`` says False of a worker that is not dead)."""
        blocked = _block_interrupts()
        try:
            for slot in self._slots:
                try:
                    slot.conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
            deadline = time.monotonic() + 2.0
            for slot in self._slots:
                slot.process.join(max(0.0, deadline - time.monotonic()))
                if slot.process.is_alive():
                    slot.process.kill()
                    slot.process.join()
                else:
                    _kill_if_ours(slot.process.pid)
                slot.conn.close()
            self._slots = []
        finally:
            if blocked:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- work -----------------------------------------------------------------------------------------
    def submit(self, requests) -> None:
        self._pending.extend(requests)
        if self._slots:
            self._dispatch()  # started workers begin at once, before the first poll

    @property
    def unfinished(self) -> int:
        """Requests not yet finished or failed (queued plus in flight)."""
        return len(self._pending) + sum(len(s.assigned) for s in self._slots)

    def _dispatch(self) -> None:
        now = time.monotonic()
        for slot in self._slots:
            while self._pending and len(slot.assigned) < self.prefetch:
                request = self._pending.popleft()
                if not slot.assigned:
                    slot.last_progress = slot.started = now  # the timeout counts from when the worker gets work
                slot.assigned.append(request)
                try:
                    slot.conn.send(request)
                except (BrokenPipeError, OSError):
                    break  # the worker just died; poll() sees its sentinel and requeues what it held

    def poll(self, block: bool) -> list:
        """Events ready now; with ``block``, wait until at least one arrives (or a worker is replaced)."""
        self._dispatch()
        busy = [s for s in self._slots if s.assigned]
        if not busy:
            return []
        events: list = []
        while True:
            timeout = 0.0
            if block:
                next_deadline = min(s.last_progress for s in busy) + self.timeout
                # At most an hour per wait (then the loop looks again): poll() refuses ~25 days and more.
                timeout = min(max(0.0, next_deadline - time.monotonic()), 3600.0)
            handles = [s.conn for s in busy] + [s.process.sentinel for s in busy]
            ready = set(wait(handles, timeout))
            for slot in busy:
                if slot.conn in ready:
                    self._drain(slot, events)
            for index, slot in enumerate(self._slots):
                if not slot.assigned:
                    continue
                if slot.process.sentinel in ready or not slot.process.is_alive():
                    self._drain(slot, events)  # whatever it sent before dying still counts
                    if slot.assigned:
                        self._replace(index, _death_reason(slot.process), events)
                elif time.monotonic() - slot.last_progress > self.timeout:
                    self._replace(index, f"timed out after {self.timeout:g} s", events)
            self._dispatch()
            busy = [s for s in self._slots if s.assigned]
            if events or not block or not busy:
                return events

    def _drain(self, slot: _Slot, events: list) -> None:
        while slot.assigned:
            try:
                if not slot.conn.poll(0):
                    return
                kind, value = slot.conn.recv()
            except (EOFError, OSError):
                return  # the worker died mid-message; the sentinel check reports it
            now = slot.last_progress = time.monotonic()
            request = slot.assigned[0]
            if kind == "piece":
                events.append(Piece(request, value))
            else:
                slot.assigned.popleft()
                events.append(Finished(request) if kind == "done" else Failed(request, value, now - slot.started))
                slot.started = now

    def _replace(self, index: int, reason: str, events: list) -> None:
        """Kill the worker at ``index``, fail its current file, requeue the rest, start a fresh worker."""
        slot = self._slots[index]
        if slot.process.is_alive():
            slot.process.kill()
        slot.process.join()
        slot.conn.close()
        events.append(Failed(slot.assigned.popleft(), reason, time.monotonic() - slot.started))
        self._pending.extendleft(reversed(slot.assigned))  # not started: they deserve a fresh try
        self._slots[index] = self._spawn()
        self.replaced += 1


def _death_reason(process) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        return f"decoder crashed (signal {-code}, {name})"
    return f"decoder process exited unexpectedly (exit code {code})"

