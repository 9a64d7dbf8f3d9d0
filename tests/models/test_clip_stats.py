"""The clip-statistics read-out: masked statistics, standardisation fitted once, saved, exported, fine-tuned."""
from __future__ import annotations

import pytest
import torch

from vidlstm.checkpoint import load_model, save_model
from vidlstm.errors import UsageError
from vidlstm.models import LRCN, ModelConfig
from vidlstm.models.temporal import ClipStatistics
from vidlstm.training.config import TrainConfig
from vidlstm.training.model_setup import adapt_to_labels


def stats_model(seed: int = 0, **overrides) -> LRCN:
    torch.manual_seed(seed)
    settings = dict(labels=["calm", "busy"], proj_dim=16, hidden_size=12, image_size=32, num_frames=6,
                    input_mode="rgb", clip_head="lstm+stats")
    settings.update(overrides)
    return LRCN(ModelConfig(**settings)).eval()


def test_statistics_by_hand_and_padding_never_counts():
    feats = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [2.0, 4.0], [100.0, 100.0]]])  # (1, 4, 2); step 4 is padding
    mask = torch.tensor([[True, True, True, False]])
    stats = ClipStatistics.raw(feats, mask)[0]  # (6,)
    mean = torch.tensor([2.0, 4 / 3])
    spread = torch.tensor([(2 / 3) ** 0.5, ((16 / 9 * 2 + (8 / 3) ** 2) / 3) ** 0.5])
    change = torch.tensor([(2 + 1) / 2, (0 + 4) / 2])
    torch.testing.assert_close(stats, torch.cat([mean, spread, change]))


def test_fit_standardises_the_training_clips():
    torch.manual_seed(0)
    feats = torch.randn(20, 5, 3) * torch.tensor([1.0, 10.0, 0.1]) + 7  # (N, T, D), features of very unlike scales
    stats = ClipStatistics(3)
    stats.fit(feats)
    out = stats(feats, torch.ones(20, 5, dtype=torch.bool))  # (20, 9)
    torch.testing.assert_close(out.mean(0), torch.zeros(9), atol=1e-4, rtol=0)
    torch.testing.assert_close(out.std(0, unbiased=False), torch.ones(9), atol=1e-4, rtol=0)


def test_a_statistic_all_but_constant_in_training_is_not_blown_up_on_a_new_clip():
    """A few plain training clips leave features all but still (spread 1e-6): a new clip that moves one must not be
    standardised to ~1e5 (the read-out then answers with certainty whatever the clip shows)."""
    from vidlstm.models.temporal import SCALE_FLOOR

    torch.manual_seed(0)
    feats = torch.randn(12, 5, 4)
    feats[..., 3] = 0.5 + 1e-6 * torch.randn(12, 5)  # (N, T, D): feature 3 barely moves in training
    stats = ClipStatistics(4)
    stats.fit(feats)
    spread = ClipStatistics.raw(feats, torch.ones(12, 5, dtype=torch.bool)).std(0, unbiased=False)  # (12,)
    new = feats[:1].clone()
    new[..., 3] = 1.5  # one unit off where training varied by a millionth
    out = stats(new, torch.ones(1, 5, dtype=torch.bool))[0]
    assert out[3] == pytest.approx(1.0 / (SCALE_FLOOR * float(spread.median())), rel=1e-4)
    assert out.abs().max() < 100  # 1e6 with the spread itself as the scale
    torch.testing.assert_close(stats.scale[:3], spread[:3])  # statistics that vary keep their own spread


def test_logits_add_the_statistics_read_out_and_padding_stays_out():
    model = stats_model()
    feats = torch.randn(3, 6, model.feature_dim)
    lengths = torch.tensor([6, 4, 2])
    with torch.no_grad():
        model.clip_stats.fit(feats)
        out = model.forward_features(feats, lengths)
        for i, n in enumerate(lengths.tolist()):
            alone = model.forward_features(feats[i:i + 1, :n])
            torch.testing.assert_close(out.logits[i], alone.logits[0], rtol=0, atol=1e-5)
        # The read-out is a real part of the clip logits: zeroing it changes them by exactly its share.
        share = model.stats_classifier(model.clip_stats(feats, torch.ones(3, 6, dtype=torch.bool)))
        full = model.forward_features(feats).logits
        model.stats_classifier.weight.zero_()
        model.stats_classifier.bias.zero_()
        torch.testing.assert_close(full - model.forward_features(feats).logits, share, rtol=0, atol=1e-5)


def test_the_fitted_standardisation_is_saved_and_loaded(tmp_path):
    model = stats_model()
    with torch.no_grad():
        model.clip_stats.fit(torch.randn(8, 6, model.feature_dim) * 3 + 1)
    loaded = load_model(save_model(tmp_path / "model", model))
    assert loaded.config.clip_head == "lstm+stats"
    torch.testing.assert_close(loaded.clip_stats.center, model.clip_stats.center, rtol=0, atol=0)
    torch.testing.assert_close(loaded.clip_stats.scale, model.clip_stats.scale, rtol=0, atol=0)
    frames = torch.rand(2, 6, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(frames).logits, model(frames).logits, rtol=0, atol=1e-6)


def test_new_labels_get_a_new_read_out_but_keep_the_standardisation():
    model = stats_model()
    with torch.no_grad():
        model.clip_stats.fit(torch.randn(8, 6, model.feature_dim))
    adapted, replaced = adapt_to_labels(model, ["a", "b", "c"])
    assert replaced and adapted.stats_classifier.out_features == 3
    torch.testing.assert_close(adapted.clip_stats.center, model.clip_stats.center, rtol=0, atol=0)


def test_statistics_heads_need_a_frozen_backbone_and_a_known_name():
    with pytest.raises(UsageError, match="--clip-head stats needs a frozen backbone"):
        TrainConfig(data="d", out_dir="o", clip_head="stats", backbone="vidnet")  # from scratch: trains all of itself
    TrainConfig(data="d", out_dir="o", clip_head="stats", backbone="efficientnet_lite0", pretrained=True)
    with pytest.raises(UsageError, match="--clip-head must be one of lstm, lstm\\+stats, stats"):
        TrainConfig(data="d", out_dir="o", clip_head="mean")
    with pytest.raises(UsageError, match="clip_head must be one of"):
        ModelConfig(labels=["a", "b"], clip_head="yes")


def test_the_stats_head_alone_gives_the_clip_logits_and_the_lstm_the_steps():
    model = stats_model(clip_head="stats")
    feats = torch.randn(2, 6, model.feature_dim)
    with torch.no_grad():
        model.clip_stats.fit(feats)
        out = model.forward_features(feats)
        expected = model.stats_classifier(model.clip_stats(feats, torch.ones(2, 6, dtype=torch.bool)))
        torch.testing.assert_close(out.logits, expected, rtol=0, atol=1e-6)
        model.classifier.weight.zero_()  # the BiLSTM's classifier: the per-step logits, not the clip's
        model.classifier.bias.zero_()
        torch.testing.assert_close(model.forward_features(feats).logits, expected, rtol=0, atol=1e-6)
        assert (model.forward_features(feats).step_logits == 0).all()


def test_a_stats_models_frame_weights_say_which_frames_its_label_rests_on():
    """A statistics read-out's attention pooling decides nothing; its explanations show how much each frame adds
    to the read-out's score of the label instead (the frame left out)."""
    from vidlstm.models.temporal import leave_one_out_weights

    stats = ClipStatistics(2)  # center 0, scale 1: the raw statistics
    classifier = torch.nn.Linear(6, 2, bias=False)
    with torch.no_grad():
        classifier.weight.zero_()
        classifier.weight[0, 0] = 1.0  # class 0: the mean of feature 0
    feats = torch.zeros(2, 5, 2)
    feats[0, 3, 0] = 5.0  # clip 0: frame 3 alone lifts class 0
    feats[1, :, 1] = 1.0  # clip 1: no frame moves the label's score
    mask = torch.tensor([[True] * 5, [True, True, True, True, False]])  # clip 1's last step is padding
    logits = classifier(stats(feats, mask))
    weights = leave_one_out_weights(stats, classifier, feats, mask, logits)
    torch.testing.assert_close(weights[0], torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0]))
    torch.testing.assert_close(weights[1], torch.tensor([0.25, 0.25, 0.25, 0.25, 0.0]))


def test_a_stats_models_explanation_holds_its_read_outs_frame_weights(make_video, tmp_path):
    from vidlstm.data.clips import load_clip
    from vidlstm.explain import build_explanation
    from vidlstm.inference.predictor import Predictor

    model = stats_model(clip_head="stats", num_frames=6)
    with torch.no_grad():
        model.clip_stats.fit(torch.randn(8, 6, model.feature_dim) * 0.1)
        model.stats_classifier.weight.normal_(0, 0.5)
    predictor = Predictor(model)
    clip = load_clip(make_video("clip.mp4", num_frames=30), num_frames=6, image_size=32)
    scores = predictor.score_frames([clip.frames])[0]
    assert scores.weights == "leave-one-out" and scores.attention.sum() == pytest.approx(1.0, abs=1e-5)
    assert scores.attention.max() > 1 / 6 + 0.01  # not the flat pooling weights
    explanation = build_explanation("clip.mp4", clip, scores, model.config.labels)
    assert explanation["weights"] == "leave-one-out"
    lstm = Predictor(stats_model(clip_head="lstm")).score_frames([clip.frames])[0]
    assert lstm.weights == "attention"
