"""Find the video files under the paths given to `vidlstm predict`, in a deterministic (sorted) order."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vidlstm.batch.record_lines import record_keyer
from vidlstm.errors import UsageError
from vidlstm.io.info import is_video_name

__all__ = ["VideoFile", "find_videos", "is_video_name"]

@dataclass(frozen=True)
class VideoFile:
    """A video to process: ``path`` as it goes into the record, ``key`` its path relative to the input it came from.

    The key, not the absolute path, decides the shard, so machines that mount the same data at different
    places still split it the same way.
    """

    path: str
    key: str


def find_videos(inputs, recursive: bool = False) -> list[VideoFile]:
    """Expand files and directories into a sorted, duplicate-free list of videos.

    A file named on the command line is taken whatever its suffix (the user asked for it); inside a
    directory only video suffixes count, and sub-directories only with ``recursive``.
    """
    found: dict[str, VideoFile] = {}
    key = record_keyer()  # one file under two spellings (`v/a.mp4`, `$PWD/v/a.mp4`) is listed once
    for raw in inputs:
        root = Path(raw)
        if root.is_dir():
            for path in _walk(root, recursive):
                found.setdefault(key(str(path)), VideoFile(str(path), path.relative_to(root).as_posix()))
        elif os.path.lexists(root):  # lexists: a broken link or a link loop still gets its error record
            found.setdefault(key(str(root)), VideoFile(str(root), root.name))
        else:
            raise UsageError(f"{raw}: no such file or directory")
    return sorted(found.values(), key=lambda f: f.path)


def _walk(root: Path, recursive: bool):
    if not recursive:
        with os.scandir(root) as entries:
            for entry in entries:
                # Anything with a video name that is not a directory is the user's file: a link loop or a
                # dangling link gets an error record from the decoder rather than vanishing or crashing.
                if is_video_name(entry.name) and not _is_dir(entry):
                    yield root / entry.name
        return
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise_walk_error):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # skip .git, .cache and friends
        for name in filenames:
            if is_video_name(name):
                yield Path(dirpath) / name


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # ELOOP and friends: not a directory we could walk
        return False


def _raise_walk_error(err: OSError):
    raise UsageError(f"{err.filename}: cannot list directory ({err.strerror})")
