"""Keyframe-snapped sampling is inference's default; `--exact-frames` turns it off (classify and predict)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vidlstm.cli import main
from vidlstm.io.sampling import sample_segment_indices

av = pytest.importorskip("av")
FPS = 25


@pytest.fixture
def keyframed_clip(tmp_path):
    """40 frames of H.264 with a keyframe every 6 frames: the 8 segments of 5 frames mostly hold one."""
    path = tmp_path / "keyed.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"g": "6", "keyint_min": "6", "sc_threshold": "0"}
        for _ in range(40):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def classify_json(args, capsys) -> dict:
    assert main(["classify", *map(str, args), "--json", "--workers", "0"]) == 0
    return json.loads(capsys.readouterr().out.splitlines()[0])


def test_classify_snaps_by_default_and_exact_frames_takes_segment_centres(keyframed_clip, tiny_model_dir, capsys):
    snapped = classify_json([keyframed_clip, "--model", tiny_model_dir], capsys)
    exact = classify_json([keyframed_clip, "--model", tiny_model_dir, "--exact-frames"], capsys)
    assert snapped["sampling"] == "keyframes" and exact["sampling"] == "exact"
    centres = sample_segment_indices(40, 8)  # [2, 7, ..., 37]
    assert exact["duration_covered"] == pytest.approx((centres[-1] - centres[0]) / FPS)
    # Keyframe-aware: keyframe 0 in the first segment, and the last segment's first frame (35), a one-frame
    # walk from the frame before it (30), costs less than its keyframe (36).
    assert snapped["duration_covered"] == pytest.approx((35 - 0) / FPS)


def test_predict_exact_frames(keyframed_clip, tiny_model_dir, tmp_path):
    for flag, expected in (([], "keyframes"), (["--exact-frames"], "exact")):
        out = tmp_path / f"preds{len(flag)}.jsonl"
        code = main(["predict", str(keyframed_clip), "-o", str(out), "--model", str(tiny_model_dir), "--workers", "0",
                     "--no-progress", *flag])
        assert code == 0
        (record,) = [json.loads(line) for line in out.read_text().splitlines()]
        assert record["status"] == "ok" and record["sampling"] == expected


def test_a_statistics_read_out_takes_the_segment_centres_it_was_fitted_on(keyframed_clip, tmp_path, capsys):
    """A read-out fitted on segment centres was served keyframe-snapped frames: a clip of pushfit flipped from
    wrong (0.84) to correct (0.61), and held-out accuracy fell 2.7 points. Classify, predict, evaluate and the
    API now sample such a model as it was fitted."""
    from batch.predict_helpers import readout_model_dir
    from vidlstm import VideoClassifier
    from vidlstm.stages.evaluate import EvaluateConfig, run as evaluate

    model_dir = readout_model_dir(tmp_path)
    assert classify_json([keyframed_clip, "--model", model_dir], capsys)["sampling"] == "exact"
    out = tmp_path / "p.jsonl"
    assert main(["predict", str(keyframed_clip), "-o", str(out), "--model", str(model_dir), "--no-progress"]) == 0
    assert json.loads(out.read_text())["sampling"] == "exact"
    capsys.readouterr()  # predict's summary line
    clf = VideoClassifier.load(model_dir)
    assert next(iter(clf.predict_many(keyframed_clip, workers=0)))["sampling"] == "exact"
    exact = classify_json([keyframed_clip, "--model", model_dir, "--exact-frames", "--top-k", "2"], capsys)
    assert clf.predict(keyframed_clip, top_k=2) == exact["top_k"]
    # evaluate scores the same clip
    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "data" / "a" / "keyed.mp4").write_bytes(keyframed_clip.read_bytes())
    ev = evaluate(EvaluateConfig(data=str(tmp_path / "data"), model_dir=str(model_dir), out_dir=str(tmp_path / "ev"),
                                 workers=0, progress=False))
    with open(ev / "predictions.csv") as f:
        row = next(__import__("csv").DictReader(f))
    assert float(row["score"]) == pytest.approx(exact["score"], abs=1e-4) and row["predicted"] == exact["label"]
