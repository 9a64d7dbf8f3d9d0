"""Prediction record files (JSONL or CSV by suffix): append one complete line at a time, survive kill -9, resume."""
from __future__ import annotations

import csv
import fcntl
import io
import json
import os
from pathlib import Path

from vidlstm.errors import UsageError, VidlstmError
from vidlstm.files import atomic_write

# Column order of CSV files; nested values (top-k list, timeline segments) go into a cell as JSON.
FIELDS = ("path", "status", "label", "score", "top_k", "frames", "decoder", "seconds",
          "duration_covered", "duration", "error", "segments")
_FLOAT_FIELDS = {"score", "seconds", "duration_covered", "duration"}
_INT_FIELDS = {"frames"}
_JSON_FIELDS = {"top_k", "segments"}


def record_format(path) -> str:
    """"jsonl" or "csv", from the file suffix."""
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise UsageError(f"{path}: output must end in .jsonl or .csv (got {suffix or 'no suffix'!r})")


def format_line(record: dict, fmt: str) -> str:
    """One record as one complete line of the file, newline included."""
    if fmt == "jsonl":
        # json.dumps escapes newlines inside strings, so a record is always exactly one line.
        return json.dumps(record, ensure_ascii=False) + "\n"
    row = []
    for name in FIELDS:
        value = record.get(name)
        if value is None:
            row.append("")
        elif name in _JSON_FIELDS:
            row.append(json.dumps(value, ensure_ascii=False))
        else:
            row.append(str(value))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)
    return buf.getvalue()


def _csv_header() -> str:
    return ",".join(FIELDS) + "\n"


def _from_row(row: dict) -> dict:
    record = {}
    for name in FIELDS:
        text = row.get(name)
        if text is None or text == "":
            record[name] = [] if name == "top_k" else None
        elif name in _JSON_FIELDS:
            record[name] = json.loads(text)
        elif name in _FLOAT_FIELDS:
            record[name] = float(text)
        elif name in _INT_FIELDS:
            record[name] = int(text)
        else:
            record[name] = text
    if record.get("segments") is None:
        del record["segments"]
    return record


def parse_records(text: str, fmt: str, source) -> list[dict]:
    """The records in ``text`` (complete lines only; the caller drops a torn tail first)."""
    if fmt == "jsonl":
        records = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise VidlstmError(f"{source}:{number}: not a JSON record; remove that line or use a new output file") from None
        return records
    if not text:
        return []
    if not text.startswith(_csv_header()):
        raise UsageError(f"{source}: CSV header is not vidlstm's ({','.join(FIELDS)}); use a new output file")
    try:
        return [_from_row(row) for row in csv.DictReader(io.StringIO(text))]
    except (ValueError, csv.Error) as err:
        raise VidlstmError(f"{source}: unreadable CSV record ({err})") from None


def complete_part(data: bytes) -> bytes:
    """``data`` up to its last newline: what a kill -9 or power cut in the middle of a write leaves valid."""
    return data[: data.rfind(b"\n") + 1]


def read_records(path) -> list[dict]:
    """All complete records of a JSONL or CSV record file (a torn last line is ignored, the file is not changed)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UsageError(f"{path}: cannot read ({err.strerror})") from None
    return parse_records(complete_part(data).decode("utf-8"), record_format(path), path)


def check_output_folder(path: Path) -> None:
    """An output in a folder that does not exist is a usage error (a typo should not create directories)."""
    if not path.parent.is_dir():
        raise UsageError(f"{path}: output folder {path.parent} does not exist")


def write_records(path, records) -> Path:
    """Write ``records`` to ``path`` atomically (temporary file, fsync, rename): readers see old or new, never half."""
    path = Path(path)
    fmt = record_format(path)
    check_output_folder(path)

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            if fmt == "csv":
                f.write(_csv_header())
            for record in records:
                f.write(format_line(record, fmt))

    return atomic_write(path, write)


def sort_and_dedup(records) -> list[dict]:
    """One record per path, sorted by path: an ``ok`` record beats an ``error`` one, otherwise the later one wins."""
    best: dict[str, dict] = {}
    for record in records:
        old = best.get(record["path"])
        if old is None or record.get("status") == "ok" or old.get("status") != "ok":
            best[record["path"]] = record
    return [best[p] for p in sorted(best)]


class RecordFile:
    """An append-only record file that one ``vidlstm predict`` writes at a time.

    ``open()`` repairs a torn last line (left by kill -9 or a crash mid-write), takes an exclusive lock so
    two runs never interleave lines, and returns the records already there, so the run can skip them.
    ``append()`` writes one complete line with a single ``write`` and fsyncs it before returning.
    """

    def __init__(self, path, fsync: bool = True):
        self.path = Path(path)
        self.format = record_format(self.path)
        self.fsync = fsync
        self.repaired_bytes = 0
        self._fd: int | None = None

    def open(self) -> list[dict]:
        check_output_folder(self.path)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as err:
            raise UsageError(f"{self.path}: cannot open for writing ({err.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UsageError(f"{self.path}: another vidlstm predict is writing this file; wait for it or use another -o") from None
        self._fd = fd
        data = self._read_all()
        complete = complete_part(data)
        if len(complete) < len(data):
            self.repaired_bytes = len(data) - len(complete)
            os.ftruncate(fd, len(complete))
        if self.format == "csv" and not complete:
            self._write(_csv_header())
        return parse_records(complete.decode("utf-8"), self.format, self.path)

    def _read_all(self) -> bytes:
        chunks = []
        offset = 0
        while chunk := os.pread(self._fd, 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks)

    def _write(self, text: str) -> None:
        data = text.encode("utf-8")
        # One write() call of the whole line: with O_APPEND it lands at the end in one piece.
        written = os.write(self._fd, data)
        while written < len(data):  # only on a full disk or a signal; finish the line
            written += os.write(self._fd, data[written:])
        if self.fsync:
            os.fsync(self._fd)

    def append(self, record: dict) -> None:
        if self._fd is None:
            raise RuntimeError("RecordFile.append before open()")
        self._write(format_line(record, self.format))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def rewrite_sorted(self) -> list[dict]:
        """Replace the file by its records sorted by path, one per path (the final form of a finished run)."""
        if self._fd is None:
            raise RuntimeError("RecordFile.rewrite_sorted before open()")
        records = sort_and_dedup(parse_records(complete_part(self._read_all()).decode("utf-8"), self.format, self.path))
        write_records(self.path, records)  # the lock goes with the old inode; the run is over anyway
        return records

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
