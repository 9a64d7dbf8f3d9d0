"""A file replaced or edited since its record was written is classified again by a resumed predict; its new
record replaces the old one, in the run's output and in a merge of parts."""
from __future__ import annotations

import json
import os

import pytest

from batch.predict_helpers import tiny_model_dir, video_folder
from vidlstm.batch.merge import merge_parts
from vidlstm.batch.records import FIELDS, read_records, sort_and_dedup
from vidlstm.cli import main as cli_main
from vidlstm.stages.predict import PredictConfig, run


@pytest.fixture
def model_dir(tmp_path):
    return tiny_model_dir(tmp_path)


def _config(inputs, output, model_dir, **kw):
    return PredictConfig(inputs=[str(p) for p in inputs], output=str(output), model_dir=str(model_dir),
                         device="cpu", progress=False, threads=1, workers=1, **kw)


def _stamp(path):
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def _replace(path, make_video, seed):
    """Put other content at ``path`` (a longer clip, so its size differs too) with a later modification time."""
    old = os.stat(path).st_mtime_ns
    fresh = make_video(f"fresh{seed}.mp4", num_frames=20, height=32, width=32, fps=8.0, seed=seed)
    os.replace(fresh, path)
    os.utime(path, ns=(old + 10**9, old + 10**9))


@pytest.mark.parametrize("name", ["p.jsonl", "p.csv"])
def test_records_carry_the_files_size_and_time(tmp_path, make_video, model_dir, name):
    videos = video_folder(make_video, 2)
    out = tmp_path / name
    run(_config([videos], out, model_dir))
    records = read_records(out)
    assert [(r["file_bytes"], r["file_mtime_ns"]) for r in records] == [_stamp(p) for p in sorted(videos.iterdir())]


@pytest.mark.parametrize("name", ["p.jsonl", "p.csv"])
def test_a_replaced_file_is_classified_again_and_its_record_replaced(tmp_path, make_video, model_dir, name):
    videos = video_folder(make_video, 3)
    out = tmp_path / name
    run(_config([videos], out, model_dir))
    first = {r["path"]: r for r in read_records(out)}
    target = sorted(videos.iterdir())[1]
    _replace(target, make_video, seed=7)

    summary = run(_config([videos], out, model_dir))
    assert (summary.ok, summary.failed, summary.skipped, summary.changed) == (1, 0, 2, 1)
    records = read_records(out)
    assert [r["path"] for r in records] == sorted(first)  # one record per file, sorted
    again = {r["path"]: r for r in records}[str(target)]
    assert (again["file_bytes"], again["file_mtime_ns"]) == _stamp(target)
    assert again["duration"] > first[str(target)]["duration"]  # 20 frames now, 12 before
    for path in set(first) - {str(target)}:  # the others' records stay as they were
        assert {r["path"]: r for r in records}[path] == first[path]

    assert run(_config([videos], out, model_dir)).changed == 0  # and a third run has nothing left to do


def test_a_good_file_replaced_by_a_broken_one_gets_its_error_record(tmp_path, make_video, model_dir):
    videos = video_folder(make_video, 2)
    out = tmp_path / "p.jsonl"
    run(_config([videos], out, model_dir))
    target = sorted(videos.iterdir())[0]
    target.write_bytes(b"not a video at all")

    summary = run(_config([videos], out, model_dir))
    assert (summary.failed, summary.changed, summary.exit_code) == (1, 1, 1)
    record = {r["path"]: r for r in read_records(out)}[str(target)]
    assert record["status"] == "error" and record["file_bytes"] == len(b"not a video at all")


def test_a_touched_file_counts_as_changed_and_a_record_without_a_stamp_does_not(tmp_path, make_video, model_dir):
    videos = video_folder(make_video, 2)
    out = tmp_path / "p.jsonl"
    run(_config([videos], out, model_dir))
    lines = out.read_text().splitlines()
    old = json.loads(lines[1])  # as an older vidlstm wrote it: no stamp
    del old["file_bytes"], old["file_mtime_ns"]
    out.write_text("\n".join([lines[0], json.dumps(old)]) + "\n")
    for path in videos.iterdir():
        os.utime(path, ns=(os.stat(path).st_mtime_ns + 10**9,) * 2)

    summary = run(_config([videos], out, model_dir))
    assert (summary.ok, summary.skipped, summary.changed) == (1, 1, 1)


def test_the_cli_says_how_many_were_classified_again(tmp_path, make_video, model_dir, capsys):
    videos = video_folder(make_video, 2)
    out = tmp_path / "p.jsonl"
    args = ["predict", str(videos), "-o", str(out), "--model", str(model_dir), "--workers", "1", "--threads", "1"]
    assert cli_main(args) == 0
    _replace(sorted(videos.iterdir())[0], make_video, seed=9)
    capsys.readouterr()
    assert cli_main(args) == 0
    assert "1 ok, 0 failed, 1 skipped (already in the output), 1 classified again (changed since their records)" \
        in capsys.readouterr().out


def _record(path, status, stamp=None):
    record = {"path": path, "status": status, "label": "a" if status == "ok" else None,
              "score": 0.9 if status == "ok" else None, "top_k": [], "frames": 8, "decoder": "pyav", "seconds": 0.1}
    if status == "error":
        record["error"] = "broken"
    if stamp:
        record["file_bytes"], record["file_mtime_ns"] = stamp
    return record


def test_the_newer_version_of_a_file_wins_over_an_ok_record_of_the_older():
    old_ok, new_error = _record("v.mp4", "ok", (100, 5)), _record("v.mp4", "error", (40, 9))
    assert sort_and_dedup([old_ok, new_error]) == [new_error]
    assert sort_and_dedup([new_error, old_ok]) == [new_error]  # the parts of a merge come in any order
    # one version (or records without stamps): an ok record still beats an error one
    assert sort_and_dedup([_record("v.mp4", "ok", (1, 2)), _record("v.mp4", "error", (1, 2))])[0]["status"] == "ok"
    assert sort_and_dedup([_record("v.mp4", "ok"), _record("v.mp4", "error", (1, 2))])[0]["status"] == "ok"


def test_merge_keeps_the_newer_versions_record(tmp_path):
    from vidlstm.batch.record_lines import format_line

    parts = [tmp_path / "p.part-0-of-2.jsonl", tmp_path / "p.part-1-of-2.jsonl"]
    parts[0].write_text(format_line(_record("v.mp4", "error", (40, 9)), "jsonl"))
    parts[1].write_text(format_line(_record("v.mp4", "ok", (100, 5)), "jsonl"))
    merge_parts(parts, tmp_path / "p.jsonl")
    assert [r["status"] for r in read_records(tmp_path / "p.jsonl")] == ["error"]


def test_csv_columns_end_with_the_stamp():
    assert FIELDS[-2:] == ("file_bytes", "file_mtime_ns")


@pytest.mark.parametrize("layout", [12, 14])
def test_records_resumed_into_an_older_csv_layout_keep_their_stamps(tmp_path, make_video, model_dir, layout):
    """An older CSV has no columns for the stamps: records appended to it are written without them, and the
    final sorted rewrite (in today's layout) puts them back, for this run's records only."""
    videos = video_folder(make_video, 2)
    out = tmp_path / "old.csv"
    first = sorted(str(p) for p in videos.iterdir())[0]
    out.write_text(",".join(FIELDS[:layout]) + f"\n{first},error,,,,0,,0.1,,,old failure" + "," * (layout - 11) + "\n")
    summary = run(_config([videos], out, model_dir))
    assert (summary.skipped, summary.ok) == (1, 1)
    records = read_records(out)
    assert out.read_text().splitlines()[0] == ",".join(FIELDS)
    assert "file_bytes" not in records[0]  # the earlier run's record: its file's state then is unknown
    second = sorted(videos.iterdir())[1]
    assert (records[1]["file_bytes"], records[1]["file_mtime_ns"]) == _stamp(second)
