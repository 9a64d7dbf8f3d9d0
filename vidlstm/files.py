"""Atomic file writes: readers (and a re-run after a kill) see the old file or the whole new one, never half."""
from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
import warnings
from pathlib import Path


def atomic_write(path, write) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``.

    The temporary file is in the same folder (a rename is atomic only within one file system) and is
    removed if anything fails, a KeyboardInterrupt included. Named here rather than by ``mkstemp``, whose
    0600 mode would make shared model folders private.
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        # A failed write (a full disk) names no file, a failed open names our temporary: name the file meant.
        if err.errno is not None and err.filename in (None, str(tmp)):
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path, text: str, newline: str | None = None, errors: str = "strict") -> Path:
    """``atomic_write`` of UTF-8 text (``newline=""`` writes line endings as given, as csv wants; ``errors``
    as ``open``'s, e.g. "backslashreplace" for a name that is not UTF-8)."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline=newline, errors=errors) as f:
            f.write(text)

    return atomic_write(path, write)


def atomic_write_bytes(path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def _fsync_dir(directory: Path) -> None:
    # The rename itself is only durable once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # a platform or file system without directory handles: the rename is done anyway
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def without_glyph_warnings():
    """matplotlib drawing text in a script its font lacks (labels such as 猫): boxes, not a warning per figure."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font", category=UserWarning)
        yield


def locked_file(path) -> int:
    """A descriptor of the lock file ``path`` (made if absent) holding its flock: BlockingIOError where another
    process holds it; OSError from os.open where it cannot be made (its ``filename`` set), from flock where the file
    system has no locks (``filename`` None). A run that ends removes its lock file while it still holds it (train's
    run folder, predict's output), so a run that opened the file just before and locks it once it is free holds a
    removed file: it opens the path again (a third run may have made a new lock there, which it must not hold at
    the same time)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                return fd
        except FileNotFoundError:  # removed by the run that held it: open the path again
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
