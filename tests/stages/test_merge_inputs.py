"""What `vidlstm merge` does with odd inputs: a part named twice, a part holding a line that is no record. Parts
are written by hand here (no model runs): merge reads records, it never classifies."""
from __future__ import annotations

import os

import pytest

from vidlstm.batch.records import format_line, read_records
from vidlstm.cli import main as cli_main


def _part(path, names):
    path.write_text("".join(format_line({"path": name, "status": "ok", "label": "left", "score": 0.75,
                                         "top_k": [{"label": "left", "score": 0.75}]}, "jsonl") for name in names))
    return path


def test_a_part_named_twice_is_read_once_and_said(tmp_path, monkeypatch, capsys):
    """`merge a.jsonl ./a.jsonl` read the file twice: each of its records was counted as a duplicate dropped, and
    the parts counted twice."""
    monkeypatch.chdir(tmp_path)
    _part(tmp_path / "p.part0-of-2.jsonl", ["a.mp4", "b.mp4"])
    _part(tmp_path / "p.part1-of-2.jsonl", ["c.mp4"])
    os.symlink("p.part1-of-2.jsonl", "link.jsonl")
    given = ["p.part0-of-2.jsonl", "./p.part0-of-2.jsonl", "p.part1-of-2.jsonl", "link.jsonl", "p.part0-of-2.jsonl"]
    assert cli_main(["merge", *given, "-o", "m.jsonl"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "3 records (3 ok, 0 failed) from 2 parts, 0 duplicates dropped -> m.jsonl"
    warned = [line for line in err.splitlines() if "read once" in line]
    assert warned == [
        "vidlstm merge: warning: ./p.part0-of-2.jsonl: the same file as p.part0-of-2.jsonl, given before it; read once",
        "vidlstm merge: warning: link.jsonl: the same file as p.part1-of-2.jsonl, given before it; read once",
        "vidlstm merge: warning: p.part0-of-2.jsonl: given twice; read once"]
    assert [r["path"] for r in read_records("m.jsonl")] == ["a.mp4", "b.mp4", "c.mp4"]


@pytest.mark.parametrize("bad, line, reason", [
    (b'{"path": "x.mp4", "sta\n', 2, "not a JSON record, not a vidlstm record"),  # cut, then more records
    (b'{"path": "x.mp4", "status": "maybe"}\n', 2, "status 'maybe' (expected ok or error), not a vidlstm record"),
    (b"my notes", 3, "ends in 8 bytes that are no vidlstm record ('my notes')"),  # at the end: no kill leaves it
])
def test_a_part_holding_no_record_is_refused_naming_part_line_and_what_to_do(tmp_path, capsys, bad, line, reason):
    """The error ended "remove that line or use a new output file": a new output does not help a bad part. An end
    that no kill leaves was counted as a record cut off with "re-run that shard's predict command", which refuses
    it."""
    first = _part(tmp_path / "p.part0-of-2.jsonl", ["a.mp4"])
    second = _part(tmp_path / "p.part1-of-2.jsonl", ["b.mp4", "c.mp4"])
    lines = second.read_bytes().splitlines(keepends=True)
    second.write_bytes(lines[0] + bad + lines[1] if line == 2 else b"".join(lines) + bad)
    merged = tmp_path / "m.jsonl"
    assert cli_main(["merge", str(first), str(second), "-o", str(merged)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"vidlstm merge: error: {second}:{line}: {reason}; fix or remove that line (re-running that shard's predict "
        f"command then redoes the file it recorded), then merge again")
    assert not merged.exists()


def test_a_record_cut_off_at_a_parts_end_is_left_out_as_a_resuming_predict_drops_it(tmp_path, capsys):
    first = _part(tmp_path / "p.part0-of-2.jsonl", ["a.mp4"])
    second = _part(tmp_path / "p.part1-of-2.jsonl", ["b.mp4", "c.mp4"])
    second.write_bytes(second.read_bytes()[:-20])  # a kill mid-write
    assert cli_main(["merge", str(first), str(second), "-o", str(tmp_path / "m.jsonl")]) == 1
    assert f"incomplete: {second} ends in a record cut off (" in capsys.readouterr().err
    assert [r["path"] for r in read_records(tmp_path / "m.jsonl")] == ["a.mp4", "b.mp4"]


def test_a_csv_that_is_no_part_is_refused(tmp_path, capsys):
    first = _part(tmp_path / "p.part0-of-2.jsonl", ["a.mp4"])
    (tmp_path / "notes.csv").write_text("name,size\na.mp4,3\n")
    assert cli_main(["merge", str(first), str(tmp_path / "notes.csv"), "-o", str(tmp_path / "m.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"vidlstm merge: error: {tmp_path / 'notes.csv'}: CSV header is not vidlstm's (path,")
    assert err.endswith("; it is no part written by vidlstm predict: leave it out of the merge")
