"""predict's flags in every mode: --min-score and --explain apply to timelines too; CSV keeps every field."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from batch.predict_helpers import readout_model_dir, tiny_model_dir, video_folder
from vidlstm.batch.records import read_records
from vidlstm.cli import main as cli_main
from vidlstm.stages.predict import PredictConfig, run


@pytest.fixture
def model_dir(tmp_path):
    return tiny_model_dir(tmp_path)


def _config(inputs, output, model_dir, **kw):
    kw.setdefault("workers", 0)
    return PredictConfig(inputs=[str(p) for p in inputs], output=str(output), model_dir=str(model_dir),
                         device="cpu", progress=False, threads=1, **kw)


def test_timeline_honours_min_score_and_explain(tmp_path, make_video, model_dir):
    videos = video_folder(make_video, 2)
    out = tmp_path / "t.jsonl"
    run(_config([videos], out, model_dir, timeline=True, timeline_fps=4.0, min_score=1.0,
                explain_dir=str(tmp_path / "explain")))
    records = read_records(out)
    assert [r["label"] for r in records] == ["unknown", "unknown"]  # no untrained score reaches 1.0
    for record in records:
        explanation = json.loads(Path(record["explanation"]).read_text())
        assert len(explanation["frames"]) == record["frames"] == 6  # one entry per timeline step
        assert (tmp_path / "explain" / explanation["strip"]).is_file()
        assert record["segments"]


def test_csv_keeps_sampling_and_explanation(tmp_path, make_video, model_dir):
    videos = video_folder(make_video, 2)
    for name in ("p.jsonl", "p.csv"):
        run(_config([videos], tmp_path / name, model_dir, explain_dir=str(tmp_path / "explain")))
    as_json, as_csv = read_records(tmp_path / "p.jsonl"), read_records(tmp_path / "p.csv")
    assert [(r["sampling"], r["explanation"]) for r in as_csv] == [(r["sampling"], r["explanation"]) for r in as_json]
    assert all(r["sampling"] in ("keyframes", "exact") and r["explanation"].endswith(".json") for r in as_csv)


def test_a_csv_written_before_the_new_columns_is_resumed_in_its_own_layout(tmp_path, make_video, model_dir):
    from vidlstm.batch.records import LEGACY_FIELDS

    videos = video_folder(make_video, 2)
    out = tmp_path / "old.csv"
    first = sorted(str(p) for p in videos.iterdir())[0]
    out.write_text(",".join(LEGACY_FIELDS) + f"\n{first},error,,,,0,,0.1,,,old failure,\n")
    summary = run(_config([videos], out, model_dir))
    assert (summary.skipped, summary.ok) == (1, 1)
    assert [r["status"] for r in read_records(out)] == ["error", "ok"]


@pytest.mark.parametrize("change, named", [
    (dict(top_k=2), "--top-k 3, this run asks for --top-k 2"),
    (dict(timeline=True, timeline_fps=4.0), "no --timeline, this run asks for --timeline at 4 fps"),
    (dict(min_score=0.5), "--min-score 0.0, this run asks for --min-score 0.5"),
    (dict(exact_frames=True), "keyframe-aware frames, this run asks for segment-centre frames (--exact-frames, or a "
                              "read-out model)"),
    ("explain", "no --explain, this run asks for --explain"),
    ("other model", "the model "),
])
def test_a_resume_with_other_record_settings_is_refused_and_the_records_stay(tmp_path, make_video, model_dir, change,
                                                                             named):
    """Skipping the files done and adding the rest with another model or --top-k would leave one file holding
    records of two kinds, with nothing in it saying which."""
    from vidlstm.errors import UsageError

    videos = video_folder(make_video, 3)
    out = tmp_path / "p.jsonl"
    first = sorted(videos.iterdir())[0]
    run(_config([first], out, model_dir, top_k=3))
    before = out.read_bytes()
    if change == "explain":
        change = dict(explain_dir=str(tmp_path / "explain"))
    if change == "other model":
        change = dict(model_dir=tiny_model_dir(tmp_path / "other"))
        with open(Path(change["model_dir"]) / "config.json", "a") as f:
            f.write(" ")  # the same weights, another file: still another model's bytes
    settings = {**dict(model_dir=model_dir, top_k=3), **change}
    with pytest.raises(UsageError, match=re.escape(f"p.jsonl: its records were made with {named}")):
        run(_config([videos], out, **settings))
    assert out.read_bytes() == before
    assert run(_config([videos], out, model_dir, top_k=3)).skipped == 1  # the same settings resume
    assert len(read_records(out)) == 3


def test_the_same_model_under_another_path_resumes(tmp_path, make_video, model_dir):
    import shutil

    videos = video_folder(make_video, 2)
    out = tmp_path / "p.csv"
    run(_config([sorted(videos.iterdir())[0]], out, model_dir))
    copy = shutil.copytree(model_dir, tmp_path / "copy")
    assert run(_config([videos], out, copy)).skipped == 1


def test_a_run_resumed_from_another_folder_finds_the_records_of_the_first(tmp_path, make_video, model_dir,
                                                                          monkeypatch):
    import shutil

    videos = shutil.copytree(video_folder(make_video, 3), tmp_path / "work" / "videos")
    first = sorted(p.name for p in videos.iterdir())[:2]
    (tmp_path / "work" / "out").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    run(_config([f"videos/{name}" for name in first], "out/p.jsonl", model_dir))
    monkeypatch.chdir(tmp_path / "work" / "out")
    summary = run(_config(["../videos"], "p.jsonl", model_dir))
    assert (summary.skipped, summary.ok) == (2, 1)  # the first run's two files are not done again
    paths = [r["path"] for r in read_records(tmp_path / "work" / "out" / "p.jsonl")]
    # One record per file, every path relative to where the output's first run started.
    assert paths == sorted(f"videos/{p.name}" for p in videos.iterdir())


def test_a_folder_that_cannot_be_listed_leaves_the_run_going_and_its_exit_code_1(tmp_path, make_video, model_dir,
                                                                                  monkeypatch, capsys):
    import os

    from vidlstm.batch import discover

    videos = video_folder(make_video, 2)
    make_video("videos/locked/v9.mp4", num_frames=12, height=32, width=32, fps=8.0)
    real_scandir = os.scandir
    monkeypatch.setattr(discover.os, "scandir", lambda path: (_ for _ in ()).throw(
        PermissionError(13, "Permission denied", str(path))) if os.path.basename(path) == "locked" else real_scandir(path))
    summary = run(_config([videos], tmp_path / "p.jsonl", model_dir, recursive=True))
    assert (summary.ok, summary.failed, summary.exit_code) == (2, 0, 1)
    assert f"warning: {videos / 'locked'}: cannot list directory (Permission denied); its videos are left out" \
        in capsys.readouterr().err
    monkeypatch.setattr(discover.os, "scandir", real_scandir)  # fixed: a re-run adds them
    assert run(_config([videos], tmp_path / "p.jsonl", model_dir, recursive=True)).ok == 1


def test_a_settings_file_of_an_older_vidlstm_is_checked_on_what_it_holds(tmp_path, make_video, model_dir):
    from vidlstm.batch.run_settings import settings_path

    videos = video_folder(make_video, 2)
    out = tmp_path / "p.jsonl"
    run(_config([sorted(videos.iterdir())[0]], out, model_dir))
    saved = json.loads(settings_path(out).read_text())
    older = {key: value for key, value in saved.items() if key not in ("explain", "records_from")}  # session 26
    settings_path(out).write_text(json.dumps(older))
    assert run(_config([videos], out, model_dir, explain_dir=str(tmp_path / "x"))).skipped == 1


def test_a_copied_project_resumes_in_the_copy_and_no_base_is_invented(tmp_path, make_video, model_dir, monkeypatch):
    import shutil

    from vidlstm.batch.run_settings import settings_path

    shutil.copytree(video_folder(make_video, 2), tmp_path / "p1" / "videos")
    monkeypatch.chdir(tmp_path / "p1")
    run(_config(["videos"], "o.jsonl", model_dir))
    shutil.copytree(tmp_path / "p1", tmp_path / "p2")  # the copy's records start in the copy
    monkeypatch.chdir(tmp_path / "p2")
    assert run(_config(["videos"], "o.jsonl", model_dir)).skipped == 2
    # An output whose settings do not say where its paths start (an older vidlstm's), resumed from a sub-folder:
    # nothing is recorded as its start, so a resume from its own folder still finds every record.
    settings_path(tmp_path / "p2" / "o.jsonl").unlink()
    (tmp_path / "p2" / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "p2" / "sub")
    run(_config(["../videos"], "../o.jsonl", model_dir))
    monkeypatch.chdir(tmp_path / "p2")
    assert run(_config(["videos"], "o.jsonl", model_dir)).skipped == 2
    # (The sub-folder run could not know where those older records start, so it did its two files again.)
    assert len(read_records(tmp_path / "p2" / "o.jsonl")) == 4


def test_a_resume_from_elsewhere_records_real_paths_and_explanations_from_the_first_folder(tmp_path, make_video,
                                                                                          model_dir, monkeypatch):
    import os

    videos = video_folder(make_video, 2)
    (tmp_path / "sub").mkdir()
    os.symlink(videos, tmp_path / "sub" / "lnk")
    monkeypatch.chdir(tmp_path)
    run(_config([sorted(videos.iterdir())[0]], "o.jsonl", model_dir, explain_dir="ex"))
    monkeypatch.chdir(tmp_path / "sub")
    second = sorted(videos.iterdir())[1].name
    run(_config([f"lnk/../{videos.name}/{second}"], "../o.jsonl", model_dir, explain_dir="ex"))
    record = [r for r in read_records(tmp_path / "o.jsonl") if r["path"].endswith(second)][0]
    assert (tmp_path / record["path"]).is_file()  # through the link's real folder, from the first run's folder
    assert record["explanation"].startswith("sub/ex/") and (tmp_path / record["explanation"]).is_file()


def test_records_that_cannot_be_checked_are_said(tmp_path, make_video, model_dir, monkeypatch, capsys):
    """An output copied without its hidden settings file, and one in a folder that cannot be written, took any
    later run's records without a word: two models' or two --top-k's records in one file."""
    from vidlstm.batch import run_settings
    from vidlstm.batch.run_settings import settings_path

    videos = video_folder(make_video, 2)
    out = tmp_path / "p.jsonl"
    run(_config([sorted(videos.iterdir())[0]], out, model_dir))
    assert capsys.readouterr().err == ""
    settings_path(out).unlink()
    assert run(_config([videos], out, model_dir)).skipped == 1
    assert capsys.readouterr().err == (
        f"vidlstm predict: warning: {out}: holds records but no settings file beside it (.p.jsonl.settings.json, "
        f"hidden: copy it with the output), so they are not checked against this run's model and settings, and "
        f"their relative paths are read from this folder\n")
    assert settings_path(out).is_file()  # kept from now on

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(run_settings, "atomic_write_text", read_only)
    assert cli_main(["predict", str(videos), "-o", str(tmp_path / "q.jsonl"), "--model", str(model_dir), "-q"]) == 0
    assert capsys.readouterr().err == (
        f"vidlstm predict: warning: {tmp_path / 'q.jsonl'}: its folder cannot be written, so no settings file is "
        f"kept beside it (a later run into it with other settings or from another folder cannot be checked); every "
        f"record is in it\n")


def test_a_missing_path_beside_others_gets_an_error_record_and_the_run_goes_on(tmp_path, make_video, model_dir):
    videos = video_folder(make_video, 2)
    out = tmp_path / "p.jsonl"
    summary = run(_config([videos, tmp_path / "deleted.mp4"], out, model_dir))
    assert (summary.ok, summary.failed, summary.exit_code) == (2, 1, 1)
    records = {r["path"]: r for r in read_records(out)}
    assert records[str(tmp_path / "deleted.mp4")]["status"] == "error"
    assert "no such file" in records[str(tmp_path / "deleted.mp4")]["error"]


def test_a_read_out_models_records_are_one_setting_with_or_without_exact_frames(tmp_path, make_video):
    """A read-out model is served the segment centres either way: a resume or a shard that spelt it the other way
    was refused for records that are identical, and an output an older vidlstm snapped for it was resumed without a
    word, mixing snapped and centre-frame records."""
    from vidlstm.batch.run_settings import settings_path
    from vidlstm.errors import UsageError

    readout = readout_model_dir(tmp_path, num_frames=4)
    videos = video_folder(make_video, 2)
    first, second = sorted(videos.iterdir())
    out = tmp_path / "p.jsonl"
    run(_config([first], out, readout))
    assert run(_config([first, second], out, readout, exact_frames=True)).ok == 1  # the same records: resumed
    assert {r["sampling"] for r in read_records(out)} == {"exact"}
    older = json.loads(settings_path(out).read_text())
    settings_path(out).write_text(json.dumps({**older, "exact_frames": False}))  # what an older vidlstm recorded
    with pytest.raises(UsageError, match="made with keyframe-aware frames, this run asks for segment-centre frames"):
        run(_config([first, second, videos / "new.mp4"], out, readout))


def test_an_older_settings_file_gains_the_settings_it_lacked_at_the_first_resume(tmp_path, make_video, model_dir):
    """A settings file an older vidlstm wrote, without `explain`, was never upgraded: no later run was checked for
    it, so records with and without explanations could mix however often the output was resumed."""
    from vidlstm.batch.run_settings import settings_path
    from vidlstm.errors import UsageError

    videos = video_folder(make_video, 3)
    first, second, third = sorted(videos.iterdir())
    out = tmp_path / "p.jsonl"
    run(_config([first], out, model_dir))
    older = json.loads(settings_path(out).read_text())
    del older["explain"]
    settings_path(out).write_text(json.dumps(older))
    assert run(_config([first, second], out, model_dir)).ok == 1  # not comparable, so resumed
    assert json.loads(settings_path(out).read_text()) == {**older, "explain": False}
    with pytest.raises(UsageError, match="made with no --explain, this run asks for --explain"):
        run(_config([first, second, third], out, model_dir, explain_dir=str(tmp_path / "explain")))


def test_an_older_settings_file_in_a_folder_that_cannot_be_written_is_still_kept_and_checked(tmp_path, make_video,
                                                                                              model_dir, monkeypatch,
                                                                                              capsys):
    """The resume said "no settings file is kept beside it" although the older file was there and still checked."""
    import vidlstm.batch.run_settings as run_settings
    from vidlstm.errors import UsageError

    videos = video_folder(make_video, 3)
    first, second, third = sorted(videos.iterdir())
    out = tmp_path / "p.jsonl"
    run(_config([first], out, model_dir))
    older = json.loads(run_settings.settings_path(out).read_text())
    del older["explain"]
    run_settings.settings_path(out).write_text(json.dumps(older))

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(run_settings, "atomic_write_text", read_only)
    capsys.readouterr()
    summary = run(_config([first, second], out, model_dir))
    assert (summary.ok, summary.settings_kept) == (1, True)
    assert capsys.readouterr().err == (
        f"vidlstm predict: warning: {out}: its settings file (.p.jsonl.settings.json) was written by an older vidlstm "
        f"and its folder cannot be written, so a later run's explain is not checked against these records (this "
        f"run's: no --explain)\n")
    assert json.loads(run_settings.settings_path(out).read_text()) == older
    with pytest.raises(UsageError) as refused:  # what the older file holds is still checked
        run(_config([first, second, third], out, model_dir, top_k=2))
    assert "its records were made with --top-k 5, this run asks for --top-k 2" in str(refused.value), refused.value
