"""Prediction record files (JSONL or CSV by suffix): append one complete line at a time, survive kill -9, resume."""
from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import stat
from pathlib import Path

from vidlstm.batch.record_lines import (CSV_HEADERS, FIELDS, LEGACY_FIELDS, STATUSES, _csv_header,  # noqa: F401
                                        check_record, csv_columns, decode_text, encode_line, foreign_tail,
                                        format_line, parse_records, record_format, record_keyer)
from vidlstm.batch.stamps import file_changed, file_stamp, recorded_stamp, stamp_record  # noqa: F401
from vidlstm.errors import UsageError, VidlstmError
from vidlstm.files import atomic_write, locked_file

def complete_part(data: bytes, fmt: str = "jsonl") -> bytes:
    """``data`` up to its last record's end: what a kill -9 or power cut in the middle of a write leaves valid.

    A record ends at a newline; in CSV not at one inside a quoted cell (a file name may hold newlines): a last
    record cut inside one is dropped whole, from the line it starts on. A JSONL record whole but for its newline (an
    editor's, or a hand-cut file) is kept: the result is then ``data`` with the newline added."""
    end = data.rfind(b"\n") + 1
    if fmt != "csv":
        return data + b"\n" if _whole_record(data[end:]) else data[:end]
    reader = csv.reader(io.StringIO(data[:end].decode("utf-8", "surrogateescape"), newline=""), strict=True)
    lines = 0  # physical lines of the records read whole
    try:
        for _ in reader:
            lines = reader.line_num
    except csv.Error as err:
        if "unexpected end of data" not in str(err):
            return data[:end]  # malformed elsewhere: parse_records names the line
        start = 0
        for _ in range(lines):
            start = data.index(b"\n", start) + 1
        return data[:start]
    return data[:end]


_RECORD_START = b'{"path": '
"""How every JSONL record of ours begins (``format_line``: the path first)."""


def _whole_record(tail: bytes) -> bool:
    """Whether ``tail`` (after a JSONL file's last newline) is a record of ours, whole: a JSON object cut short
    never parses."""
    if not tail.startswith(_RECORD_START):
        return False
    try:
        check_record(json.loads(tail.decode("utf-8", "surrogateescape")), "", 0)
    except (ValueError, RecursionError, VidlstmError):
        return False
    return True


def _may_be_torn_record(tail: bytes, after_records: bool, fmt: str) -> bool:
    """Whether ``tail``, the bytes after an output's last complete record, can be what a kill left of a record of
    ours (then the run drops it and goes on). Anything else is someone's data, which no run deletes."""
    if fmt == "jsonl":
        return tail.startswith(_RECORD_START) or _RECORD_START.startswith(tail)
    if not after_records:  # before our header is whole, only the header itself
        return encode_line(_csv_header()).startswith(tail)
    cells = next(csv.reader(io.StringIO(tail.decode("utf-8", "surrogateescape"), newline="")), [])
    if len(cells) < 2:  # a path cut short
        return True
    status_cut = len(cells) == 2  # the status cell may itself be cut
    return any(status.startswith(cells[1]) if status_cut else status == cells[1] for status in STATUSES)


def read_records(path) -> list[dict]:
    """All complete records of a JSONL or CSV record file (a torn last line is ignored, the file is not changed)."""
    return read_part(path)[0]


def read_part(path, strict: bool = False) -> tuple[list[dict], int]:
    """``read_records`` of a record file, and how many bytes at its end are a record cut off (left out), from one
    read of the file (`vidlstm merge` says which parts end so). ``strict``: bytes at the end that cannot be what a
    kill left of a record are a NotARecord, as a predict resuming the file refuses them, not a record cut off."""
    path = Path(path)
    fmt = record_format(path, "a record file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UsageError(f"{path}: cannot read ({err.strerror})") from None
    complete = complete_part(data, fmt)
    records = parse_records(decode_text(complete, fmt, path), fmt, path)
    tail = data[len(complete):]
    if strict and tail and not _may_be_torn_record(tail, bool(complete), fmt):
        raise foreign_tail(path, complete.count(b"\n") + 1, tail)
    return records, max(0, len(data) - len(complete))


_NO_LOCKS = -2
"""RecordFile's lock descriptor where the file system has no locks: none held, none closed, the output still sorted."""


def _lock_path(target: Path) -> Path:
    """The lock file of the record file at ``target`` (beside it: the output itself is replaced by the final sort)."""
    return target.with_name(f".{target.name}.lock")


def being_written(path) -> bool:
    """Whether a ``vidlstm predict`` holds the lock of the record file at ``path`` (it is still appending to it)."""
    target = output_target(path)
    try:
        fd = os.open(_lock_path(target), os.O_RDONLY)
    except OSError:
        return False  # no lock file: no run made one here
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock taken here
    return False


def check_output_folder(path: Path) -> None:
    """An output in a folder that does not exist is a usage error (a typo should not create directories)."""
    if not path.parent.is_dir():
        raise UsageError(f"{path}: output folder {path.parent} does not exist")


def output_target(path) -> Path:
    """Where an output's bytes go: the file itself, or the file a symbolic link named ``path`` points to."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def write_records(path, records) -> Path:
    """Write ``records`` to ``path`` atomically (temporary file, fsync, rename): readers see old or new, never half.

    A ``path`` that is a symbolic link keeps being one: its target is replaced. A folder that cannot be
    written or a full disk is a VidlstmError (one line); the file there before is left as it was.
    """
    path = Path(path)
    fmt = record_format(path)
    check_output_folder(path)
    target = output_target(path)
    odd = _not_a_regular_file(target)
    if odd:  # a FIFO or a device would be replaced by a regular file without a word
        raise UsageError(f"{path}: is {odd}, not a regular file; name a .jsonl or .csv file for -o")

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # bytes: a name that is not UTF-8 round-trips (surrogate escapes)
            if fmt == "csv":
                f.write(encode_line(_csv_header()))
            for record in records:
                f.write(encode_line(format_line(record, fmt)))

    try:  # a full disk, a read-only folder, or SIGTERM mid-write: the old file stays
        atomic_write(target, write)
    except OSError as err:
        raise VidlstmError(f"{path}: cannot write ({err.strerror or err})") from None
    return path


def sort_and_dedup(records, base: str | None = None, current=None) -> list[dict]:
    """One record per file (``record_keyer(base)``), sorted by path. ``current(key)``: the stamp the file has now
    (``file_stamp``), where known.

    Between records of two versions of a file (their stamps differ), the one of the file as it is now wins, else
    the later one (a resume appends after what it replaces; `merge` takes its parts in the order given). Between
    records of one version: an ``ok`` record beats an ``error`` one, a stamped one an unstamped one (an older
    vidlstm's) of the same status, and otherwise the later one wins."""
    key = record_keyer(base)
    best: dict[str, dict] = {}
    for record in records:
        name = key(record["path"])
        old = best.get(name)
        if old is None or _supersedes(record, old, current(name) if current else None):
            best[name] = record
    return sorted(best.values(), key=lambda r: r["path"])


def _supersedes(new: dict, old: dict, now: tuple[int, int] | None) -> bool:
    new_stamp, old_stamp = recorded_stamp(new), recorded_stamp(old)
    if new_stamp is not None and old_stamp is not None and new_stamp != old_stamp:
        return now != old_stamp  # the file as it is now, or (not known) the later record
    if (new_stamp is None) != (old_stamp is None) and new.get("status") == old.get("status"):
        return new_stamp is not None
    return new.get("status") == "ok" or old.get("status") != "ok"


def _not_a_regular_file(path: Path) -> str | None:
    """Why an existing ``path`` cannot hold records (a FIFO, a folder ...), None when it can or does not exist."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as err:
        return f"cannot stat ({err.strerror or err})"
    if stat.S_ISREG(mode):
        return None
    kinds = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO (named pipe)", stat.S_ISCHR: "a character device",
             stat.S_ISSOCK: "a socket", stat.S_ISBLK: "a block device"}
    return next((name for is_kind, name in kinds.items() if is_kind(mode)), "not a regular file")


class RecordFile:
    """An append-only record file that one ``vidlstm predict`` writes at a time.

    ``open()`` takes an exclusive lock on a lock file beside the output (``.NAME.lock``: the output itself is
    replaced by ``rewrite_sorted``, a lock on it would go with the old inode), repairs a torn last line (left
    by kill -9 or a crash mid-write) and returns the records already there, so the run can skip them.
    ``append()`` writes one complete line with a single ``write`` and fsyncs it before returning; a full disk
    is one VidlstmError line, and every record written before it stays. An output that is a symbolic link
    is written through to its target.
    """

    def __init__(self, path, fsync: bool = True):
        self.path = Path(path)
        self.format = record_format(self.path)
        self.fsync = fsync
        self.repaired_bytes = 0
        self.unsorted_reason: str | None = None  # why rewrite_sorted left the file as appended, if it did
        self.columns = FIELDS
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._held_lock: Path | None = None  # the lock file this run holds, removed by close()
        self._written = 0

    def open(self) -> list[dict]:
        check_output_folder(self.path)
        target = output_target(self.path)
        odd = _not_a_regular_file(target)
        if odd:
            raise UsageError(f"{self.path}: is {odd}, not a regular file; name a .jsonl or .csv file for -o")
        self._lock(target)
        try:
            fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as err:
            self.close()
            raise UsageError(f"{self.path}: cannot open for writing ({err.strerror})") from None
        self._fd = fd
        if self._lock_fd is None:  # no lock file could be made (read-only folder): lock the output itself
            self._lock_fd = -1
            self._flock(fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            self.close()
            raise UsageError(f"{self.path}: not a regular file; name a .jsonl or .csv file for -o")
        data = self._read_all()
        complete = complete_part(data, self.format)
        text = decode_text(complete, self.format, self.path)
        records = parse_records(text, self.format, self.path)
        if self.format == "csv" and complete:
            self.columns = csv_columns(text, self.path)
        if len(complete) > len(data):  # a whole last record without its newline: ended, so the next one starts apart
            self._write_bytes(b"\n")
        elif len(complete) < len(data):
            tail = data[len(complete):]
            if not _may_be_torn_record(tail, bool(complete), self.format):
                self.close()
                raise foreign_tail(self.path, complete.count(b"\n") + 1, tail)
            self.repaired_bytes = len(tail)
            os.ftruncate(fd, len(complete))
        if self.format == "csv" and not complete:
            self._write(_csv_header())
        self._written = 0
        return records

    def lock(self) -> "RecordFile":
        """Only take the output's lock (refused while a predict writes it), as `merge` does before replacing it."""
        self._lock(output_target(self.path))
        return self

    def _lock(self, target: Path) -> None:
        lock_path = _lock_path(target)
        try:
            self._lock_fd = locked_file(lock_path)  # not one a finished run removed while this one waited
            self._held_lock = lock_path
        except OSError as err:
            if err.filename is not None:  # no lock file can be made: a read-only folder, where no rename can happen
                self._lock_fd = None  # either (open() locks the output itself)
                return
            self._lock_fd = _NO_LOCKS
            self._not_locked(err)

    def _flock(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            self._not_locked(err)

    def _not_locked(self, err: OSError) -> None:
        """Another predict holds the lock (refused), or the file system has no locks (written unguarded, said)."""
        if isinstance(err, BlockingIOError):
            self.close()
            raise UsageError(f"{self.path}: another vidlstm predict is writing this file; wait for it or use another -o") from None
        from vidlstm.logs import log  # a file system without flock (some NFS, Lustre)

        log.warning(f"{self.path}: cannot lock the output ({err.strerror or err}): a second predict into it at "
                    f"the same time would not be refused")

    def _read_all(self) -> bytes:
        chunks = []
        offset = 0
        while chunk := os.pread(self._fd, 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks)

    def _write(self, text: str) -> None:
        self._write_bytes(encode_line(text))

    def _write_bytes(self, data: bytes) -> None:
        try:
            # One write() call of the whole line: with O_APPEND it lands at the end in one piece.
            written = os.write(self._fd, data)
            while written < len(data):  # only on a full disk or a signal; finish the line
                written += os.write(self._fd, data[written:])
            if self.fsync:
                os.fsync(self._fd)
        except OSError as err:
            kept = f"the {self._written} records written before it are kept; " if self._written else ""
            raise VidlstmError(f"{self.path}: cannot write a record ({err.strerror or err}); {kept}"
                               f"re-run the same command to resume") from None

    def append(self, record: dict) -> None:
        if self._fd is None:
            raise RuntimeError("RecordFile.append before open()")
        self._write(format_line(record, self.format, self.columns))
        self._written += 1

    def close(self) -> None:
        if self._held_lock is not None:  # removed while still held: no lock file is left beside the output
            self._held_lock.unlink(missing_ok=True)
            self._held_lock = None
        for name in ("_fd", "_lock_fd"):
            fd = getattr(self, name)
            if fd is not None and fd >= 0:
                os.close(fd)
            setattr(self, name, None)

    def rewrite_sorted(self, base: str | None = None, stamps: list | None = None, current=None) -> list[dict]:
        """Replace the file by its records sorted by path, one per path (the final form of a finished run;
        relative paths taken from ``base``, as ``record_keyer``). ``stamps``: the file stamps of the records this
        run appended, in order; a CSV of an older layout has no columns for them, so they are put back here.
        ``current``: as ``sort_and_dedup``'s.

        Where that cannot be done (a read-only folder, a full disk), the file stays as appended, every record
        in it, and ``unsorted_reason`` says why.
        """
        if self._fd is None:
            raise RuntimeError("RecordFile.rewrite_sorted before open()")
        text = decode_text(complete_part(self._read_all(), self.format), self.format, self.path)
        records = parse_records(text, self.format, self.path)
        if stamps and self._written and self.columns != FIELDS:  # appended in an older CSV layout
            for record, stamp in zip(records[-self._written:], stamps[-self._written:]):
                if recorded_stamp(record) is None:
                    stamp_record(record, stamp)
        records = sort_and_dedup(records, base, current)
        if self._lock_fd == -1:
            self.unsorted_reason = "its folder cannot be written, so it was not sorted"
            return records
        removed = os.fstat(self._fd).st_nlink == 0  # someone deleted the output (or its folder) during the run
        try:
            write_records(self.path, records)  # the lock file stays locked: a second run waits for close()
        except VidlstmError as err:
            reason = str(err).split(': cannot write ', 1)[-1].strip('()')
            if removed:  # the records are only in this process: nothing on disk holds them
                raise VidlstmError(f"{self.path}: the output was removed during the run and cannot be written "
                                   f"again ({reason.removeprefix(f'{self.path}: ')}); its {len(records)} records "
                                   f"are lost: re-run the command") from None
            self.unsorted_reason = f"not sorted ({reason})"
        return records

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
