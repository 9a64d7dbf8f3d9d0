"""predict's flags in every mode: --min-score and --explain apply to timelines too; CSV keeps every field."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from batch.predict_helpers import tiny_model_dir, video_folder
from vidlstm.batch.records import read_records
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
