"""Find the video files under the paths given to `vidlstm predict`, in a deterministic (sorted) order."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vidlstm.batch.record_lines import record_keyer
from vidlstm.errors import UsageError
from vidlstm.io.info import is_video_name
from vidlstm.io.reader import STREAM_HINT, names_a_stream

__all__ = ["VideoFile", "find_videos", "is_video_name"]

@dataclass(frozen=True)
class VideoFile:
    """A video to process: ``path`` as it goes into the record, ``key`` its path relative to the input it came from.

    The key, not the absolute path, decides the shard, so machines that mount the same data at different
    places still split it the same way.
    """

    path: str
    key: str


def find_videos(inputs, recursive: bool = False, unlisted: list | None = None) -> list[VideoFile]:
    """Expand files and directories into a sorted, duplicate-free list of videos.

    A file named on the command line is taken whatever its suffix (the user asked for it); inside a
    directory only video suffixes count, and sub-directories only with ``recursive`` (hidden ones never;
    linked ones too, each folder once however many links lead to it). A folder that cannot be listed
    (permissions) is appended to ``unlisted`` as ``"FOLDER: cannot list directory (REASON)"`` and the
    rest is found; with ``unlisted`` None it is a UsageError. A path that does not exist is listed as a file (its
    record says so, as for a file that vanishes during the run), unless no path given exists: a UsageError.
    """
    found: dict[str, VideoFile] = {}
    key = record_keyer()  # one file under two spellings (`v/a.mp4`, `$PWD/v/a.mp4`) is listed once

    def cannot_list(folder: Path, err: OSError) -> None:
        reason = f"{folder}: cannot list directory ({err.strerror or err})"
        if unlisted is None:
            raise UsageError(reason)
        unlisted.append(reason)

    missing = []
    for raw in inputs:
        root = Path(raw)
        if root.is_dir():
            for path in _walk(root, recursive, cannot_list):
                found.setdefault(key(str(path)), VideoFile(str(path), path.relative_to(root).as_posix()))
        elif os.path.lexists(root):  # lexists: a broken link or a link loop still gets its error record
            found.setdefault(key(str(root)), VideoFile(str(root), root.name))
        else:
            missing.append(raw)
    if missing and len(missing) == len(inputs):  # nothing at all to do: a typo, said before any output is made
        raise UsageError(f"{missing[0]}: no such file or directory" + (STREAM_HINT if names_a_stream(missing[0]) else ""))
    for raw in missing:  # one path gone since the first run of the same command: its error record, the rest goes on
        found.setdefault(key(str(raw)), VideoFile(str(raw), Path(raw).name))
    return sorted(found.values(), key=lambda f: f.path)


def _walk(root: Path, recursive: bool, cannot_list):
    """The video-named entries of ``root`` (and, with ``recursive``, of its sub-folders): a loop over a stack, not
    a recursion, so a tree of any depth is walked; a folder reached again (a link back up the tree) is skipped."""
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)  # one walk order on any file system
        except OSError as err:
            cannot_list(folder, err)
            continue
        below = []
        for entry in entries:
            if _is_dir(entry):
                if recursive and not entry.name.startswith("."):  # skip .git, .cache and friends
                    below.append(folder / entry.name)
            elif is_video_name(entry.name):
                # Anything with a video name that is not a directory is the user's file: a link loop or a
                # dangling link gets an error record from the decoder rather than vanishing or crashing.
                yield folder / entry.name
        stack.extend(reversed(below))  # depth first, in name order: a file reached by two links is named alike


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # a link to a folder too
    except OSError:  # ELOOP and friends: not a directory we could walk
        return False
