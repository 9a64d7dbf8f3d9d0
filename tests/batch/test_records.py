"""Record files: one complete line per record, torn tails repaired on resume, CSV round trip, locking."""
from __future__ import annotations

import json

import pytest

from vidlstm.batch.records import RecordFile, read_records, sort_and_dedup, write_records
from vidlstm.errors import UsageError, VidlstmError


def _ok(path, label="walk", score=0.75):
    return {"path": path, "status": "ok", "label": label, "score": score,
            "top_k": [{"label": label, "score": score}, {"label": "run", "score": 1 - score}],
            "frames": 16, "decoder": "pyav", "seconds": 0.12, "duration_covered": 9.5, "duration": 10.0}


def _error(path, reason="cannot decode"):
    return {"path": path, "status": "error", "label": None, "score": None, "top_k": [], "frames": 0,
            "decoder": None, "seconds": 0.01, "error": reason}


def test_jsonl_torn_last_line_is_dropped_and_the_run_goes_on(tmp_path):
    out = tmp_path / "preds.jsonl"
    with RecordFile(out) as f:
        assert f.open() == []
        f.append(_ok("a.mp4"))
        f.append(_ok("b.mp4"))
    with open(out, "ab") as raw:  # what kill -9 in the middle of a write could leave
        raw.write(b'{"path": "c.mp4", "status": "o')
    assert [r["path"] for r in read_records(out)] == ["a.mp4", "b.mp4"]  # readers ignore the torn tail
    with RecordFile(out) as f:
        assert [r["path"] for r in f.open()] == ["a.mp4", "b.mp4"]
        assert f.repaired_bytes == len(b'{"path": "c.mp4", "status": "o')
        f.append(_ok("c.mp4"))
    lines = out.read_text().splitlines()
    assert [json.loads(line)["path"] for line in lines] == ["a.mp4", "b.mp4", "c.mp4"]
    assert out.read_bytes().endswith(b"\n")


def test_a_whole_last_record_without_its_newline_is_kept(tmp_path):
    """A last JSONL record whole but for its newline (an editor, a hand-cut file) was taken as torn and deleted."""
    from vidlstm.batch.records import read_part

    out = tmp_path / "preds.jsonl"
    with RecordFile(out) as f:
        f.open()
        f.append(_ok("a.mp4"))
        f.append(_ok("b.mp4"))
    out.write_bytes(out.read_bytes()[:-1])
    assert [r["path"] for r in read_records(out)] == ["a.mp4", "b.mp4"] and read_part(out)[1] == 0
    with RecordFile(out) as f:
        assert [r["path"] for r in f.open()] == ["a.mp4", "b.mp4"] and f.repaired_bytes == 0
        f.append(_ok("c.mp4"))  # on a line of its own
    assert [json.loads(line)["path"] for line in out.read_text().splitlines()] == ["a.mp4", "b.mp4", "c.mp4"]
    out.write_bytes(out.read_bytes()[:-2])  # the closing brace gone too: cut off, dropped
    assert read_part(out)[1] > 0 and [r["path"] for r in read_records(out)] == ["a.mp4", "b.mp4"]


def test_an_output_whose_folder_was_removed_during_the_run_is_an_error_not_a_warning(tmp_path):
    """The folder removed mid-run: the final sort failed, and the run exited 0 saying every record was in it."""
    import shutil

    out = tmp_path / "out" / "preds.jsonl"
    out.parent.mkdir()
    with RecordFile(out) as f:
        f.open()
        f.append(_ok("a.mp4"))
        shutil.rmtree(tmp_path / "out")
        with pytest.raises(VidlstmError, match=r"preds.jsonl: the output was removed during the run and cannot be "
                                               r"written again \(output folder .*out does not exist\); its 1 records "
                                               r"are lost: re-run the command$"):
            f.rewrite_sorted()
    out.parent.mkdir()  # only the file removed: it is written again, every record in it
    with RecordFile(out) as f:
        f.open()
        f.append(_ok("a.mp4"))
        out.unlink()
        f.rewrite_sorted()
        assert f.unsorted_reason is None and [r["path"] for r in read_records(out)] == ["a.mp4"]


def test_csv_round_trip_keeps_types_and_nested_fields(tmp_path):
    out = tmp_path / "preds.csv"
    timeline = dict(_ok("t.mp4"), segments=[{"start": 0.0, "end": 2.5, "label": "walk", "score": 0.9}])
    records = [_ok("a, with comma.mp4"), _error('b "quoted".mp4', "damaged stream: x"), timeline]
    with RecordFile(out) as f:
        f.open()
        for r in records:
            f.append(r)
    back = read_records(out)
    # A CSV has every column in every row, so absent fields come back as None; but an ok record has no error field
    # (merged into JSONL, a CSV part's ok records said "error": null).
    assert back[0] == _ok("a, with comma.mp4")
    assert back[1] == dict(_error('b "quoted".mp4', "damaged stream: x"), duration_covered=None, duration=None)
    assert back[2]["segments"] == timeline["segments"]
    assert out.read_text().splitlines()[0].startswith("path,status,label,score,top_k")


def test_foreign_csv_and_garbage_jsonl_lines_are_refused_with_the_file_named(tmp_path):
    foreign = tmp_path / "other.csv"
    foreign.write_text("name,value\nx,1\n")
    with pytest.raises(UsageError, match="other.csv: CSV header is not vidlstm's"):
        RecordFile(foreign).open()
    garbage = tmp_path / "g.jsonl"
    garbage.write_text(json.dumps(_ok("a.mp4")) + "\nnot json\n")
    with pytest.raises(VidlstmError, match="g.jsonl:2: not a JSON record"):
        read_records(garbage)


def test_unknown_suffix_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="must end in .jsonl or .csv"):
        RecordFile(tmp_path / "preds.txt")
    (tmp_path / "results").mkdir()  # -o naming a folder: said as such, not as a missing suffix
    with pytest.raises(UsageError, match=r"results: is a directory; name a .jsonl or .csv file for the output, "
                                         r"e.g. .*results/preds.jsonl$"):
        RecordFile(tmp_path / "results")
    from vidlstm.batch.record_lines import record_format

    with pytest.raises(UsageError, match=r"results/: is a directory; .* e.g. .*[^/]/results/preds.jsonl$"):
        record_format(f"{tmp_path / 'results'}/")  # as the command line gives it


def test_a_second_writer_is_refused_while_the_first_holds_the_file(tmp_path):
    out = tmp_path / "preds.jsonl"
    with RecordFile(out) as first:
        first.open()
        with pytest.raises(UsageError, match="another vidlstm predict is writing"):
            RecordFile(out).open()
    with RecordFile(out) as again:  # released on close
        again.open()


def test_rewrite_sorted_keeps_one_record_per_file_ok_beating_error(tmp_path):
    out = tmp_path / "preds.jsonl"
    with RecordFile(out) as f:
        f.open()
        for r in [_ok("c.mp4"), _error("a.mp4"), _ok("a.mp4", score=0.6), _ok("b.mp4"), _error("b.mp4")]:
            f.append(r)
        final = f.rewrite_sorted()
    assert [(r["path"], r["status"]) for r in final] == [("a.mp4", "ok"), ("b.mp4", "ok"), ("c.mp4", "ok")]
    assert read_records(out) == final
    assert not list(tmp_path.glob(".*tmp*"))  # the temporary file was renamed into place


def test_sort_and_dedup_later_error_replaces_earlier_error():
    merged = sort_and_dedup([_error("x.mp4", "first"), _error("x.mp4", "second")])
    assert [r["error"] for r in merged] == ["second"]


def test_write_records_then_read_back_both_formats(tmp_path):
    records = [_ok("a.mp4"), _error("b.mp4")]
    for name in ("all.jsonl", "all.csv"):
        write_records(tmp_path / name, records)
        back = read_records(tmp_path / name)
        assert [(r["path"], r["status"], r["score"]) for r in back] == [("a.mp4", "ok", 0.75), ("b.mp4", "error", None)]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_names_holding_line_breaks_of_any_kind_round_trip(tmp_path, suffix):
    names = ["a\u2028b.mp4", "c\u2029d.mp4", "e\x85f.mp4", "g\rh.mp4", "i\r\nj.mp4", "k\nl.mp4", "plain.mp4"]
    out = tmp_path / f"preds{suffix}"
    with RecordFile(out) as f:
        f.open()
        for name in names:
            f.append(_ok(name))
        assert [r["path"] for r in f.rewrite_sorted()] == sorted(names)
    assert sorted(r["path"] for r in read_records(out)) == sorted(names)
    if suffix == ".jsonl":  # one record per physical line, whatever a line reader takes for a line break
        assert len(out.read_text().splitlines()) == len(names)


def test_a_csv_row_torn_after_a_newline_inside_a_quoted_name_is_dropped_whole(tmp_path):
    out = tmp_path / "preds.csv"
    with RecordFile(out) as f:
        f.open()
        f.append(_ok("a.mp4"))
    with open(out, "ab") as raw:  # kill -9 in the middle of a row whose file name holds a newline
        raw.write(b'"b\nc.mp4",ok,wa')
    assert [r["path"] for r in read_records(out)] == ["a.mp4"]
    with RecordFile(out) as f:
        assert [r["path"] for r in f.open()] == ["a.mp4"]
        f.append(_ok("b\nc.mp4"))
    assert [r["path"] for r in read_records(out)] == ["a.mp4", "b\nc.mp4"]


def test_a_cell_over_the_csv_modules_default_limit_reads_back(tmp_path):
    out = tmp_path / "preds.csv"
    segments = [{"start": i * 0.5, "end": i * 0.5 + 0.5, "label": "walk", "score": 0.6} for i in range(3000)]
    write_records(out, [dict(_ok("long.mp4"), segments=segments)])
    assert len(out.read_text()) > 131072
    assert read_records(out)[0]["segments"] == segments


def test_record_files_an_editor_resaved_with_crlf_or_a_byte_order_mark_still_read(tmp_path):
    csv_out, jsonl_out = tmp_path / "p.csv", tmp_path / "p.jsonl"
    write_records(csv_out, [_ok("a.mp4"), _ok("b.mp4")])
    csv_out.write_bytes(csv_out.read_bytes().replace(b"\n", b"\r\n"))
    write_records(jsonl_out, [_ok("a.mp4"), _ok("b.mp4")])
    jsonl_out.write_bytes(b"\xef\xbb\xbf" + jsonl_out.read_bytes().replace(b"\n", b"\r\n"))
    for out in (csv_out, jsonl_out):
        assert [r["path"] for r in read_records(out)] == ["a.mp4", "b.mp4"]
        with RecordFile(out) as f:
            assert len(f.open()) == 2
            f.append(_ok("c.mp4"))
        assert [r["path"] for r in read_records(out)] == ["a.mp4", "b.mp4", "c.mp4"]


def test_a_final_sort_that_cannot_be_written_says_why_once(tmp_path, monkeypatch):
    import vidlstm.batch.records as records

    def full_disk(path, records_):
        raise VidlstmError(f"{path}: cannot write (No space left on device)")

    out = tmp_path / "preds.jsonl"
    with RecordFile(out) as f:
        f.open()
        f.append(_ok("b.mp4"))
        f.append(_ok("a.mp4"))
        monkeypatch.setattr(records, "write_records", full_disk)
        f.rewrite_sorted()
    assert f.unsorted_reason == "not sorted (No space left on device)"
    assert [r["path"] for r in read_records(out)] == ["b.mp4", "a.mp4"]  # every record kept, as appended


@pytest.mark.parametrize("suffix, content", [
    (".jsonl", b"my precious notes, not json"),
    (".jsonl", b'{"path": "a.mp4", "status": "error", "error": "x"}\nand then some notes'),
    (".csv", b"name,value"),
])
def test_data_that_is_no_torn_record_is_never_dropped(tmp_path, suffix, content):
    out = tmp_path / f"notes{suffix}"
    out.write_bytes(content)
    with pytest.raises(UsageError, match=f"notes{suffix}: ends in .* bytes that are no vidlstm record"):
        RecordFile(out).open()
    assert out.read_bytes() == content


def test_what_a_kill_leaves_of_a_first_record_or_header_is_dropped(tmp_path):
    for name, content in (("a.jsonl", b'{"path": "x.mp4", "sta'), ("b.jsonl", b'{"pa'), ("c.csv", b"path,status,la")):
        (tmp_path / name).write_bytes(content)
        with RecordFile(tmp_path / name) as f:
            assert f.open() == [] and f.repaired_bytes == len(content)


def test_a_quote_a_person_typed_into_a_csv_row_costs_no_record(tmp_path):
    out = tmp_path / "preds.csv"
    write_records(out, [_ok(f"{name}.mp4") for name in "abcdef"])
    lines = out.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace(",ok,walk,", ',ok,walk" (checked),')  # a quote in the middle of a cell: literal there
    out.write_text("".join(lines))
    assert [r["path"] for r in read_records(out)] == [f"{name}.mp4" for name in "abcdef"]
    with RecordFile(out) as f:
        assert len(f.open()) == 6 and f.repaired_bytes == 0


@pytest.mark.parametrize("tail, dropped", [
    (b"g.mp4,o", True), (b'"h\nline.mp4",ok,wa', True), (b"i.mp", True), (b"j.mp4,error,,,", True),
    (b"this is my note, no newline", False), (b"k.mp4,maybe,x", False),
])
def test_only_what_a_kill_leaves_of_a_csv_row_is_dropped(tmp_path, tail, dropped):
    out = tmp_path / "preds.csv"
    write_records(out, [_ok("a.mp4")])
    before = out.read_bytes() + tail
    out.write_bytes(before)
    if dropped:
        with RecordFile(out) as f:
            assert [r["path"] for r in f.open()] == ["a.mp4"] and f.repaired_bytes == len(tail)
    else:
        with pytest.raises(UsageError, match="bytes that are no vidlstm record"):
            RecordFile(out).open()
        assert out.read_bytes() == before


def test_a_csv_a_spreadsheet_saved_with_a_byte_order_mark_still_reads(tmp_path):
    out = tmp_path / "p.csv"
    write_records(out, [_ok("a.mp4"), _ok("b.mp4")])
    out.write_bytes(b"\xef\xbb\xbf" + out.read_bytes())
    assert [r["path"] for r in read_records(out)] == ["a.mp4", "b.mp4"]
    with RecordFile(out) as f:
        assert len(f.open()) == 2
        f.append(_ok("c.mp4"))
    assert [r["path"] for r in read_records(out)] == ["a.mp4", "b.mp4", "c.mp4"]
