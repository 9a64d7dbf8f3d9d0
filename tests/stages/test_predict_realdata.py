"""The real-video corpus (../shared/data/videos) through `predict`: every FFmpeg-decodable file ok, broken ones error."""
from __future__ import annotations

import csv

import pytest

from batch.predict_helpers import tiny_model_dir
from vidlstm.batch.records import read_records
from vidlstm.stages.predict import PredictConfig, run

# FFmpeg decodes 49 frames of it with errors; vidlstm.io decides whether that is a damaged stream.
IO_DECIDES = "decord/tests/test_data/corrupted.mp4"


@pytest.mark.slow
@pytest.mark.realdata
def test_whole_corpus_through_predict(tmp_path, shared_data):
    videos = shared_data / "videos"
    with open(videos / "MANIFEST.tsv", newline="") as f:
        manifest = {row["local_path"]: row for row in csv.DictReader(f, delimiter="\t")}
    out = tmp_path / "corpus.jsonl"
    # Worker processes, as users run it: a decoder crash on a damaged file would cost only that file.
    summary = run(PredictConfig(inputs=[str(videos)], output=str(out), model_dir=str(tiny_model_dir(tmp_path)),
                                device="cpu", recursive=True, workers=1, threads=1, progress=False))
    records = {r["path"][len(str(videos)) + 1:]: r for r in read_records(out)}
    assert set(records) == set(manifest)  # every video found (MANIFEST.tsv itself is not one), none twice
    for rel, row in manifest.items():
        record = records[rel]
        if rel == IO_DECIDES:
            assert record["status"] == "ok" or record["error"], rel
        elif int(row["decoded_frames"] or 0) > 0:
            assert record["status"] == "ok", f"{rel}: {record.get('error')}"
            assert record["frames"] == 8 and record["label"] is not None
        else:
            assert record["status"] == "error", rel
    assert records["moviepy/media/doc_medias/result.webm"]["error"] == "empty file (0 bytes)"
    assert summary.stats.workers_replaced == 0  # no decoder crashed or hung on this corpus
    assert summary.ok + summary.failed == len(manifest)
