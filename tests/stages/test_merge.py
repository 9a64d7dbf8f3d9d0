"""Sharded predict runs and `vidlstm merge`: shards are disjoint and cover all files; merged == unsharded."""
from __future__ import annotations

import pytest

from batch.predict_helpers import assert_same_records, tiny_model_dir, video_folder
from vidlstm.batch.records import read_records
from vidlstm.cli import main as cli_main
from vidlstm.stages.predict import PredictConfig, run


def _predict(videos, out, model_dir, shard=None):
    return run(PredictConfig(inputs=[str(videos)], output=str(out), model_dir=str(model_dir), device="cpu",
                             workers=0, threads=1, progress=False, shard=shard))


@pytest.fixture
def sharded_run(tmp_path, make_video, monkeypatch):
    """7 videos and a broken one, predicted unsharded and as 3 shards (shard 2 chosen by torchrun's env)."""
    model_dir = tiny_model_dir(tmp_path)
    videos = video_folder(make_video, 7)
    (videos / "broken.mp4").write_bytes(b"\0" * 64)
    _predict(videos, tmp_path / "all.jsonl", model_dir)
    parts = [_predict(videos, tmp_path / "preds.jsonl", model_dir, shard=f"{i}/3").output for i in range(2)]
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "3")
    parts.append(_predict(videos, tmp_path / "preds.jsonl", model_dir).output)
    return tmp_path, parts


def test_shards_are_disjoint_cover_all_files_and_merge_equals_unsharded(sharded_run, capsys):
    tmp_path, parts = sharded_run
    assert [p.name for p in parts] == [f"preds.part{i}-of-3.jsonl" for i in range(3)]
    per_part = [[r["path"] for r in read_records(p)] for p in parts]
    unsharded = read_records(tmp_path / "all.jsonl")
    flat = [path for paths in per_part for path in paths]
    assert sorted(flat) == [r["path"] for r in unsharded] and len(set(flat)) == len(flat) == 8
    assert cli_main(["merge", *map(str, reversed(parts)), "-o", str(tmp_path / "merged.jsonl")]) == 0
    assert "8 records (7 ok, 1 failed) from 3 parts" in capsys.readouterr().out
    assert_same_records(read_records(tmp_path / "merged.jsonl"), unsharded)


def test_merge_into_csv_and_duplicates_keep_the_ok_record(sharded_run):
    tmp_path, parts = sharded_run
    # The unsharded file overlaps every part: each file appears twice, and still comes out once.
    assert cli_main(["merge", *map(str, parts), str(tmp_path / "all.jsonl"), "-o", str(tmp_path / "m.csv")]) == 0
    merged = read_records(tmp_path / "m.csv")
    unsharded = read_records(tmp_path / "all.jsonl")
    assert [(r["path"], r["status"], r["label"]) for r in merged] == \
           [(r["path"], r["status"], r["label"]) for r in unsharded]


def test_merge_reports_missing_parts_with_exit_code_1(sharded_run, capsys):
    tmp_path, parts = sharded_run
    assert cli_main(["merge", str(parts[0]), str(parts[2]), "-o", str(tmp_path / "m.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "incomplete: missing" in err and "preds.part1-of-3.jsonl" in err
    assert len(read_records(tmp_path / "m.jsonl")) == len(read_records(parts[0])) + len(read_records(parts[2]))


def test_merge_of_a_missing_file_is_a_usage_error(tmp_path, capsys):
    assert cli_main(["merge", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "m.jsonl")]) == 2
    assert "nope.jsonl: no such file" in capsys.readouterr().err


def test_parts_made_with_different_models_are_not_merged(tmp_path, make_video, capsys):
    videos = video_folder(make_video, 4)
    model_dir, other = tiny_model_dir(tmp_path), tiny_model_dir(tmp_path / "other")
    with open(other / "config.json", "a") as f:
        f.write(" ")
    parts = [_predict(videos, tmp_path / "p.jsonl", model_dir, shard="0/2").output,
             _predict(videos, tmp_path / "p.jsonl", other, shard="1/2").output]
    assert cli_main(["merge", *map(str, parts), "-o", str(tmp_path / "all.jsonl")]) == 2
    assert "were made with different settings (the model " in capsys.readouterr().err
    assert not (tmp_path / "all.jsonl").exists()


def test_merge_waits_for_no_predict_and_leaves_no_stale_settings(sharded_run, capsys):
    from vidlstm.batch.records import RecordFile
    from vidlstm.batch.run_settings import settings_path

    tmp_path, parts = sharded_run
    out = tmp_path / "all.jsonl"  # the unsharded run's output, with its settings file beside it
    before = out.read_bytes()
    with RecordFile(out) as running:  # a predict still writing it
        running.open()
        assert cli_main(["merge", *map(str, parts), "-o", str(out)]) == 2
        assert "another vidlstm predict is writing this file" in capsys.readouterr().err
    assert out.read_bytes() == before
    # Parts copied without their hidden settings files: what the output's settings file said is gone with its
    # records, so no later resume is checked against it.
    copies = []
    for part in parts:
        copies.append(tmp_path / "copied" / part.name)
        copies[-1].parent.mkdir(exist_ok=True)
        copies[-1].write_bytes(part.read_bytes())
    assert settings_path(out).is_file()
    assert cli_main(["merge", *map(str, copies), "-o", str(out)]) == 0
    assert not settings_path(out).exists()


def test_parts_run_from_different_folders_merge_into_one_record_per_file(tmp_path, make_video, monkeypatch):
    model_dir = tiny_model_dir(tmp_path)
    video_folder(make_video, 4)  # tmp_path/videos
    for name in ("x", "z", "out"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path / "x")
    part0 = _predict("../videos", "../out/q.jsonl", model_dir, shard="0/2").output
    whole = _predict("../videos", "../out/all.jsonl", model_dir).output
    monkeypatch.chdir(tmp_path)
    part1 = _predict("videos", "out/q.jsonl", model_dir, shard="1/2").output
    monkeypatch.chdir(tmp_path / "z")
    assert cli_main(["merge", str(part0), str(tmp_path / part1), str(whole), "-o", "../out/m.jsonl"]) == 0
    merged = read_records(tmp_path / "out" / "m.jsonl")
    assert sorted(r["path"] for r in merged) == [f"../videos/v{i:02d}.mp4" for i in range(4)]  # from x, as part0
    monkeypatch.chdir(tmp_path)
    assert _predict("videos", "out/m.jsonl", model_dir).skipped == 4  # and the merged output resumes from anywhere


def test_a_part_cut_off_mid_record_is_incomplete_and_said(sharded_run, capsys):
    """A shard's machine that died mid-write left a part whose last record was cut off: merge dropped it silently,
    said nothing and exited 0, one file short."""
    tmp_path, parts = sharded_run
    data = parts[1].read_bytes()
    parts[1].write_bytes(data[:-40])
    assert cli_main(["merge", *map(str, parts), "-o", str(tmp_path / "m.jsonl")]) == 1
    err = capsys.readouterr().err
    assert f"vidlstm merge: error: incomplete: {parts[1]} ends in a record cut off (" in err
    assert "re-run that shard's predict command to finish it" in err
    assert len(read_records(tmp_path / "m.jsonl")) == 7


def test_parts_still_being_written_and_an_output_that_is_a_part_are_refused(sharded_run, capsys):
    from vidlstm.batch.records import RecordFile

    tmp_path, parts = sharded_run
    with RecordFile(parts[2]) as running:  # shard 2's predict has not finished
        running.open()
        assert cli_main(["merge", *map(str, parts), "-o", str(tmp_path / "m.jsonl")]) == 2
    assert f"{parts[2]}: a vidlstm predict is still writing it" in capsys.readouterr().err
    assert not (tmp_path / "m.jsonl").exists()
    before = parts[0].read_bytes()
    assert cli_main(["merge", *map(str, parts), "-o", str(parts[0])]) == 2
    assert "is one of the parts; name another -o" in capsys.readouterr().err and parts[0].read_bytes() == before


def test_an_output_that_is_someone_elses_file_or_a_folder_is_refused(sharded_run, capsys):
    tmp_path, parts = sharded_run
    (tmp_path / "notes.jsonl").write_text("my own notes\n")
    assert cli_main(["merge", *map(str, parts), "-o", str(tmp_path / "notes.jsonl")]) == 2
    assert "exists and holds no vidlstm records" in capsys.readouterr().err
    assert (tmp_path / "notes.jsonl").read_text() == "my own notes\n"
    (tmp_path / "folder.jsonl").mkdir()
    assert cli_main(["merge", *map(str, parts), "-o", str(tmp_path / "folder.jsonl")]) == 2
    assert "folder.jsonl: is a directory" in capsys.readouterr().err


def test_parts_of_one_run_in_both_formats_are_complete(tmp_path, make_video, capsys):
    """The docs say merge takes JSONL and CSV parts in any mix: the missing-part check read the other format's
    name as a missing part and exited 1."""
    videos = video_folder(make_video, 4)
    model_dir = tiny_model_dir(tmp_path)
    parts = [_predict(videos, tmp_path / "p.jsonl", model_dir, shard="0/2").output,
             _predict(videos, tmp_path / "p.csv", model_dir, shard="1/2").output]
    assert cli_main(["merge", *map(str, parts), "-o", str(tmp_path / "all.jsonl")]) == 0
    assert "4 records (4 ok, 0 failed) from 2 parts" in capsys.readouterr().out
    # as an unsharded run writes them: the CSV part's ok records had gained "error": null
    assert all("error" not in record for record in read_records(tmp_path / "all.jsonl"))


def test_a_part_without_its_settings_file_is_merged_with_a_warning(sharded_run, capsys):
    from vidlstm.batch.run_settings import settings_path

    tmp_path, parts = sharded_run
    settings_path(parts[1]).unlink()
    assert cli_main(["merge", *map(str, parts), "-o", str(tmp_path / "m.jsonl")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"vidlstm merge: warning: {parts[1]}: no settings file beside it (.NAME.settings.json, hidden: "
                   f"copy it with the part), so its model and settings were not checked against the other parts"]


def test_an_output_holding_other_files_records_or_another_models_is_not_replaced(sharded_run, make_video, capsys,
                                                                                 monkeypatch):
    """A merge into another run's output replaced it without a word: its records of other files were lost, and its
    settings file then named the parts' model."""
    tmp_path, parts = sharded_run
    monkeypatch.delenv("RANK")  # the fixture's third shard: the runs below are unsharded
    monkeypatch.delenv("WORLD_SIZE")
    merged = tmp_path / "merged.jsonl"
    for _ in range(2):  # the same parts merged again into their own earlier merge: replaced, the same file
        assert cli_main(["merge", *map(str, parts), "-o", str(merged)]) == 0
    assert len(read_records(merged)) == 8
    others = _predict(video_folder(make_video, 2, "others"), tmp_path / "others.jsonl", tmp_path / "model").output
    before = others.read_bytes()
    capsys.readouterr()
    assert cli_main(["merge", *map(str, parts), "-o", str(others)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"vidlstm merge: error: {others}: holds 2 record(s) of files no part holds (e.g. ") and \
        err.endswith("a merge replaces the file, so give it as one more part to keep them, or name a new file for -o")
    assert others.read_bytes() == before
    other_model = tiny_model_dir(tmp_path / "other")
    with open(other_model / "config.json", "a") as f:
        f.write(" ")  # another model: another digest
    _predict(tmp_path / "videos", tmp_path / "theirs.jsonl", other_model)
    assert cli_main(["merge", *map(str, parts), "-o", str(tmp_path / "theirs.jsonl")]) == 2
    assert "theirs.jsonl: its records were made with the model " in capsys.readouterr().err
    from vidlstm.batch.run_settings import settings_path

    settings_path(tmp_path / "theirs.jsonl").unlink()  # copied without it, or written by `classify --json`
    assert cli_main(["merge", *map(str, parts), "-o", str(tmp_path / "theirs.jsonl")]) == 2
    assert "theirs.jsonl: holds records whose model and settings cannot be checked" in capsys.readouterr().err
