"""Join the part files of a sharded predict run into one record file, as an unsharded run would have written it."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from vidlstm.batch.record_lines import NotARecord, rebased
from vidlstm.batch.records import (RecordFile, being_written, file_stamp, output_target, read_part, read_records,
                                   record_format, sort_and_dedup, write_records)
from vidlstm.batch.run_settings import (common_settings, has_settings, keep_beside, other_settings, records_base,
                                       starting_at)
from vidlstm.batch.shard import Shard, part_of
from vidlstm.errors import UsageError, VidlstmError


@dataclass
class MergeResult:
    output: Path
    parts: int = 0
    records: int = 0  # records written (one per file)
    ok: int = 0
    failed: int = 0
    duplicates: int = 0  # records dropped because another part had the same file
    missing_parts: list[str] = field(default_factory=list)  # part files the names say exist but were not given
    torn: list[tuple[str, int]] = field(default_factory=list)  # (part, bytes) of a last record cut off, left out
    unchecked: list[str] = field(default_factory=list)  # parts with no settings file: model and settings unknown
    repeated: list[tuple[str, str]] = field(default_factory=list)  # (part, the same file named before it): read once


def missing_parts(parts) -> list[str]:
    """Part files implied by the names of ``parts`` (``X.partI-of-N.jsonl``) that are not among them. A part is
    there in either format: the shards of one run may have written JSONL and CSV."""
    given = {Path(p).resolve().with_suffix("") for p in parts}
    missing = set()
    for part in parts:
        position = part_of(part)
        if position is None:
            continue
        _, count = position
        stem = Path(part).stem
        base = Path(part).with_name(stem[: stem.rindex(".part")] + Path(part).suffix)
        for index in range(count):
            sibling = Shard(index, count).part_path(base)
            if sibling.resolve().with_suffix("") not in given:
                missing.add(str(sibling))
    return sorted(missing)


def _check_parts(parts, output) -> None:
    """Every part a file, none the output, none still being written by a predict (its lock is held)."""
    out = output_target(output).resolve()
    for part in parts:
        if not Path(part).is_file():
            raise UsageError(f"{part}: no such file")
        if output_target(part).resolve() == out:
            raise UsageError(f"{output}: is one of the parts; name another -o for the merged file")
        if being_written(part):
            raise UsageError(f"{part}: a vidlstm predict is still writing it; merge once every shard has finished")


def _distinct(parts) -> tuple[list, list[tuple[str, str]]]:
    """The parts, each file once, and (part, the name it was first given by) for each file named again: by another
    spelling (``a.jsonl ./a.jsonl``), a link or overlapping globs. Read twice, its records counted as duplicates."""
    first, distinct, repeated = {}, [], []
    for part in parts:
        st = os.stat(part)
        if (st.st_dev, st.st_ino) in first:
            repeated.append((str(part), first[st.st_dev, st.st_ino]))
        else:
            first[st.st_dev, st.st_ino] = str(part)
            distinct.append(part)
    return distinct, repeated


def _read_part(part) -> tuple[list[dict], int]:
    """A part's records and the bytes of a record cut off at its end (a kill mid-write: left out, said, as a predict
    resuming it drops them). A line that is no record, or an end no kill leaves, is refused as a resuming predict
    refuses it, with advice for a part: the one line that predict gives is for its output."""
    try:
        return read_part(part, strict=True)
    except NotARecord as err:
        if err.line is None:  # the CSV header
            raise UsageError(f"{part}: {err.reason}; it is no part written by vidlstm predict: leave it out of the "
                             f"merge") from None
        raise UsageError(f"{part}:{err.line}: {err.reason}; fix or remove that line (re-running that shard's predict "
                         f"command then redoes the file it recorded), then merge again") from None


def _check_output(output) -> list[dict]:
    """An existing output must hold records of ours (a merge replaces it): someone's other file is refused. Returns
    the records it holds."""
    if Path(output).is_dir():
        raise UsageError(f"{output}: is a directory; name a .jsonl or .csv file for -o")
    if Path(output).is_file() and Path(output).stat().st_size:
        try:
            return read_records(output)
        except VidlstmError:
            raise UsageError(f"{output}: exists and holds no vidlstm records; name a new file for -o") from None
    return []


def _check_replaced(output, earlier: list[dict], merged: list[dict], base, settings: dict | None) -> None:
    """A merge replaces its output: one holding records (``earlier``) of other files, or records made with other
    settings (another run's, or another model's), was replaced without a word, its records lost; merging the same
    parts again is not."""
    if not earlier:
        return
    if settings is not None and not has_settings(output):  # a merge of these parts would have kept them beside it
        raise UsageError(f"{output}: holds records whose model and settings cannot be checked (no settings file "
                         f"beside it, as a merge of these parts keeps); a merge would replace them: name a new file "
                         f"for -o")
    differ = other_settings(output_target(output), settings)
    if differ:
        raise UsageError(f"{output}: its records were made with {differ[0]}, the parts with {differ[1]}; a merge would "
                         f"replace them: name a new file for -o")
    out_base = records_base(output_target(output))
    covered = {r["path"] for r in merged}
    lost = [r["path"] for r in earlier if (r["path"] if out_base == base else rebased(r["path"], out_base, base))
            not in covered]
    if lost:
        raise UsageError(f"{output}: holds {len(lost)} record(s) of files no part holds (e.g. {lost[0]}); a merge "
                         f"replaces the file, so give it as one more part to keep them, or name a new file for -o")


def merge_parts(parts, output) -> MergeResult:
    """Read every part once (a file named twice: ``repeated``; a record cut off at a part's end is left out, and said:
    ``torn``; a line that is no record is refused, naming the part and line), keep one record per file
    (``sort_and_dedup``: of two versions of a file, the one there now or else the later part's; else ``ok`` over
    ``error``), sort by path and write ``output`` atomically. Parts may mix JSONL and CSV; the
    output's suffix decides. Parts made with different models or record settings (``run_settings``) are refused,
    as are parts still being written and an output that is a part or holds anything but records.
    """
    if not parts:
        raise UsageError("no part files given")
    record_format(output)
    _check_parts(parts, output)
    parts, repeated = _distinct(parts)
    earlier = _check_output(output)
    records, torn = [], []
    base = None  # where the merged records' relative paths start: where the first part's did
    for part in parts:
        part_base = records_base(output_target(part))
        base = base or part_base
        part_records, cut = _read_part(part)
        records.extend(r if part_base == base else dict(r, path=rebased(r["path"], part_base, base))
                       for r in part_records)
        if cut:
            torn.append((str(part), cut))
    settings = common_settings(parts)
    if settings is not None:
        settings = starting_at(settings, base, output_target(output))
    merged = sort_and_dedup(records, base, file_stamp)  # two versions of a file: the one there now, where readable
    _check_replaced(output, earlier, merged, base, settings)
    with RecordFile(output).lock():  # a predict writing the output would go on appending to the replaced file
        write_records(output, merged)
        keep_beside(Path(output), settings)
    ok = sum(r.get("status") == "ok" for r in merged)
    return MergeResult(output=Path(output), parts=len(parts), records=len(merged), ok=ok, failed=len(merged) - ok,
                       duplicates=len(records) - len(merged), missing_parts=missing_parts(parts), torn=torn,
                       unchecked=[str(p) for p in parts if not has_settings(p)], repeated=repeated)
