"""File names that are not UTF-8 (bytes Python holds as surrogate escapes): a class folder named so trains into
a complete model folder whose labels round-trip, and the commands print such names and labels as their bytes."""
from __future__ import annotations

import json
import os

import pytest

from cli_runs import TINY_TRAINING, run_vidlstm
from damaged_inputs import encode_exact, moving_square_clip

pytestmark = pytest.mark.robustness

ODD = os.fsdecode(b"caf\xe9")  # "caf\udce9": the byte 0xE9 alone is no UTF-8


@pytest.mark.slow
def test_a_non_utf8_class_folder_trains_into_a_complete_model_folder(tmp_path):
    for label in ("left", ODD):
        for i in range(2):
            encode_exact(tmp_path / "data" / label / f"c{i}.mp4", moving_square_clip(8, 32, 32, seed=i),
                         pix_fmt="yuv420p")
    run = run_vidlstm("train", tmp_path / "data", "-o", tmp_path / "run", *TINY_TRAINING)
    assert run.code == 0, run.err[-2000:]
    model = tmp_path / "run" / "model"
    assert sorted(p.name for p in model.iterdir()) == ["README.md", "config.json", "labels.json", "metrics.json",
                                                      "model.safetensors"]
    assert json.loads((model / "labels.json").read_text()) == sorted(["left", ODD])


def test_stdout_prints_a_non_utf8_name_as_its_bytes():
    import io

    from vidlstm.cli import _bytes_of_file_names_pass_through

    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="utf-8", errors="strict")  # what a UTF-8 terminal locale gives
    _bytes_of_file_names_pass_through(stdout)
    print(f"    2. {ODD}   48.47%", file=stdout, flush=True)
    assert raw.getvalue() == b"    2. caf\xe9   48.47%\n"  # as `ls` prints the name, not a UnicodeEncodeError


def test_a_damaged_file_with_a_non_utf8_name_is_a_decode_error_not_a_crash(tmp_path):
    """PyAV fails on a text file; OpenCV's capture, last in the chain, crashed with SIGSEGV on such a name, ending the
    process (with --workers 0, and the Python API's predict). Run in a child: a crash must not end the tests."""
    bad = tmp_path / os.fsdecode(b"notes\xff.mp4")
    bad.write_text("no video in here\n")
    run = run_vidlstm("classify", bad, "--workers", "0")
    assert run.code == 1, run.err[-2000:]
    assert "cannot decode (" in run.err and "opencv: cannot open a file name that is not UTF-8" in run.err


def test_stream_refuses_a_url_that_is_not_utf8_and_a_webcam_index_past_a_c_int(capsys):
    from vidlstm.cli import main

    assert main(["stream", "99999999999"]) == 2
    assert "99999999999: no webcam index (give 0, 1, ... or a URL)" in capsys.readouterr().err
    assert main(["stream", os.fsdecode(b"rtsp://camera/\xff")]) == 2
    assert "rtsp://camera/\\udcff: a URL must be UTF-8 text" in capsys.readouterr().err
