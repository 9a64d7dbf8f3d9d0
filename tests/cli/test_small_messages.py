"""One-line messages that say what to do next: interruptions, odd output names, a run folder for a model."""
from __future__ import annotations

import os
import re
import sys

import pytest

from vidlstm.cli import main
from vidlstm.errors import UsageError


@pytest.mark.parametrize("command, said", [("predict", "interrupted; run the same command to continue"),
                                           ("train", "interrupted; nothing was saved to resume from, so run the "
                                                     "same command again to start over"),
                                           ("info", "interrupted")])
def test_ctrl_c_says_how_to_continue(monkeypatch, capsys, command, said):
    import importlib

    module = importlib.import_module(f"vidlstm.cli.{command}")

    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(module, "run", interrupted)
    argv = {"predict": ["predict", "x.mp4", "-o", "p.jsonl"], "train": ["train", "d", "-o", "r"], "info": ["info"]}
    assert main(argv[command]) == 130
    assert capsys.readouterr().err.strip() == f"vidlstm {command}: {said}"


def test_an_output_named_only_by_its_suffix_is_told_to_name_it(tmp_path):
    from vidlstm.batch.record_lines import record_format

    with pytest.raises(UsageError, match=r"\.jsonl: name the output file before its suffix \(e.g. preds.jsonl\)"):
        record_format(tmp_path / ".jsonl")


def test_a_run_folder_given_for_a_model_names_its_model(tiny_model_dir, tmp_path, capsys):
    import shutil

    shutil.copytree(tiny_model_dir, tmp_path / "run" / "model")
    assert main(["info", str(tmp_path / "run")]) == 2
    assert f"a training run folder: its model is {tmp_path / 'run' / 'model'}" in capsys.readouterr().err


def test_classifying_a_folder_points_to_predict(tiny_model_dir, tmp_path, capsys):
    assert main(["classify", str(tmp_path), "--model", str(tiny_model_dir)]) == 1
    assert "(for the videos in a folder: vidlstm predict DIR -r -o OUT.jsonl)" in capsys.readouterr().err


def test_timeline_fps_without_timeline_is_refused(tiny_model_dir, make_video, tmp_path, capsys):
    clip = make_video("a.mp4", num_frames=8)
    assert main(["predict", str(clip), "-o", str(tmp_path / "p.jsonl"), "--timeline-fps", "3"]) == 2
    assert "--timeline-fps is for --timeline" in capsys.readouterr().err


def test_cpu_with_an_index_is_sized_as_the_cpu():
    from vidlstm.stages.predict import _resolve_device

    assert _resolve_device("cpu:0") == "cpu" and _resolve_device("cpu") == "cpu"


def test_a_reader_that_goes_away_ends_the_command_quietly(tiny_model_dir):
    """`vidlstm info MODEL | head -1`: BrokenPipeError, a kind of OSError, was caught by the OSError handler and
    raised again as a traceback."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "vidlstm", "info", str(tiny_model_dir)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # before the command has written anything: its first write finds no reader
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and "Traceback" not in err and err == ""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_no_space_left_for_the_output_is_one_line_not_a_traceback(tiny_model_dir, make_video):
    """`vidlstm info > /dev/full` (and classify, stream) ended in an OSError traceback."""
    import subprocess

    clip = make_video("a.mp4", num_frames=8)
    for command in (["info", str(tiny_model_dir)], ["classify", str(clip), "--model", str(tiny_model_dir), "-q"],
                    ["stream", str(clip), "--model", str(tiny_model_dir), "-q"]):
        with open("/dev/full", "w") as full:
            proc = subprocess.run([sys.executable, "-m", "vidlstm", *command], stdout=full, stderr=subprocess.PIPE,
                                  text=True, timeout=300)
        assert proc.returncode == 1, (command, proc.stderr)
        assert re.fullmatch(rf"vidlstm {command[0]}: error: writing (to stdout|the output \(stdout or a file\)): No "
                            rf"space left on device\n", proc.stderr), (command, proc.stderr)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("args, who", [(["--help"], "vidlstm"), (["--version"], "vidlstm"),
                                       (["train", "--help"], "vidlstm train")])
def test_help_or_version_lost_to_a_full_disk_exits_1(args, who):
    """argparse drops a failed write of its help or version text: `vidlstm --help > /dev/full` exited 0."""
    import subprocess

    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "vidlstm", *args], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=300)
    assert (proc.returncode, proc.stderr) == (1, f"{who}: error: writing to stdout: No space left on device\n")
    shown = subprocess.run([sys.executable, "-m", "vidlstm", *args], capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0 and shown.stdout.startswith(("usage: vidlstm", "vidlstm ")) and shown.stderr == ""


def test_classify_leaves_no_multiprocessing_folder_behind(tiny_model_dir, make_video, tmp_path):
    """Every `vidlstm classify` left a /tmp/pymp-XXXX folder: the fast exit skipped multiprocessing's cleanup."""
    import subprocess

    clip = make_video("a.mp4", num_frames=8)
    temp = tmp_path / "tmp"
    temp.mkdir()
    proc = subprocess.run([sys.executable, "-m", "vidlstm", "classify", str(clip), "--model", str(tiny_model_dir),
                           "--workers", "1", "-q"], env={**os.environ, "TMPDIR": str(temp)}, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert list(temp.iterdir()) == []


def test_an_empty_model_path_or_stream_source_is_refused(capsys, tmp_path, monkeypatch):
    """`info ""` and `classify --model ''` used the shipped model without a word; `stream ""` said ": is a directory"."""
    monkeypatch.chdir(tmp_path)
    for argv in (["info", ""], ["classify", "a.mp4", "--model", ""], ["predict", "v", "-o", "p.jsonl", "--model", " "]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert "an empty path: name a model folder, or `default` for the shipped model" in capsys.readouterr().err
    assert main(["stream", ""]) == 2
    assert ("vidlstm stream: error: SOURCE is empty: give a video file, a webcam index (0, 1, ...) or a URL"
            in capsys.readouterr().err)


def test_predict_of_a_url_says_where_streams_are_read(tiny_model_dir, tmp_path, capsys):
    assert main(["predict", "http://example.com/x.mp4", "-o", str(tmp_path / "p.jsonl"),
                 "--model", str(tiny_model_dir)]) == 2
    assert ("http://example.com/x.mp4: no such file or directory (files are read from disk; `vidlstm stream` reads a "
            "URL or a webcam)") in capsys.readouterr().err


def test_a_file_named_like_an_option_gets_a_hint(tiny_model_dir, tmp_path, monkeypatch, capsys):
    """`vidlstm classify -clip.mp4` said only "the following arguments are required: FILE"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-clip.mp4").write_bytes(b"")
    with pytest.raises(SystemExit) as exit_info:
        main(["classify", "-clip.mp4", "--model", str(tiny_model_dir)])
    assert exit_info.value.code == 2
    assert ("(-clip.mp4 is a file or folder whose name starts with '-', read as an option: write ./-clip.mp4, or put -- "
            "before the file names)") in capsys.readouterr().err


def test_evaluate_subset_without_a_split_is_refused(tiny_model_dir, tmp_path, capsys):
    """--subset train without --split was silently ignored: every clip was evaluated as if the flag were not there."""
    (tmp_path / "data" / "a").mkdir(parents=True)
    assert main(["evaluate", str(tmp_path / "data"), "--model", str(tiny_model_dir), "--subset", "train"]) == 2
    assert "--subset train needs --split RUN/split.json" in capsys.readouterr().err


def test_an_unknown_option_is_reported_under_its_command(capsys):
    """argparse's top parser reported a command's unknown option as "vidlstm: error: ...", naming no command."""
    with pytest.raises(SystemExit) as exit_info:
        main(["classify", "clip.mp4", "--bogus"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "vidlstm classify: error: unrecognized arguments: --bogus\n"


def test_a_command_run_with_its_output_closed_ends_quietly(tiny_model_dir):
    """`vidlstm info MODEL >&-`: Python's sys.stdout is None, and the final flush raised AttributeError."""
    import subprocess

    proc = subprocess.run(f"'{sys.executable}' -c 'from vidlstm.cli import entry; entry()' info '{tiny_model_dir}' >&-",
                          shell=True, capture_output=False, stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
