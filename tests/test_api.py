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
