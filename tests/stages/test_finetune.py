"""finetune --from MODEL: a new label set gets new heads on the kept backbone; the same set continues."""
from __future__ import annotations

import json

import pytest
import torch

from vidlstm.checkpoint import load_model, save_model
from vidlstm.data.synth import SynthConfig, generate_dataset
from vidlstm.errors import ModelLoadError
from vidlstm.models import LRCN, ModelConfig
from vidlstm.stages import finetune
from vidlstm.training.config import TrainConfig

TINY = dict(epochs=2, batch_size=4, views=2, val_fraction=0.5, progress=False)


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=["left", "right"], num_frames=4, image_size=32))
    return save_model(root / "base", model)


def make_data(root, classes):
    return generate_dataset(root, SynthConfig(per_class=2, size=32, min_frames=6, max_frames=8, seed=4), classes=classes)


@pytest.mark.slow
def test_new_label_set_gets_new_heads_and_keeps_the_backbone(base_model, tmp_path):
    data = make_data(tmp_path / "data", ("up", "down", "grow"))
    run_dir = finetune.run(TrainConfig(data=str(data), out_dir=str(tmp_path / "run"), init_from=str(base_model), **TINY))
    base, tuned = load_model(base_model), load_model(run_dir / "model")
    assert tuned.config.labels == ["down", "grow", "up"]
    assert tuned.classifier.out_features == 3 and tuned.causal.classifier.out_features == 3
    assert all(torch.equal(a, b) for a, b in zip(base.backbone.state_dict().values(),
                                                 tuned.backbone.state_dict().values()))  # frozen by default
    assert not torch.equal(base.temporal.lstm.weight_ih_l0, tuned.temporal.lstm.weight_ih_l0)  # the LSTM trained
    metrics = json.loads((run_dir / "model" / "metrics.json").read_text())
    assert metrics["new_heads"] is True and metrics["train_backbone"] == "frozen"
    assert metrics["base_labels"] == ["left", "right"]
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["num_frames"], config["image_size"], config["init_from"]) == (4, 32, str(base_model))
    assert (config["clip_head"], config["keypoint_stage"]) == ("lstm", base.config.keypoint_stage)
    assert config["stabilize"] == "off" and tuned.config.stabilize is False  # the base model's, not by data


@pytest.mark.slow
def test_a_stabilized_model_stays_stabilized_when_fine_tuned(tmp_path):
    torch.manual_seed(0)
    base = save_model(tmp_path / "base", LRCN(ModelConfig(labels=["left", "right"], num_frames=4, image_size=32,
                                                          stabilize=True)))
    data = make_data(tmp_path / "data", ("right", "left"))
    run_dir = finetune.run(TrainConfig(data=str(data), out_dir=str(tmp_path / "run"), init_from=str(base), **TINY))
    assert load_model(run_dir / "model").config.stabilize is True
    assert json.loads((run_dir / "config.json").read_text())["stabilize"] == "on"
    assert all(json.loads(spec.read_text())["clip"]["stabilize"] == 1  # its features came from stabilized views
               for spec in (tmp_path / "run" / "cache" / "features").glob("*/spec.json"))


@pytest.mark.slow
def test_same_label_set_continues_with_the_models_heads(base_model, tmp_path):
    data = make_data(tmp_path / "data", ("right", "left"))
    run_dir = finetune.run(TrainConfig(data=str(data), out_dir=str(tmp_path / "run"), init_from=str(base_model),
                                       train_backbone="all", **TINY))
    tuned = load_model(run_dir / "model")
    assert tuned.config.labels == ["left", "right"]
    assert json.loads((run_dir / "model" / "metrics.json").read_text())["new_heads"] is False


def test_missing_base_model_is_a_model_load_error(tmp_path):
    data = make_data(tmp_path / "data", ("up", "down"))
    with pytest.raises(ModelLoadError, match="no such model folder"):
        finetune.run(TrainConfig(data=str(data), out_dir=str(tmp_path / "run"), init_from=str(tmp_path / "nope"), **TINY))


@pytest.mark.parametrize("mode", ["rgb", "rgb,diff"])
def test_a_statistics_head_refits_on_new_labels_and_refuses_an_unfrozen_backbone(tmp_path, mode, caplog):
    from vidlstm.errors import UsageError

    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=["left", "right"], backbone="efficientnet_lite0", pretrained=True, num_frames=4,
                             image_size=32, input_mode=mode, clip_head="stats"))
    with torch.no_grad():
        model.clip_stats.fit(torch.randn(4, 4, model.feature_dim))
    base = save_model(tmp_path / "base", model)
    data = make_data(tmp_path / "data", ("up", "down"))
    with caplog.at_level("INFO", logger="vidlstm"):
        run_dir = finetune.run(TrainConfig(data=str(data), out_dir=str(tmp_path / "run"), init_from=str(base),
                                           **TINY))
    # The epoch lines' accuracies are the per-step heads', not the read-out's: said before them (three figures
    # for one split confused a user).
    assert "the epochs train the per-step (BiLSTM) heads; the clip label is the statistics read-out" in caplog.text
    tuned = load_model(run_dir / "model")
    assert tuned.config.clip_head == "stats" and tuned.config.labels == ["down", "up"]
    assert tuned.config.input_mode == mode and tuned.feature_dim == model.feature_dim == 1280 * tuned.streams
    readout = json.loads((run_dir / "model" / "metrics.json").read_text())["readout"]
    assert readout["train_clips"] == 2 and tuned.stats_classifier.in_features == 3 * tuned.feature_dim
    # New heads read statistics standardised on the new clips, not the base model's.
    assert not torch.allclose(tuned.clip_stats.center, load_model(base).clip_stats.center)
    assert json.loads((run_dir / "config.json").read_text())["views"] == 2  # as asked
    # Left unset: one view of each clip, as train fits a read-out (six took a fine-tune ten minutes of decoding).
    default_views = finetune.run(TrainConfig(data=str(data), out_dir=str(tmp_path / "run1"), init_from=str(base),
                                             **{k: v for k, v in TINY.items() if k != "views"}))
    recorded = json.loads((default_views / "config.json").read_text())
    assert recorded["views"] == 1
    # The run's config.json records the model's architecture, not train's defaults for it (it said "lstm").
    assert (recorded["clip_head"], recorded["keypoint_stage"], recorded["centred_keypoints"]) == ("stats", None, False)
    with pytest.raises(UsageError, match="standardised on frozen features; fine-tune it with --train-backbone frozen"):
        finetune.run(TrainConfig(data=str(data), out_dir=str(tmp_path / "run2"), init_from=str(base),
                                 train_backbone="all", **TINY))


def test_an_interrupted_fine_tune_is_carded_as_fine_tuned(base_model, tmp_path):
    """The model folder saved mid-run had no "init" in its metrics, so its card said "trained from scratch"."""
    data = make_data(tmp_path / "data", ["left", "right"])

    def interrupt(epoch, row):
        raise KeyboardInterrupt

    config = TrainConfig(data=str(data), out_dir=str(tmp_path / "run"), init_from=str(base_model), **TINY)
    with pytest.raises(KeyboardInterrupt):
        finetune.run(config, on_epoch_end=interrupt)
    card = (tmp_path / "run" / "model" / "README.md").read_text()
    assert f"(fine-tuned from {base_model}" in card and "trained from scratch" not in card
    assert json.loads((tmp_path / "run" / "model" / "metrics.json").read_text())["finished"] is False


@pytest.mark.slow
def test_evaluate_finds_the_training_clips_of_a_model_written_elsewhere_and_of_its_base(tmp_path, caplog):
    """evaluate's in-sample check looked only beside the model folder: a model written with --model-out elsewhere,
    or the base a model was fine-tuned from, was never checked."""
    from vidlstm.stages import evaluate, train

    first = make_data(tmp_path / "first", ("left", "right"))
    second = generate_dataset(tmp_path / "second", SynthConfig(per_class=2, size=32, min_frames=6, max_frames=8, seed=9),
                              classes=("left", "right"))  # other clips: the content check must not match them
    models = tmp_path / "models"
    train.run(TrainConfig(data=str(first), out_dir=str(tmp_path / "run1"), backbone="vidnet", image_size=32,
                          num_frames=4, model_out=str(models / "base"), **TINY))
    finetune.run(TrainConfig(data=str(second), out_dir=str(tmp_path / "run2"), init_from=str(models / "base"),
                             model_out=str(models / "tuned"), **TINY))
    trained_first = len(json.loads((tmp_path / "run1" / "split.json").read_text())["train"])
    for model in ("base", "tuned"):
        caplog.clear()
        out = evaluate.run(evaluate.EvaluateConfig(data=str(first), model_dir=str(models / model),
                                                   out_dir=str(tmp_path / f"ev_{model}"), workers=0, progress=False))
        assert json.loads((out / "metrics.json").read_text())["in_sample_clips"] == trained_first == 2
        said = [r.getMessage() for r in caplog.records if "in-sample" in r.getMessage()]
        assert len(said) == 1 and f"({tmp_path / 'run1' / 'split.json'})" in said[0]
    out = evaluate.run(evaluate.EvaluateConfig(data=str(second), model_dir=str(models / "tuned"),
                                               out_dir=str(tmp_path / "ev_second"), workers=0, progress=False))
    assert json.loads((out / "metrics.json").read_text())["in_sample_clips"] == 2  # the fine-tune's own split


@pytest.mark.slow
def test_evaluate_trusts_the_run_a_model_records_and_says_when_it_is_gone(tmp_path, caplog, monkeypatch):
    """A model written into another run's folder was checked against that run's split.json; $VIDLSTM_MODEL's
    model was not checked at all; a moved run turned the check off without a word."""
    import shutil

    from vidlstm.stages import evaluate, train

    first = make_data(tmp_path / "first", ("left", "right"))
    other = generate_dataset(tmp_path / "other", SynthConfig(per_class=2, size=32, min_frames=6, max_frames=8, seed=9),
                             classes=("left", "right"))
    train.run(TrainConfig(data=str(other), out_dir=str(tmp_path / "other_run"), backbone="vidnet", image_size=32,
                          num_frames=4, **TINY))
    # A model of `first`, written into the other run's folder: that run's split.json sits beside it.
    train.run(TrainConfig(data=str(first), out_dir=str(tmp_path / "run1"), backbone="vidnet", image_size=32,
                          num_frames=4, model_out=str(tmp_path / "other_run" / "kept"), **TINY))
    model = tmp_path / "other_run" / "kept"

    def in_sample(data, model_dir, name):
        out = evaluate.run(evaluate.EvaluateConfig(data=str(data), model_dir=model_dir, out_dir=str(tmp_path / name),
                                                   workers=0, progress=False))
        return json.loads((out / "metrics.json").read_text()).get("in_sample_clips", 0)

    assert in_sample(first, str(model), "a") == 2 and in_sample(other, str(model), "b") == 0
    monkeypatch.setenv("VIDLSTM_MODEL", str(model))  # the model every command takes where none is named
    assert in_sample(first, None, "c") == 2
    monkeypatch.delenv("VIDLSTM_MODEL")
    shutil.move(tmp_path / "run1", tmp_path / "renamed")
    caplog.clear()
    assert in_sample(first, str(model), "d") == 0
    said = [r.getMessage() for r in caplog.records if "cannot be told" in r.getMessage()]
    assert said == [f"{model}: the training run or base model it records is not there ({tmp_path / 'run1'}): whether "
                    f"the clips evaluated trained it cannot be told"]


def test_fine_tuning_onto_other_labels_says_which_the_model_drops(tmp_path, caplog):
    """finetune onto a subset of the base model's labels dropped the others without a word, even with -v."""
    from vidlstm.training.model_setup import model_for_run

    eight = ["anticlockwise", "clockwise", "down", "grow", "left", "right", "shrink", "up"]
    base = save_model(tmp_path / "base", LRCN(ModelConfig(labels=eight, num_frames=4, image_size=32)))
    config = TrainConfig(data=str(tmp_path / "data"), out_dir=str(tmp_path / "run"), init_from=str(base))
    with caplog.at_level("INFO", logger="vidlstm"):
        model_for_run(config, ["left", "right"])
    said = [r for r in caplog.records if "new label set" in r.getMessage()]
    assert [(r.levelname, r.getMessage()) for r in said] == [
        ("INFO", f"{base}: new label set: 2 label(s) (left, right) where the base model has 8: the classifier heads "
                 f"start afresh; the model will no longer predict anticlockwise, clockwise, down, grow and 2 more")]
    caplog.clear()
    with caplog.at_level("INFO", logger="vidlstm"):
        model_for_run(config, eight + ["wave"])  # a new class: nothing is dropped
        model_for_run(config, list(reversed(eight)))  # the same set: the heads are kept, nothing said
    assert [r.getMessage() for r in caplog.records if "new label set" in r.getMessage()] == [
        f"{base}: new label set: 9 label(s) (anticlockwise, clockwise, down, grow and 5 more) where the base model "
        f"has 8: the classifier heads start afresh"]
