"""A video's stamp (size, modification time) in its prediction record: a re-run classifies again a file changed
since its record was made."""
from __future__ import annotations

import os

from vidlstm.errors import NO_FILE_REASONS


def file_stamp(path) -> tuple[int, int] | None:
    """(size in bytes, modification time in ns) of the video at ``path`` (a link's target), None where it cannot
    be read."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_size, st.st_mtime_ns


def stamp_record(record: dict, stamp: tuple[int, int] | None) -> dict:
    """``record`` with the stamp its video had when the run began (none for a file that was not there)."""
    if stamp is not None:
        record["file_bytes"], record["file_mtime_ns"] = stamp
    return record


def recorded_stamp(record: dict) -> tuple[int, int] | None:
    """The stamp a record carries; None in records of an older vidlstm, or of a file that was missing."""
    size, mtime = record.get("file_bytes"), record.get("file_mtime_ns")
    return (size, mtime) if isinstance(size, int) and isinstance(mtime, int) else None


def file_changed(record: dict, stamp: tuple[int, int] | None) -> bool:
    """Whether the video was replaced or edited since ``record`` was made: its size or time differs from the
    record's stamp, or it is there now where its record says there was no such file. Otherwise a record without a
    stamp (an older vidlstm's), or a file that cannot be read now, counts as unchanged."""
    then = recorded_stamp(record)
    if then is None:
        missing = record.get("status") == "error" and str(record.get("error") or "").startswith(NO_FILE_REASONS)
        return missing and stamp is not None
    return stamp is not None and then != stamp
