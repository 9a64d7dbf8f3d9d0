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


def test_of_two_versions_of_a_file_the_current_ones_record_wins_else_the_later():
    old_ok, new_error = _record("/v.mp4", "ok", (100, 5)), _record("/v.mp4", "error", (40, 9))
    assert sort_and_dedup([old_ok, new_error]) == [new_error]  # not known which is there now: the later
    assert sort_and_dedup([new_error, old_ok]) == [old_ok]
    for order in ([old_ok, new_error], [new_error, old_ok]):  # known: the one there now, whatever its time
        assert sort_and_dedup(order, current={"/v.mp4": (100, 5)}.get) == [old_ok]
        assert sort_and_dedup(order, current={"/v.mp4": (40, 9)}.get) == [new_error]
    # one version: an ok record beats an error one, and a stamped one an unstamped one of the same status
    assert sort_and_dedup([_record("/v.mp4", "ok", (1, 2)), _record("/v.mp4", "error", (1, 2))])[0]["status"] == "ok"
    assert sort_and_dedup([_record("/v.mp4", "ok"), _record("/v.mp4", "error", (1, 2))])[0]["status"] == "ok"
    stamped, unstamped = _record("/v.mp4", "ok", (1, 2)), _record("/v.mp4", "ok")
    assert sort_and_dedup([stamped, unstamped]) == sort_and_dedup([unstamped, stamped]) == [stamped]


def test_merge_keeps_the_record_of_the_version_there_now(tmp_path):
    from vidlstm.batch.record_lines import format_line

    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * 40)
    now = _stamp(video)
    parts = [tmp_path / "p.part0-of-2.jsonl", tmp_path / "p.part1-of-2.jsonl"]
    parts[0].write_text(format_line(_record(str(video), "error", now), "jsonl"))
    parts[1].write_text(format_line(_record(str(video), "ok", (100, now[1] + 10**9)), "jsonl"))  # a newer time
    merge_parts(parts, tmp_path / "p.jsonl")
    assert [r["status"] for r in read_records(tmp_path / "p.jsonl")] == ["error"]
    video.unlink()  # not there: the later part's record
    merge_parts(parts, tmp_path / "q.jsonl")
    assert [r["status"] for r in read_records(tmp_path / "q.jsonl")] == ["ok"]


@pytest.mark.parametrize("broken", [False, True])
def test_a_file_replaced_by_an_older_one_keeps_the_new_record(tmp_path, make_video, model_dir, broken):
    """`cp -p`, an unpacked archive or `wget -N` put a file with an older time in place: it was classified again,
    and then the old record kept, because the newer time won."""
    videos = video_folder(make_video, 2)
    out = tmp_path / "p.jsonl"
    run(_config([videos], out, model_dir))
    target = sorted(videos.iterdir())[0]
    if broken:
        target.write_bytes(b"not a video at all")
    else:
        _replace(target, make_video, seed=7)
    os.utime(target, ns=(10**18, 10**18))  # 2001: older than any record
    summary = run(_config([videos], out, model_dir))
    assert (summary.changed, summary.failed, summary.exit_code) == (1, int(broken), int(broken))
    record = {r["path"]: r for r in read_records(out)}[str(target)]
    assert (record["status"], record["file_bytes"], record["file_mtime_ns"]) == (
        "error" if broken else "ok", *_stamp(target))
    again = run(_config([videos], out, model_dir))
    assert (again.changed, again.skipped, again.exit_code) == (0, 2, int(broken))


def test_a_file_missing_when_recorded_is_classified_once_it_is_there(tmp_path, make_video, model_dir):
    videos = video_folder(make_video, 1)
    later = tmp_path / "later.mp4"
    out = tmp_path / "p.jsonl"
    assert run(_config([videos, later], out, model_dir)).failed == 1
    make_video("later.mp4", num_frames=12, height=32, width=32, fps=8.0)
    summary = run(_config([videos, later], out, model_dir))
    assert (summary.ok, summary.changed, summary.exit_code) == (1, 1, 0)
    assert {r["status"] for r in read_records(out)} == {"ok"}


def test_report_counts_one_record_per_file_in_an_interrupted_output(tmp_path):
    """An output killed during a resume still holds the records the resume replaced; report counted both."""
    from vidlstm.batch.record_lines import format_line
    from vidlstm.report.sources import load_source

    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * 40)
    out = tmp_path / "p.jsonl"
    out.write_text(format_line(_record(str(video), "ok", (99, 1)), "jsonl")
                   + format_line(_record(str(video), "error", _stamp(video)), "jsonl"))
    assert [r["status"] for r in load_source(out).records] == ["error"]


def test_a_shard_of_a_part_files_name_is_refused(tmp_path, make_video, model_dir):
    from vidlstm.errors import UsageError

    videos = video_folder(make_video, 2)
    with pytest.raises(UsageError, match=r"p.part0-of-2.jsonl: names a part file already; with a shard give the whole "
                                         r"output's name \(e.g. .*/p.jsonl\)"):
        run(_config([videos], tmp_path / "p.part0-of-2.jsonl", model_dir, shard="0/2"))
    assert not list(tmp_path.glob("*.jsonl"))


def test_files_recorded_under_another_path_are_named_before_they_are_classified_again(tmp_path, make_video, model_dir,
                                                                                     capsys):
    import shutil

    videos = video_folder(make_video, 2)
    out = tmp_path / "p.jsonl"
    run(_config([videos], out, model_dir))
    elsewhere = shutil.copytree(videos, tmp_path / "mounted_elsewhere")  # copy2: sizes and times kept
    capsys.readouterr()
    run(_config([elsewhere], out, model_dir))
    err = capsys.readouterr().err
    assert f"vidlstm predict: warning: {out}: 2 file(s) new to it have the name, size and time of a file recorded " \
           f"under another path ({elsewhere / 'v00.mp4'} and {videos / 'v00.mp4'})" in err


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


def test_an_output_on_a_file_system_without_locks_is_written_with_a_warning(tmp_path, make_video, model_dir,
                                                                             monkeypatch, caplog):
    """predict on a file system answering flock with ENOLCK was refused with a message about stdout."""
    import errno
    import fcntl

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    videos = video_folder(make_video, 2)
    monkeypatch.setattr(fcntl, "flock", no_locks)
    summary = run(_config([videos], tmp_path / "p.jsonl", model_dir))
    assert summary.ok == 2 and len(read_records(tmp_path / "p.jsonl")) == 2
    assert "cannot lock the output (No locks available): a second predict into it at the same time would not be " \
           "refused" in caplog.text
