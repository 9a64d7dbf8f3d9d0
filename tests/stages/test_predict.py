"""The predict stage end to end on tiny videos: records, resume, errors, batching, CSV, timeline, hangs/crashes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from batch.fault_decoders import faulty_real_decode
from batch.predict_helpers import LABELS, comparable, tiny_model_dir, video_folder
from vidlstm.batch.records import read_records
from vidlstm.cli import main as cli_main
from vidlstm.inference import Predictor
from vidlstm.stages.classify import classify_paths
from vidlstm.stages.predict import PredictConfig, run


@pytest.fixture
def model_dir(tmp_path):
    return tiny_model_dir(tmp_path)


def _config(inputs, output, model_dir, **kw):
    kw.setdefault("workers", 0)
    kw.setdefault("threads", 1)  # the stage would otherwise pick its own count for the whole test process
    return PredictConfig(inputs=[str(p) for p in inputs], output=str(output), model_dir=str(model_dir),
                         device="cpu", progress=False, **kw)


def test_one_sorted_record_per_file_with_errors_for_broken_files(tmp_path, make_video, model_dir):
    videos = video_folder(make_video, 5)
    (videos / "text.mp4").write_text("not a video")
    (videos / "empty.MP4").write_bytes(b"")
    out = tmp_path / "preds.jsonl"
    summary = run(_config([videos], out, model_dir, workers=1, batch_size=3))
    assert (summary.ok, summary.failed, summary.skipped, summary.exit_code) == (5, 2, 0, 1)
    records = read_records(out)
    assert [r["path"] for r in records] == sorted(str(p) for p in videos.iterdir())
    by_name = {r["path"].rsplit("/", 1)[1]: r for r in records}
    assert by_name["empty.MP4"]["error"] == "empty file (0 bytes)"
    assert by_name["text.mp4"]["status"] == "error" and by_name["text.mp4"]["error"].startswith("cannot decode")
    good = [r for r in records if r["status"] == "ok"]
    for r in good:
        assert r["label"] in LABELS and r["frames"] == 8 and r["duration"] == 1.5
        assert r["top_k"][0] == {"label": r["label"], "score": r["score"]}
        assert sum(t["score"] for t in r["top_k"]) == pytest.approx(1.0, abs=1e-5)  # top-5 of 3 labels = all
        assert 0 < r["duration_covered"] <= r["duration"]
    # Batched across videos in a worker pool, the scores equal classify's one file at a time in-process.
    alone = list(classify_paths(Predictor.from_dir(model_dir, device="cpu"), [r["path"] for r in good], top_k=3))
    for batched, single in zip(good, alone):
        assert batched["label"] == single["label"]
        assert batched["score"] == pytest.approx(single["score"], abs=1e-5)


def test_rerun_skips_everything_already_recorded(tmp_path, make_video, model_dir):
    videos = video_folder(make_video, 3)
    out = tmp_path / "preds.jsonl"
    run(_config([videos], out, model_dir))
    first = out.read_bytes()
    make_video("videos/v99.mp4", num_frames=12, height=32, width=32, fps=8.0, seed=99)
    summary = run(_config([videos], out, model_dir))
    assert (summary.ok, summary.failed, summary.skipped, summary.exit_code) == (1, 0, 3, 0)
    records = read_records(out)
    assert [r["path"].rsplit("/", 1)[1] for r in records] == ["v00.mp4", "v01.mp4", "v02.mp4", "v99.mp4"]
    assert out.read_bytes().startswith(first)  # earlier records untouched, the new one sorted after them


def test_earlier_errors_keep_the_exit_code_and_retry_errors_redoes_them(tmp_path, make_video, model_dir, capsys):
    videos = video_folder(make_video, 2)
    out = tmp_path / "preds.jsonl"
    broken = videos / "v01.mp4"
    good_bytes = broken.read_bytes()
    broken.write_bytes(b"\0" * 100)
    assert run(_config([videos], out, model_dir)).exit_code == 1
    again = run(_config([videos], out, model_dir))
    assert (again.skipped, again.skipped_failed, again.exit_code) == (2, 1, 1)  # still reported, not redone
    # The command says why it exits 1, on stderr, where -q leaves it (it said nothing there).
    assert cli_main(["predict", str(videos), "-o", str(out), "--model", str(model_dir), "-q", "--workers", "1"]) == 1
    captured = capsys.readouterr()
    assert captured.err == (f"vidlstm predict: warning: 1 file(s) have error records from an earlier run in {out} "
                            f"(--retry-errors tries them again)\n")
    assert captured.out.endswith(f"(0.00 files/s, 1 decode worker) -> {out}\n")
    retried = run(_config([videos], out, model_dir, retry_errors=True))  # a failure that may pass (a timeout ...)
    assert (retried.failed, retried.skipped, retried.exit_code) == (1, 1, 1)
    assert [r["status"] for r in read_records(out)] == ["ok", "error"]  # one record per file
    broken.write_bytes(good_bytes)  # the user fixed the file: a plain re-run sees it changed and redoes it
    fixed = run(_config([videos], out, model_dir))
    assert (fixed.ok, fixed.changed, fixed.skipped, fixed.exit_code) == (1, 1, 1, 0)
    assert [r["status"] for r in read_records(out)] == ["ok", "ok"]  # the error replaced


def test_csv_output_has_the_same_records(tmp_path, make_video, model_dir):
    videos = video_folder(make_video, 2)
    run(_config([videos], tmp_path / "p.jsonl", model_dir))
    run(_config([videos], tmp_path / "p.csv", model_dir))
    as_json = read_records(tmp_path / "p.jsonl")
    as_csv = read_records(tmp_path / "p.csv")
    assert [(r["path"], r["label"], r["score"], r["top_k"]) for r in as_csv] == \
           [(r["path"], r["label"], r["score"], r["top_k"]) for r in as_json]


def test_no_videos_is_a_usage_error_with_a_hint_where_one_helps(tmp_path, model_dir):
    from vidlstm.errors import UsageError

    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"no video files found in \S+empty$"):  # no sub-folder to look in
        run(_config([tmp_path / "empty"], tmp_path / "p.jsonl", model_dir))
    (tmp_path / "empty" / "day1").mkdir()
    with pytest.raises(UsageError, match="no video files found in .*empty \\(add --recursive to look in sub-dir"):
        run(_config([tmp_path / "empty"], tmp_path / "p.jsonl", model_dir))


@pytest.mark.slow
def test_crashing_and_hanging_decoders_cost_only_their_file(tmp_path, make_video, model_dir):
    videos = video_folder(make_video, 3)
    for name in ("crash.mp4", "hang.mp4"):
        make_video(f"videos/{name}", num_frames=12, height=32, width=32, fps=8.0)
    out = tmp_path / "preds.jsonl"
    summary = run(_config([videos], out, model_dir, workers=1, timeout=2.0), decode_fn=faulty_real_decode)
    assert (summary.ok, summary.failed, summary.stats.workers_replaced) == (3, 2, 2)
    errors = {r["path"].rsplit("/", 1)[1]: r["error"] for r in read_records(out) if r["status"] == "error"}
    assert errors == {"crash.mp4": "decoder crashed (signal 11, SIGSEGV)", "hang.mp4": "timed out after 2 s"}


def test_timeline_segments_tile_the_video_and_chunking_changes_nothing(tmp_path, make_video, model_dir):
    from vidlstm.batch.engine import EngineOptions, predict_records

    video = make_video("long.mp4", num_frames=40, height=32, width=32, fps=8.0)  # 5 s
    predictor = Predictor.from_dir(model_dir, device="cpu")
    one_pass, = predict_records(predictor, [video], EngineOptions(workers=0, timeline_fps=2.0, chunk_frames=64))
    chunked, = predict_records(predictor, [video], EngineOptions(workers=0, timeline_fps=2.0, chunk_frames=3))
    assert one_pass["frames"] == 10 and one_pass["duration"] == 5.0
    segments = one_pass["segments"]
    assert segments[0]["start"] == 0.0 and segments[-1]["end"] == 5.0
    assert all(a["end"] == b["start"] and a["label"] != b["label"] for a, b in zip(segments, segments[1:]))
    assert all(s["label"] in LABELS and 0 < s["score"] <= 1 for s in segments)
    # Chunks of 3 frames carry the previous frame across, so features, scores and segments are identical.
    assert chunked["score"] == pytest.approx(one_pass["score"], abs=1e-5)
    assert [s["label"] for s in chunked["segments"]] == [s["label"] for s in segments]


def test_timeline_through_the_stage_writes_segments(tmp_path, make_video, model_dir):
    videos = video_folder(make_video, 2)
    out = tmp_path / "t.jsonl"
    run(_config([videos], out, model_dir, timeline=True, timeline_fps=4.0, workers=1))  # chunks cross the pipe
    for line in out.read_text().splitlines():
        record = json.loads(line)
        assert record["frames"] == 6 and record["segments"][-1]["end"] == 1.5
        assert np.isclose(record["segments"][0]["start"], 0.0)


def test_cli_predict_passes_its_options_and_prints_a_summary(tmp_path, make_video, model_dir, capsys):
    from vidlstm.cli import main as cli_main

    videos = video_folder(make_video, 2)
    (videos / "bad.mp4").write_bytes(b"\0" * 10)
    out = tmp_path / "p.csv"
    code = cli_main(["predict", str(videos), "-o", str(out), "--model", str(model_dir), "--workers", "0",
                     "--threads", "1", "--backends", "pyav", "--top-k", "2", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1  # bad.mp4 failed
    assert captured.out.strip().startswith("2 ok, 1 failed, 0 skipped")
    assert f"vidlstm predict: error: {videos / 'bad.mp4'}:" in captured.err
    records = read_records(out)
    assert [r["decoder"] for r in records if r["status"] == "ok"] == ["pyav", "pyav"]
    assert all(len(r["top_k"]) == 2 for r in records if r["status"] == "ok")


def test_cnn_threads_default_to_the_cores_the_decoders_leave(tmp_path, make_video, model_dir):
    import torch

    from vidlstm.stages.predict import available_cores

    videos = video_folder(make_video, 1)
    before = torch.get_num_threads()
    try:
        run(_config([videos], tmp_path / "p.jsonl", model_dir, workers=1, threads=0))
        assert torch.get_num_threads() == max(1, available_cores() - 1)
    finally:
        torch.set_num_threads(before)


def test_a_decoder_that_delivers_nothing_gives_an_error_record(tmp_path, make_video, model_dir):
    from batch.fault_decoders import empty_decode

    videos = video_folder(make_video, 2)
    summary = run(_config([videos], tmp_path / "p.jsonl", model_dir), decode_fn=empty_decode)
    assert (summary.ok, summary.failed) == (0, 2)
    assert {r["error"] for r in read_records(tmp_path / "p.jsonl")} == {"the decoder returned no frames"}


def test_predict_min_score_and_explain(make_video, tiny_model_dir, tmp_path):
    """--min-score labels low-confidence clips 'unknown'; --explain writes one explanation per ok file."""
    import json

    from vidlstm.cli import main

    videos = [make_video(f"v{i}.mp4", seed=i) for i in range(2)]
    out = tmp_path / "preds.jsonl"
    code = main(["predict", *map(str, videos), "-o", str(out), "--model", str(tiny_model_dir), "--workers", "0",
                 "--min-score", "0.99", "--explain", str(tmp_path / "explain"), "--no-progress"])
    assert code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["label"] for r in records] == ["unknown", "unknown"]  # an untrained 3-class model is never sure
    assert all(r["top_k"][0]["label"] in {"left", "right", "up"} for r in records)
    assert len(list((tmp_path / "explain").glob("*.json"))) == 2
    assert len(list((tmp_path / "explain").glob("*.png"))) == 2


@pytest.mark.parametrize("cores, device, cnn, frames, expected", [
    (2, "cpu", 0.01, 8, 2),      # a cheap CNN (the shipped vidnet): decoding is the work, every core decodes
    (2, "cpu", 0.25, 16, 1),     # resnet18 at 112 px: the CNN needs a core of its own
    (16, "cpu", 0.25, 16, 8),    # 0.24 s of decoding vs 0.25 s of CNN per clip: half the cores each
    (16, "cpu", 5.0, 16, 1),     # a very heavy CNN still leaves one decoder
    (2, "cpu", None, 16, 1),     # nothing measured: half the cores
    (16, "cuda:0", 0.25, 16, 15),  # the GPU runs the CNN: all cores but one decode
])
def test_default_workers_share_cores_by_measured_cost(monkeypatch, cores, device, cnn, frames, expected):
    import vidlstm.stages.predict as predict_stage

    monkeypatch.setattr(predict_stage, "available_cores", lambda: cores)
    assert predict_stage.default_workers(device, cnn, frames) == expected


def test_cnn_cost_is_measured_on_one_thread_and_restores_the_thread_count(model_dir):
    import torch

    from vidlstm.stages.predict import cnn_seconds_per_clip

    before = torch.get_num_threads()
    seconds = cnn_seconds_per_clip(Predictor.from_dir(model_dir, device="cpu"))
    assert 0 < seconds < 5 and torch.get_num_threads() == before


@pytest.mark.slow
def test_workers_0_still_decodes_in_a_guarded_worker(tmp_path, make_video, model_dir):
    import subprocess
    import sys
    from pathlib import Path

    videos = video_folder(make_video, 2)
    make_video("videos/crash.mp4", num_frames=12, height=32, width=32, fps=8.0)
    out = tmp_path / "preds.jsonl"
    # In a child process, so that a segfault in the decoder (the old in-process way) fails the test, not pytest.
    script = (f"import sys; sys.path.insert(0, {str(Path(__file__).parents[1])!r})\n"
              "from batch.fault_decoders import faulty_real_decode\n"
              "from vidlstm.stages.predict import PredictConfig, run\n"
              f"s = run(PredictConfig(inputs=[{str(videos)!r}], output={str(out)!r}, model_dir={str(model_dir)!r}, "
              "device='cpu', progress=False, threads=1, workers=0), decode_fn=faulty_real_decode)\n"
              "print(s.ok, s.failed, s.workers)\n")
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert child.returncode == 0, f"predict --workers 0 died (exit {child.returncode}): {child.stderr[-1000:]}"
    assert child.stdout.split() == ["2", "1", "1"]
    errors = [r["error"] for r in read_records(out) if r["status"] == "error"]
    assert errors == ["decoder crashed (signal 11, SIGSEGV)"]
