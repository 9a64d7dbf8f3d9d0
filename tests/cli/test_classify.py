"""`vidlstm classify` end to end through the CLI: table, JSON fields, per-file errors and exit codes."""
from __future__ import annotations

import json

import pytest

from vidlstm.cli import main


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_classify_json_fields(make_video, tiny_model_dir, capsys):
    a = make_video("a.mp4", num_frames=20)
    b = make_video("b.avi", num_frames=12, seed=3)
    code = main(["classify", str(a), str(b), "--model", str(tiny_model_dir), "--json", "--top-k", "2"])
    out = capsys.readouterr().out
    assert code == 0
    records = _json_lines(out)
    assert [r["path"] for r in records] == [str(a), str(b)]
    for rec in records:
        assert rec["status"] == "ok"
        assert rec["label"] in {"left", "right", "up"}
        assert len(rec["top_k"]) == 2
        assert rec["top_k"][0]["label"] == rec["label"]
        assert rec["top_k"][0]["score"] == rec["score"]
        assert rec["top_k"][0]["score"] >= rec["top_k"][1]["score"]
        assert 0.0 < rec["score"] <= 1.0
        assert rec["frames"] == 8  # the model's num_frames, whatever the clip length
        assert rec["decoder"] in {"decord", "opencv", "pyav"}
        assert rec["seconds"] >= 0


def test_classify_table(make_video, tiny_model_dir, capsys):
    a = make_video("clip.mp4")
    assert main(["classify", str(a), "--model", str(tiny_model_dir), "--top-k", "3"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(str(a))
    assert sum(line.strip()[:2] in {"1.", "2.", "3."} for line in out.splitlines()) == 3
    assert "%" in out


def test_bad_files_get_error_records_and_the_rest_still_run(make_video, tiny_model_dir, tmp_path, capsys):
    good = make_video("good.mp4")
    missing = tmp_path / "missing.mp4"
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    code = main(["classify", str(missing), str(text), str(good), str(empty), "--model", str(tiny_model_dir), "--json"])
    captured = capsys.readouterr()
    records = {r["path"]: r for r in _json_lines(captured.out)}
    assert code == 1
    assert records[str(good)]["status"] == "ok"
    for bad in (missing, text, empty):
        assert records[str(bad)]["status"] == "error"
        assert records[str(bad)]["error"]
    assert "no such file" in records[str(missing)]["error"]
    assert "empty file" in records[str(empty)]["error"]
    # one line per failed file on stderr, naming the file
    err_lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(err_lines) == 3
    for bad, line in zip((missing, text, empty), err_lines):
        assert str(bad) in line and line.startswith("vidlstm classify: error:")


@pytest.mark.parametrize("argv, message", [
    (["classify", "x.mp4", "--top-k", "0"], "must be >= 1"),
    (["classify"], "required"),
])
def test_usage_errors_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_model_folder_is_one_line_exit_2(make_video, tmp_path, capsys):
    code = main(["classify", str(make_video()), "--model", str(tmp_path / "nope")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and str(tmp_path / "nope") in err


def test_min_score_labels_low_confidence_unknown(make_video, tiny_model_dir, capsys):
    """An untrained 3-class model never reaches 0.99, so every clip is 'unknown'; top-k still says what it saw."""
    path = make_video()
    assert main(["classify", str(path), "--model", str(tiny_model_dir), "--json", "--min-score", "0.99"]) == 0
    rec = _json_lines(capsys.readouterr().out)[0]
    assert rec["label"] == "unknown"
    assert rec["top_k"][0]["label"] in {"left", "right", "up"} and rec["score"] < 0.99
    assert main(["classify", str(path), "--model", str(tiny_model_dir), "--json", "--min-score", "0"]) == 0
    assert _json_lines(capsys.readouterr().out)[0]["label"] != "unknown"


def test_min_score_shows_unknown_in_the_table_too(make_video, tiny_model_dir, capsys):
    path = make_video()
    assert main(["classify", str(path), "--model", str(tiny_model_dir), "--min-score", "0.99"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("    -> unknown (best score ") and lines[1].endswith("% is below --min-score)")
    assert lines[2].startswith("    1. ")  # the top-k still says what the model saw
    assert main(["classify", str(path), "--model", str(tiny_model_dir)]) == 0
    assert "-> unknown" not in capsys.readouterr().out


def test_min_score_out_of_range_exit_2(make_video, tiny_model_dir, capsys):
    assert main(["classify", str(make_video()), "--model", str(tiny_model_dir), "--min-score", "1.5"]) == 2
    assert "--min-score must be in [0, 1]" in capsys.readouterr().err
