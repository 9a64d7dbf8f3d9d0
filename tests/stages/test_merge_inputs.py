"""What `vidlstm merge` does with odd inputs: a part named twice. Parts are written by hand here (no model runs):
merge reads records, it never classifies."""
from __future__ import annotations

import os

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
