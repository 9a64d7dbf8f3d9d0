"""Decoding started before the model loads (a cold `vidlstm classify`): same records, torch-free start, fallbacks."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from batch.predict_helpers import tiny_model_dir, video_folder
import vidlstm.batch.engine as engine
from vidlstm.batch.early import start_early_decoding
from vidlstm.inference import Predictor
from vidlstm.stages.classify import classify_paths


@pytest.fixture
def model_dir(tmp_path):
    return tiny_model_dir(tmp_path)


def test_starting_early_decoding_imports_no_torch():
    code = ("import sys, vidlstm.cli.classify, vidlstm.batch.early; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_early_pool_is_the_one_used_and_records_equal_a_normal_run(tmp_path, make_video, model_dir, monkeypatch):
    videos = sorted(video_folder(make_video, 3).iterdir())
    (tmp_path / "broken.mp4").write_text("not a video")
    paths = [str(p) for p in videos] + [str(tmp_path / "broken.mp4")]
    predictor = Predictor.from_dir(model_dir, device="cpu")
    normal = list(classify_paths(predictor, paths, top_k=2))

    early = start_early_decoding(model_dir, paths)
    assert early is not None and len(early.requests) == 4
    assert early.requests[0].num_frames == predictor.config.num_frames
    assert early.requests[0].image_size == predictor.config.image_size

    def no_new_pool(*args, **kwargs):
        raise AssertionError("the engine started a second pool instead of the early one")

    monkeypatch.setattr(engine, "DecodePool", no_new_pool)
    records = list(classify_paths(predictor, paths, top_k=2, early=early))
    assert [r["path"] for r in records] == paths
    assert [r["status"] for r in records] == ["ok", "ok", "ok", "error"]
    for got, want in zip(records, normal):
        assert got.get("label") == want.get("label") and got.get("error") == want.get("error")
        assert got.get("score", 0) == pytest.approx(want.get("score", 0), abs=1e-6)
    assert early.source._slots == []  # the engine closed it


def test_early_pool_sampling_differently_is_closed_and_replaced(tmp_path, make_video, model_dir):
    videos = [str(p) for p in sorted(video_folder(make_video, 2).iterdir())]
    config = json.loads((model_dir / "config.json").read_text())
    other = tmp_path / "other_model"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({**config, "image_size": config["image_size"] + 16}))
    early = start_early_decoding(other, videos)
    predictor = Predictor.from_dir(model_dir, device="cpu")
    records = list(classify_paths(predictor, videos, top_k=1, early=early))
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert early.source._slots == []  # closed, not leaked


def test_no_early_decoding_without_a_readable_config(tmp_path):
    assert start_early_decoding(tmp_path / "missing", ["a.mp4"]) is None
    (tmp_path / "config.json").write_text("{not json")
    assert start_early_decoding(tmp_path, ["a.mp4"]) is None


def test_console_command_output_and_exit_codes_survive_the_fast_exit(tmp_path, make_video, model_dir):
    video = make_video("clip.mp4", num_frames=12, height=32, width=32, fps=8.0)
    run = subprocess.run([sys.executable, "-m", "vidlstm", "classify", str(video), str(tmp_path / "missing.mp4"),
                          "--model", str(model_dir), "--json", "--threads", "1"], capture_output=True, text=True)
    assert run.returncode == 1, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["status"] for r in lines] == ["ok", "error"]
    assert run.stderr.strip().splitlines() == [f"vidlstm classify: error: {tmp_path / 'missing.mp4'}: no such file"]
    ok = subprocess.run([sys.executable, "-m", "vidlstm", "classify", str(video), "--model", str(model_dir)],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and str(video) in ok.stdout and ok.stdout.endswith("\n")
