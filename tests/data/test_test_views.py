"""A model's test views: several clips of each video, shifted inside the segments, decoded together and averaged,
alike in predict, classify, evaluate and the Python API; chosen at training time (vidnet on the differences)."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from vidlstm.data.clips import load_clip, load_views, shifted_view_indices, view_offsets

SIZE = 32


@pytest.fixture
def videos(make_video):
    return [make_video(f"v{i}.mp4", num_frames=30, height=40, width=48, seed=i) for i in range(2)]


@pytest.fixture
def model_dirs(tmp_path):
    """(a model scoring 3 views, the same weights scoring one), saved."""
    import torch

    from vidlstm.checkpoint import save_model
    from vidlstm.models import LRCN, ModelConfig

    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=["a", "b", "c"], num_frames=6, image_size=SIZE, input_mode="diff", test_views=3))
    one = LRCN(ModelConfig.from_dict(dict(model.config.to_dict(), test_views=1)))
    one.load_state_dict(model.state_dict())
    return save_model(tmp_path / "three", model), save_model(tmp_path / "one", one)


def test_views_are_decoded_in_one_read_at_the_offsets_evaluate_samples(videos):
    assert view_offsets(1) == [None] and view_offsets(3) == pytest.approx([1 / 6, 1 / 2, 5 / 6])
    clip, views = load_views(videos[0], 6, SIZE, 3)
    assert len(views) == 3 and all(v.shape == (6, SIZE, SIZE, 3) and v.dtype == np.uint8 for v in views)
    for view, offset in zip(views, view_offsets(3)):
        assert np.array_equal(view, load_clip(videos[0], 6, SIZE, offset_fraction=offset).frames)
    indices = shifted_view_indices(30, 6, 3)
    assert np.array_equal(clip.frames, views[1]) and clip.indices.tolist() == indices[1].tolist()
    assert [v.tolist() for v in indices] == [[0, 5, 10, 15, 20, 25], [2, 7, 12, 17, 22, 27], [4, 9, 14, 19, 24, 29]]
    # A video shorter than the views' frames: views share frames, each decoded once.
    short_clip, short = load_views(videos[0], 6, SIZE, 8)
    assert len(short) == 8 and all(len(v) == 6 for v in short)


def test_the_model_config_carries_its_test_views_and_bounds_them():
    from vidlstm.errors import UsageError
    from vidlstm.models import ModelConfig

    assert "test_views" not in ModelConfig(labels=["a"]).to_dict()  # older vidlstm still reads one-view models
    assert ModelConfig.from_dict(ModelConfig(labels=["a"], test_views=3).to_dict()).test_views == 3
    for bad in (0, 9, 2.5, True):
        with pytest.raises(UsageError, match="test_views"):
            ModelConfig(labels=["a"], test_views=bad)
    with pytest.raises(UsageError, match="test_views 8"):  # every view of a video is decoded at once
        ModelConfig(labels=["a"], num_frames=256, image_size=224, test_views=8)


def test_predict_classify_evaluate_and_the_api_average_the_same_views(videos, model_dirs, tmp_path):
    from vidlstm.api import VideoClassifier
    from vidlstm.batch.engine import EngineOptions, predict_records
    from vidlstm.inference.predictor import Predictor
    from vidlstm.stages.evaluate import EvaluateConfig, run as evaluate

    three_dir, one_dir = model_dirs
    three, one = Predictor.from_dir(three_dir), Predictor.from_dir(one_dir)
    want = []
    for path in videos:  # what one view scores at each offset, averaged
        per_view = [one.score_frames([load_clip(path, 6, SIZE, offset_fraction=o).frames])[0].probs
                    for o in view_offsets(3)]
        want.append(np.mean(per_view, axis=0))
    assert not np.allclose(want[0], one.score_frames([load_clip(videos[0], 6, SIZE, keyframe_snap=True).frames])[0].probs,
                           atol=1e-4)  # the views change the scores: the test can fail

    for workers in (0, 1):
        records = list(predict_records(three, videos, EngineOptions(workers=workers, top_k=3)))
        for record, probs in zip(sorted(records, key=lambda r: r["path"]), want):
            assert {t["label"]: t["score"] for t in record["top_k"]} == pytest.approx(dict(zip("abc", probs)), abs=1e-5)
            assert record["frames"] == 6 and record["sampling"] == "exact"  # the views sit at their offsets
    api = VideoClassifier.load(three_dir)
    from_file = {t["label"]: t["score"] for t in api.predict(str(videos[0]), top_k=3)}
    assert from_file == pytest.approx(dict(zip("abc", want[0])), abs=1e-5)

    data = tmp_path / "data"
    (data / "a").mkdir(parents=True)
    for path in videos:
        (data / "a" / path.name).write_bytes(path.read_bytes())
    out = evaluate(EvaluateConfig(data=str(data), model_dir=str(three_dir), out_dir=str(tmp_path / "eval"),
                                  top_k=3, progress=False, workers=0))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["clips_per_video"] == 3  # the model's own, where --clips is not given
    with open(out / "predictions.csv", newline="") as f:
        scores = {row["path"]: json.loads(row["top_k"]) for row in csv.DictReader(f)}
    for path, probs in zip(videos, want):
        got = {t["label"]: t["score"] for t in scores[f"a/{path.name}"]}
        assert got == pytest.approx(dict(zip("abc", probs)), abs=1e-5)


def test_in_memory_frames_are_sampled_into_the_same_views(model_dirs):
    from vidlstm.api import VideoClassifier
    from vidlstm.inference.predictor import Predictor

    three_dir, one_dir = model_dirs
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (30, SIZE, SIZE, 3), dtype=np.uint8)
    one = Predictor.from_dir(one_dir)
    want = np.mean([one.score_frames([frames[i]])[0].probs for i in shifted_view_indices(30, 6, 3)], axis=0)
    got = {t["label"]: t["score"] for t in VideoClassifier.load(three_dir).predict(frames, top_k=3)}
    assert got == pytest.approx(dict(zip("abc", want)), abs=1e-5)


def test_training_gives_vidnet_on_the_differences_three_views_and_fine_tuning_keeps_them(tmp_path):
    from vidlstm.training.config import TrainConfig
    from vidlstm.training.model_setup import MOTION_TEST_VIEWS, model_for_run, resolved_test_views

    def config(**kw):
        return TrainConfig(data="unused", out_dir=str(tmp_path / "run"), **kw)

    assert resolved_test_views(config(backbone="vidnet", input_mode="diff")) == MOTION_TEST_VIEWS == 3
    assert resolved_test_views(config(backbone="vidnet", input_mode="rgb+diff")) == 1
    assert resolved_test_views(config(backbone="efficientnet_lite0", input_mode="diff")) == 1
    assert resolved_test_views(config(backbone="vidnet", input_mode="rgb+diff", test_views=5)) == 5
    model, _ = model_for_run(config(backbone="vidnet", input_mode="diff", num_frames=4), ["a", "b"])
    assert model.config.test_views == 3
    with pytest.raises(Exception, match="--test-views must be an integer from 1 to 8"):
        config(test_views=0)


def test_early_decoding_asks_for_the_models_views(model_dirs):
    from vidlstm.batch.early import start_early_decoding

    for folder, views in zip(model_dirs, (3, 1)):
        early = start_early_decoding(folder, ["a.mp4"])
        try:
            assert early.requests[0].views == views
        finally:
            early.close()
