"""Outputs that are not ours, and where outputs live: a foreign line is a usage error naming the file and line
(never a traceback, never "done"); a FIFO, a symlink, a read-only folder or a full disk give one clear line
and keep every record already written; one file under two spellings gets one record."""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from cli_runs import assert_no_traceback, json_lines, one_error_line, run_in_process
from damaged_inputs import encode_exact, moving_square_clip
from hostile_inputs import foreign_lines

pytestmark = pytest.mark.robustness


@pytest.fixture
def videos(tmp_path):
    folder = tmp_path / "v"
    for i in range(3):
        encode_exact(folder / f"c{i}.mp4", moving_square_clip(8, 32, 32, seed=i), pix_fmt="yuv420p")
    return folder


def predict(capfd, model, *args):
    return run_in_process(capfd, "predict", *args, "--model", model, "--workers", "0", "--threads", "1",
                          "--no-progress", timeout=120)


@pytest.mark.parametrize("kind", ["json-list", "json-object", "json-string", "not-utf8", "path-without-status"])
@pytest.mark.parametrize("command", ["predict", "merge"])
def test_a_line_that_is_not_ours_is_a_usage_error_naming_file_and_line(kind, command, videos, tiny_model_dir,
                                                                      tmp_path, capfd):
    good = (tmp_path / "good.jsonl")
    good.write_text('{"path": "x.mp4", "status": "error", "error": "earlier"}\n')
    out = tmp_path / "p.jsonl"
    content = good.read_bytes() + foreign_lines(videos / "c0.mp4")[kind]
    out.write_bytes(content)
    if command == "predict":
        run = predict(capfd, tiny_model_dir, videos, "-o", out)
    else:
        run = run_in_process(capfd, "merge", out, "-o", tmp_path / "m.jsonl")
    line = one_error_line(run, command)
    assert f"{out}:2: " in line and "not a vidlstm record" in line, line
    assert out.read_bytes() == content  # nothing taken as done, nothing rewritten


def test_a_csv_row_that_is_not_ours_is_a_usage_error(videos, tiny_model_dir, tmp_path, capfd):
    from vidlstm.batch.records import FIELDS

    out = tmp_path / "p.csv"
    out.write_text(",".join(FIELDS) + f"\n{videos / 'c0.mp4'},maybe" + "," * (len(FIELDS) - 2) + "\n")
    line = one_error_line(predict(capfd, tiny_model_dir, videos, "-o", out), "predict")
    assert f"{out}:2: status 'maybe'" in line


def test_one_file_under_two_spellings_gets_one_record_in_a_run_and_across_a_resume(videos, tiny_model_dir,
                                                                                   tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "p.jsonl"
    run = predict(capfd, tiny_model_dir, "v/c0.mp4", tmp_path / "v" / "c0.mp4", "./v/../v/c1.mp4", "-o", out)
    assert run.code == 0, run.err
    assert [r["path"] for r in json_lines(out.read_text())] == ["v/../v/c1.mp4", "v/c0.mp4"]  # as typed (Path drops "./")
    run = predict(capfd, tiny_model_dir, tmp_path / "v", "-o", out)  # the same files, absolute: resumed
    assert run.out.startswith("1 ok, 0 failed, 2 skipped"), run.out
    assert len(json_lines(out.read_text())) == 3


def test_a_symlinked_output_is_written_through_to_its_target(videos, tiny_model_dir, tmp_path, capfd):
    target = tmp_path / "store" / "preds.jsonl"
    target.parent.mkdir()
    link = tmp_path / "preds.jsonl"
    link.symlink_to(target)
    assert predict(capfd, tiny_model_dir, videos, "-o", link).code == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert [r["path"] for r in json_lines(target.read_text())] == sorted(str(p) for p in videos.iterdir())


def test_the_lock_outlives_the_sorted_rewrite(tmp_path):
    from vidlstm.batch.records import RecordFile
    from vidlstm.errors import UsageError

    out = tmp_path / "p.jsonl"
    with RecordFile(out) as first:
        first.open()
        first.append({"path": "b.mp4", "status": "error", "error": "x"})
        first.rewrite_sorted()  # a new inode; the lock is on .p.jsonl.lock, not on the old one
        with pytest.raises(UsageError, match="another vidlstm predict is writing"):
            RecordFile(out).open()


def test_a_finished_run_leaves_no_lock_file_and_a_refused_one_keeps_the_running_ones(tmp_path):
    """predict's lock file (.NAME.lock) stayed beside the output after every run; train's is removed too."""
    from vidlstm.batch.records import RecordFile, being_written
    from vidlstm.errors import UsageError

    out, lock = tmp_path / "p.jsonl", tmp_path / ".p.jsonl.lock"
    with RecordFile(out) as first:
        first.open()
        with pytest.raises(UsageError, match="another vidlstm predict is writing"):
            RecordFile(out).open()
        assert lock.is_file() and being_written(out)  # the refused one left the running one's lock alone
    assert not lock.exists() and not being_written(out)
    with RecordFile(out) as again:  # and the next run takes a new one
        again.open()
        assert being_written(out)


def test_a_run_that_opened_a_lock_file_its_holder_then_removed_opens_the_path_again(tmp_path, monkeypatch):
    """Between opening the lock file and locking it, the run holding it may end and remove it: locking the removed
    file would let a third run make a new lock and write beside this one."""
    import fcntl

    from vidlstm.batch import records
    from vidlstm.batch.records import RecordFile

    out, lock = tmp_path / "p.jsonl", tmp_path / ".p.jsonl.lock"
    flocked, real_flock = [], fcntl.flock

    def flock(fd, op):
        if not flocked:  # the holder ends just before this run's first lock: its file is gone
            lock.unlink()
        flocked.append(os.fstat(fd).st_ino)
        return real_flock(fd, op)

    lock.write_text("")
    monkeypatch.setattr(records.fcntl, "flock", flock)
    with RecordFile(out) as run:
        run.open()
        assert len(flocked) == 2 and os.stat(lock).st_ino == flocked[-1]  # it holds the file at the path


def test_a_fifo_as_output_is_one_line_and_no_hang(videos, tiny_model_dir, tmp_path, capfd):
    fifo = tmp_path / "p.jsonl"
    os.mkfifo(fifo)
    line = one_error_line(predict(capfd, tiny_model_dir, videos, "-o", fifo), "predict")
    assert f"{fifo}: is a FIFO (named pipe), not a regular file" in line


def test_a_fifo_as_merge_output_is_refused_and_kept(tmp_path, capfd):
    part = tmp_path / "p.jsonl"
    part.write_text('{"path": "x.mp4", "status": "error", "error": "x"}\n')
    fifo = tmp_path / "m.jsonl"
    os.mkfifo(fifo)
    line = one_error_line(run_in_process(capfd, "merge", part, "-o", fifo), "merge")
    assert f"{fifo}: is a FIFO (named pipe), not a regular file" in line and fifo.is_fifo()


@pytest.fixture
def read_only_folder(tmp_path, monkeypatch):
    """A folder whose entries cannot be created (chmod 555; as root, who ignores modes, creating is refused
    by patching the record module's opens), holding one writable earlier output."""
    import vidlstm.batch.records as records
    import vidlstm.files as files

    folder = tmp_path / "ro"
    folder.mkdir()
    out = folder / "p.jsonl"
    out.write_text('{"path": "earlier.mp4", "status": "error", "error": "x"}\n')
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield out
        folder.chmod(0o755)
        return

    def refuse(path, *args, real):
        if os.path.dirname(os.fspath(path)) == str(folder) and not os.path.exists(path):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path, *args)

    real_open = os.open
    patched_os = SimpleNamespace(**{**vars(os), "open": lambda p, *a: refuse(p, *a, real=real_open)})
    monkeypatch.setattr(records, "os", patched_os)
    monkeypatch.setattr(files, "os", patched_os)  # the lock file beside the output (files.locked_file)
    monkeypatch.setattr(records, "open", lambda p, *a: refuse(p, *a, real=open), raising=False)
    import vidlstm.batch.run_settings as run_settings

    real_write = run_settings.atomic_write_text
    monkeypatch.setattr(run_settings, "atomic_write_text", lambda p, *a: refuse(p, *a, real=real_write))
    yield out


def test_a_read_only_folder_keeps_every_record_and_says_so_in_one_line(read_only_folder, videos, tiny_model_dir,
                                                                      capfd):
    run = predict(capfd, tiny_model_dir, videos, "-o", read_only_folder)
    assert_no_traceback(run)
    assert run.code == 0, run.err
    records_unchecked, folder = [line for line in run.err.splitlines() if "warning" in line]
    assert records_unchecked.startswith(f"vidlstm predict: warning: {read_only_folder}: holds records but no "
                                        f"settings file beside it")  # the earlier one, written by hand
    assert folder == (f"vidlstm predict: warning: {read_only_folder}: its folder cannot be written, so it was not "
                      f"sorted, and no settings file is kept beside it (a later run into it with other settings or "
                      f"from another folder cannot be checked); every record is in it")
    assert len(json_lines(read_only_folder.read_text())) == 4  # the earlier one and the three new ones


def test_a_full_disk_is_one_line_and_a_rerun_resumes(videos, tiny_model_dir, tmp_path, capfd, monkeypatch):
    import vidlstm.batch.records as records

    calls = {"n": 0}

    def write(fd, data):
        calls["n"] += 1
        if calls["n"] > 1:  # the first record fits, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    monkeypatch.setattr(records, "os", SimpleNamespace(**{**vars(os), "write": write}))
    out = tmp_path / "p.jsonl"
    run = predict(capfd, tiny_model_dir, videos, "-o", out)
    assert run.code == 1
    line, = [line for line in run.err.splitlines() if "error" in line]
    assert line == (f"vidlstm predict: error: {out}: cannot write a record (No space left on device); the 1 "
                    "records written before it are kept; re-run the same command to resume")
    assert len(json_lines(out.read_text())) == 1
    monkeypatch.undo()
    run = predict(capfd, tiny_model_dir, videos, "-o", out)
    assert run.out.startswith("2 ok, 0 failed, 1 skipped"), run.out
    assert len(json_lines(out.read_text())) == 3


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_file_name_that_is_not_utf8_round_trips(suffix, videos, tiny_model_dir, tmp_path, capfd):
    odd = os.fsdecode(os.fsencode(str(videos)) + b"/caf\xe9.mp4")
    shutil.copy(videos / "c0.mp4", odd)
    out = tmp_path / f"p{suffix}"
    run = predict(capfd, tiny_model_dir, videos, "-o", out)
    assert run.code == 0, run.err
    from vidlstm.batch.records import read_records

    paths = [r["path"] for r in read_records(out)]
    assert odd in paths and len(paths) == 4
    if suffix == ".jsonl":
        out.read_bytes().decode("utf-8")  # still strict UTF-8 JSON lines: the name is \\udce9-escaped
    assert predict(capfd, tiny_model_dir, videos, "-o", out).out.startswith("0 ok, 0 failed, 4 skipped")


def test_a_newline_in_a_file_name_keeps_the_error_on_one_line(videos, tiny_model_dir, tmp_path, capfd):
    (videos / "two\nlines.mp4").write_bytes(b"not a video")
    run = predict(capfd, tiny_model_dir, videos, "-o", tmp_path / "p.jsonl")
    assert run.code == 1
    errors = [line for line in run.err.splitlines() if line]
    assert len(errors) == 1 and errors[0].startswith(f"vidlstm predict: error: {videos}/two\\nlines.mp4: ")


@pytest.fixture
def tiny_tmpfs(small_disk):
    """A 4 KiB tmpfs (root only; skipped elsewhere, where the monkeypatched full disk above still runs)."""
    return small_disk("4k")


def test_a_really_full_disk_keeps_the_earlier_records_valid(tiny_tmpfs, videos, tiny_model_dir, tmp_path, capfd):
    from vidlstm.batch.records import read_records

    out = tiny_tmpfs / "p.jsonl"
    earlier = "".join(f'{{"path": "earlier{i:02d}.mp4", "status": "error", "error": "{"x" * 40}"}}\n'
                      for i in range(50))[:3900]
    out.write_text(earlier[: earlier.rindex("\n") + 1])  # ~3.9 of the 4 KiB: the first new record does not fit
    kept = len(read_records(out))
    run = predict(capfd, tiny_model_dir, videos, "-o", out)
    assert_no_traceback(run)
    assert run.code == 1
    assert run.err.strip().endswith("(No space left on device); re-run the same command to resume"), run.err
    assert len(read_records(out)) == kept  # a torn tail at most: every complete record is still there
    shutil.copy(out, tmp_path / "moved.jsonl")  # room again (elsewhere): the same command resumes
    run = predict(capfd, tiny_model_dir, videos, "-o", tmp_path / "moved.jsonl")
    assert run.code == 0 and run.out.startswith("3 ok, 0 failed, 0 skipped"), run.out
    assert "dropped a torn last line" in run.err  # what the full disk cut off mid-record
    assert len(read_records(tmp_path / "moved.jsonl")) == kept + 3


def test_an_explain_folder_that_cannot_be_written_is_one_line(videos, tiny_model_dir, tmp_path, capfd, monkeypatch):
    import vidlstm.explain

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(vidlstm.explain, "write_strip_png", full)
    out = tmp_path / "p.jsonl"
    run = predict(capfd, tiny_model_dir, videos, "-o", out, "--explain", tmp_path / "explain")
    assert_no_traceback(run)
    assert run.code == 1
    line, = run.err.strip().splitlines()
    assert line.startswith(f"vidlstm predict: error: {tmp_path / 'explain'}: cannot write the explanation of ")
    assert line.endswith("(No space left on device)")


def test_an_explanation_whose_name_is_taken_fails_its_file_alone(videos, tiny_model_dir, tmp_path, capfd):
    """A folder where one file's strip would go stopped the whole run (no record for any file, exit 1); where the JSON's
    name was the blocked one, the strip was left behind."""
    from vidlstm.batch.records import read_records
    from vidlstm.explain import explanation_stem

    explain = tmp_path / "explain"
    (explain / f"{explanation_stem(videos / 'c1.mp4')}.png").mkdir(parents=True)  # the strip's name: a folder
    (explain / f"{explanation_stem(videos / 'c2.mp4')}.json").mkdir()  # the JSON's
    out = tmp_path / "p.jsonl"
    run = predict(capfd, tiny_model_dir, videos, "-o", out, "--explain", explain)
    assert_no_traceback(run)
    assert run.code == 1 and run.out.startswith("1 ok, 2 failed"), run.out
    records = {Path(r["path"]).name: r for r in read_records(out)}
    assert records["c0.mp4"]["status"] == "ok" and Path(records["c0.mp4"]["explanation"]).is_file()
    for name, taken in (("c1.mp4", ".png"), ("c2.mp4", ".json")):
        assert records[name]["status"] == "error" and records[name]["label"] is None
        stem = explanation_stem(videos / name)
        assert records[name]["error"] == (f"its explanation cannot be written ({stem}{taken} in {explain}: "
                                          f"Is a directory)")
    assert not (explain / f"{explanation_stem(videos / 'c2.mp4')}.png").exists()  # no strip without its JSON
