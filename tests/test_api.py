"""The Python API mirrors the Hugging Face video-classification pipeline: sorted [{"label", "score"}]."""
from __future__ import annotations

import math

import pytest

from vidlstm import VideoClassifier
from vidlstm.errors import VideoDecodeError


def test_predict_returns_all_labels_sorted(make_video, tiny_model_dir):
    clf = VideoClassifier.load(tiny_model_dir)
    preds = clf.predict(make_video())
    assert sorted(p["label"] for p in preds) == ["left", "right", "up"]
    scores = [p["score"] for p in preds]
    assert scores == sorted(scores, reverse=True)
    assert math.isclose(sum(scores), 1.0, abs_tol=1e-4)
    assert len(clf.predict(make_video(), top_k=1)) == 1


def test_predict_same_input_same_output(make_video, tiny_model_dir):
    clf = VideoClassifier.load(tiny_model_dir)
    path = make_video()
    assert clf.predict(path) == clf.predict(path)


def test_unreadable_file_raises_decode_error(tmp_path, tiny_model_dir):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(VideoDecodeError, match="bad.mp4"):
        VideoClassifier.load(tiny_model_dir).predict(bad)


@pytest.mark.parametrize("workers", [0, 1])
def test_predict_many_keeps_order_and_turns_bad_files_into_error_records(tmp_path, make_video, tiny_model_dir,
                                                                         workers):
    clf = VideoClassifier.load(tiny_model_dir)
    good = [make_video(f"v{i}.mp4", seed=i) for i in range(3)]
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    paths = [good[0], bad, good[1], good[2]]
    records = list(clf.predict_many(paths, top_k=2, workers=workers, batch_size=2))
    assert [r["path"] for r in records] == [str(p) for p in paths]
    assert [r["status"] for r in records] == ["ok", "error", "ok", "ok"]
    assert records[1]["error"].startswith("cannot decode")  # a reason, not an exception
    for record, path in zip([records[0], records[2], records[3]], good):
        alone = clf.predict(path, top_k=2)
        assert [t["label"] for t in record["top_k"]] == [t["label"] for t in alone]
        assert record["top_k"][0]["score"] == pytest.approx(alone[0]["score"], abs=1e-5)
