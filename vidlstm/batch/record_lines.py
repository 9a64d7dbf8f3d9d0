"""What one line of a prediction record file holds: JSONL and CSV formatting and parsing, and the check that a
line is a record of ours (a foreign line is a usage error naming the file and line, never a file that is done)."""
from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from vidlstm.errors import UsageError

# Column order of CSV files; nested values (top-k list, timeline segments) go into a cell as JSON.
FIELDS = ("path", "status", "label", "score", "top_k", "frames", "decoder", "seconds",
          "duration_covered", "duration", "error", "segments", "sampling", "explanation", "file_bytes", "file_mtime_ns")
# CSV files of an older vidlstm, still read and resumed in their own layout: before the file's size and time had
# columns, and before `sampling` and `explanation` had.
LEGACY_FIELDS = FIELDS[:12]
CSV_HEADERS = (FIELDS, FIELDS[:14], LEGACY_FIELDS)
_FLOAT_FIELDS = {"score", "seconds", "duration_covered", "duration"}
_INT_FIELDS = {"frames", "file_bytes", "file_mtime_ns"}
_JSON_FIELDS = {"top_k", "segments"}
# Left out of a record that has none. file_bytes and file_mtime_ns: the video's size and modification time (ns) when
# its run began; a resume classifies a file again where they changed (records.file_changed).
_OPTIONAL_FIELDS = ("segments", "sampling", "explanation", "file_bytes", "file_mtime_ns")
STATUSES = ("ok", "error")
_LINE_BREAKS_IN_TEXT = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}
"""Characters that JSON leaves raw but that many line readers (Python's ``str.splitlines`` among them) break at:
written escaped, so a file name holding one stays on its record's line."""
csv.field_size_limit(2 ** 31 - 1)  # a long timeline's segments cell is far over the default 131072 characters


def record_format(path, role: str = "output") -> str:
    """"jsonl" or "csv", from the file suffix; ``role`` names the file in the refusal ("output", "input")."""
    suffix = Path(path).suffix.lower()
    if not suffix and Path(path).name.lower() in (".jsonl", ".ndjson", ".csv"):  # a name that is only a suffix
        raise UsageError(f"{path}: name the {role} file before its suffix (e.g. preds{Path(path).name})")
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if Path(path).is_dir():  # `-o results` where results/ is a folder: say so, not that it lacks a suffix
        example = Path(path) / "preds.jsonl"  # joined as a path: `-o out/` gives out/preds.jsonl, not out//preds.jsonl
        raise UsageError(f"{path}: is a directory; name a .jsonl or .csv file for the {role}, e.g. {example}")
    raise UsageError(f"{path}: {role} must end in .jsonl or .csv (got {suffix or 'no suffix'!r})")


def format_line(record: dict, fmt: str, columns=FIELDS) -> str:
    """One record as one complete line of the file, newline included.

    JSONL lines are valid JSON (no NaN) and valid UTF-8: a file name that is not UTF-8 (held as
    surrogate escapes, as Python does) is written as \\udcXX escapes and reads back as the same name.
    CSV cells carry such a name as its own bytes (``encode_line``), as a file listing would.
    """
    if fmt == "jsonl":
        # json.dumps escapes newlines inside strings, so a record is always exactly one line; the path comes first,
        # so that what a kill leaves of a line is told from someone else's data (records._may_be_torn_record).
        record = {"path": record["path"], **record}
        text = json.dumps(record, ensure_ascii=False, allow_nan=False)
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate: a non-UTF-8 file name
                text = json.dumps(record, allow_nan=False)
            for raw, escaped in _LINE_BREAKS_IN_TEXT.items():
                text = text.replace(raw, escaped)  # only ever inside a JSON string
        return text + "\n"
    row = []
    for name in columns:
        value = record.get(name)
        if value is None:
            row.append("")
        elif name in _JSON_FIELDS:
            row.append(json.dumps(value, ensure_ascii=False, allow_nan=False))
        else:
            row.append(str(value))
    buf = io.StringIO()
    # With "\n" as the line end, csv quotes a cell holding "\n" but not a bare "\r", at which its reader breaks.
    quoting = csv.QUOTE_ALL if any("\r" in cell for cell in row) else csv.QUOTE_MINIMAL
    csv.writer(buf, lineterminator="\n", quoting=quoting).writerow(row)
    return buf.getvalue()


def encode_line(text: str) -> bytes:
    """The bytes of a line: UTF-8, a non-UTF-8 file name (surrogate escapes) as its original bytes."""
    return text.encode("utf-8", "surrogateescape")


def _csv_header(columns=FIELDS) -> str:
    return ",".join(columns) + "\n"


class NotARecord(UsageError):
    """What a record file holds at ``where`` (FILE:LINE, or FILE for its CSV header) is no record of ours:
    ``reason`` says what. The advice fits an output a predict resumes; `vidlstm merge` gives its own for a part."""

    def __init__(self, where: str, reason: str, advice: str, line: int | None = None):
        self.where, self.reason, self.line = where, reason, line
        super().__init__(f"{where}: {reason}; {advice}")


def _foreign(source, number, what: str) -> NotARecord:
    return NotARecord(f"{source}:{number}", f"{what}, not a vidlstm record",
                      "remove that line or use a new output file", number)


def foreign_tail(source, line: int, tail: bytes) -> NotARecord:
    """``tail``, the bytes from ``line`` on after a record file's last complete record, is someone's data, not what
    a kill left of a record of ours: no run drops it."""
    shown = tail[:40].decode("utf-8", "replace").replace("\n", " ")
    return NotARecord(str(source), f"ends in {len(tail)} bytes that are no vidlstm record ({shown!r})",
                      "remove them or use a new output file", line)


def check_record(value, source, number) -> dict:
    """``value`` if it is a prediction record of ours (a path, status ok/error, an ok one's label and score)."""
    if not isinstance(value, dict):
        raise _foreign(source, number, f"a JSON {type(value).__name__}")
    path, status = value.get("path"), value.get("status")
    if not isinstance(path, str) or not path or "\0" in path:
        raise _foreign(source, number, "no file path")
    if status not in STATUSES:
        raise _foreign(source, number, f"status {status!r} (expected ok or error)")
    if status == "ok":
        score = value.get("score")
        if (not isinstance(value.get("label"), str) or isinstance(score, bool)
                or not isinstance(score, (int, float)) or not math.isfinite(score)):
            raise _foreign(source, number, "an ok status without a label and a score")
    return value


def _from_row(row: dict, source, number: int) -> dict:
    record = {}
    try:
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
    except (ValueError, RecursionError) as err:
        raise _foreign(source, number, f"an unreadable cell ({' '.join(str(err).split())[:80]})") from None
    for name in _OPTIONAL_FIELDS:
        if record.get(name) is None:
            del record[name]
    if record.get("status") == "ok" and record.get("error") is None:
        del record["error"]  # a CSV's empty cell: an ok record has no error field (merged into JSONL it said null)
    return check_record(record, source, number)


def csv_columns(text: str, source) -> tuple[str, ...]:
    """The columns of a record CSV (``FIELDS``, or ``LEGACY_FIELDS`` of an older vidlstm); refuses any other header."""
    first = text.split("\n", 1)[0].removesuffix("\r") + "\n"  # a file re-saved with CRLF line ends is still ours
    for columns in CSV_HEADERS:
        if first == _csv_header(columns):
            return columns
    raise NotARecord(str(source), f"CSV header is not vidlstm's ({','.join(FIELDS)})", "use a new output file")


def decode_text(data: bytes, fmt: str, source) -> str:
    """The text of a record file: JSONL must be UTF-8 (a line that is not is named); CSV keeps any bytes of a name."""
    if fmt == "csv":  # a byte-order mark that a spreadsheet put first is not part of the header
        return data.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")  # a byte-order mark that an editor put first is not part of a record
    except UnicodeDecodeError as err:
        raise _foreign(source, data.count(b"\n", 0, err.start) + 1, "bytes that are not UTF-8 text") from None


def parse_records(text: str, fmt: str, source) -> list[dict]:
    """The records in ``text`` (complete lines only; the caller drops a torn tail first).

    A line that is not a record of ours (not JSON, a list, an object without a path or status ...) is a
    UsageError naming the file and line: it is never taken as a file that is done.
    """
    if fmt == "jsonl":
        records = []
        for number, line in enumerate(text.split("\n"), 1):  # "\n" alone ends a record (a name may hold U+2028)
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                raise _foreign(source, number, "not a JSON record") from None
            records.append(check_record(value, source, number))
        return records
    if not text:
        return []
    csv_columns(text, source)
    reader = csv.DictReader(io.StringIO(text))
    records = []
    try:
        for row in reader:
            if None in row or any(value is None for value in row.values()):
                raise _foreign(source, reader.line_num, "a row with the wrong number of cells")
            records.append(_from_row(row, source, reader.line_num))
    except csv.Error as err:
        raise _foreign(source, reader.line_num, f"an unreadable CSV row ({err})") from None
    return records


def rebased(path: str, start: str, base: str) -> str:
    """``path``, relative and taken from ``start``, made relative to ``base`` through its real folder (``lnk/..``:
    where ``lnk`` leads, as ``record_keyer`` resolves it); an absolute path as it is."""
    if os.path.isabs(path):
        return path
    folder = os.path.realpath(os.path.join(start, os.path.dirname(path)))
    return os.path.relpath(os.path.join(folder, os.path.basename(path)), base)


def record_keyer(base: str | None = None):
    """``key(path)``: the file a record is about, as its absolute path with the folders resolved.

    So `v/a.mp4`, `./v/a.mp4` and `$PWD/v/a.mp4` are one file (one record, in one run and across a resume)
    while each record keeps the path as the user typed it. Folders are resolved (symbolic links, ``..``)
    once each; a linked file is named by where it is, as class-folder discovery names it. A relative path is
    taken from ``base`` (None: the working folder): the folder an output's first run started in.
    """
    folders: dict[str, str] = {}
    start = base or os.getcwd()

    def key(path: str) -> str:
        # Joined, not abspath'd: realpath must see `lnk/..` to follow the link first (abspath would drop both).
        head, name = os.path.split(os.path.join(start, path))
        if head not in folders:
            folders[head] = os.path.realpath(head)
        return os.path.join(folders[head], name)

    return key
