"""Training-loop pieces: loss weighting, warm-up/cosine schedule, early stopping, temperature and ECE."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidlstm.models.classifier import LRCNOutput
from vidlstm.training.calibration import fit_temperature, succession_smoothing
from vidlstm.training.early_stopping import EarlyStopping
from vidlstm.training.losses import LRCNLoss, balanced_class_weights
from vidlstm.training.metrics import classification_metrics, expected_calibration_error, softmax
from vidlstm.training.schedule import warmup_cosine_factor


def random_output(batch=3, steps=4, classes=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return LRCNOutput(torch.randn(batch, classes, generator=g), torch.randn(batch, steps, classes, generator=g),
                      torch.full((batch, steps), 1 / steps), torch.randn(batch, steps, classes, generator=g))


def test_loss_is_clip_plus_weighted_step_terms():
    out, y = random_output(), torch.tensor([0, 2, 4])
    steps = y.repeat_interleave(4)
    clip = F.cross_entropy(out.logits, y, label_smoothing=0.1)
    step = F.cross_entropy(out.step_logits.flatten(0, 1), steps, label_smoothing=0.1)
    causal = F.cross_entropy(out.causal_step_logits.flatten(0, 1), steps, label_smoothing=0.1)
    loss = LRCNLoss(None, 0.1, step_weight=0.5, causal_weight=0.25, causal_ramp=False)(out, y)
    assert loss.item() == pytest.approx((clip + 0.5 * step + 0.25 * causal).item(), rel=1e-6)


def test_causal_ramp_weights_late_steps_more():
    out, y = random_output(steps=4), torch.tensor([0, 2, 4])
    per = F.cross_entropy(out.causal_step_logits.flatten(0, 1), y.repeat_interleave(4), reduction="none")
    ramp = torch.tensor([0.25, 0.5, 0.75, 1.0]).repeat(3)
    expected = (per * ramp).sum() / ramp.sum()
    loss = LRCNLoss(None, 0.0, step_weight=0.0, causal_weight=1.0)(out, y)
    clip = F.cross_entropy(out.logits, y)
    assert (loss - clip).item() == pytest.approx(expected.item(), rel=1e-6)


def test_balanced_class_weights_favour_rare_classes():
    w = balanced_class_weights(np.array([0, 0, 0, 1]), num_classes=3)
    assert w.tolist() == pytest.approx([4 / 6, 2.0, 1.0])  # class 2 is absent: neutral weight


def test_schedule_warms_up_linearly_then_decays_to_the_floor():
    factors = [warmup_cosine_factor(s, warmup_steps=4, total_steps=20) for s in range(20)]
    assert factors[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert all(a >= b for a, b in zip(factors[4:], factors[5:]))
    assert warmup_cosine_factor(20, 4, 20) == pytest.approx(0.01)


def test_early_stopping_counts_epochs_without_improvement():
    stop = EarlyStopping("val_acc", patience=2)
    assert stop.update(0, {"val_acc": 0.5, "val_loss": 1.0})
    assert stop.update(1, {"val_acc": 0.5, "val_loss": 0.9})  # same accuracy, lower loss: better
    assert not stop.update(2, {"val_acc": 0.4, "val_loss": 0.8}) and not stop.should_stop
    assert not stop.update(3, {"val_acc": 0.5, "val_loss": 0.95}) and stop.should_stop
    assert stop.best_epoch == 1
    again = EarlyStopping("val_acc", patience=2)
    again.load_state_dict(stop.state_dict())
    assert again.best_epoch == 1 and again.should_stop


def test_temperature_fixes_overconfidence():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 3, 400)
    logits = rng.normal(0, 1, (400, 3))
    logits[np.arange(400), targets] += 1.0
    logits *= 6  # far too confident for ~60 % accuracy
    t = fit_temperature(logits, targets)
    assert t > 2
    assert expected_calibration_error(softmax(logits, t), targets) < expected_calibration_error(softmax(logits), targets)


def test_temperature_on_a_fully_separated_small_set_claims_no_certainty():
    """24 validation clips, all right: plain NLL drove T to its floor (every later score 1.000, wrong ones too);
    the fitted T keeps the mean confidence at what 24 of 24 supports, (n + 1) / (n + 2) = 0.962."""
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 2, 24)
    logits = rng.normal(0, 0.5, (24, 2))
    logits[np.arange(24), targets] += 3.0  # every clip right, margins 1.5-4.5
    t = fit_temperature(logits, targets)
    assert t > 0.3
    confidence = softmax(logits, t).max(axis=1).mean()
    assert 0.94 < confidence < 0.98
    assert succession_smoothing(24, 2) == pytest.approx(2 / 26)
    assert succession_smoothing(192, 8) < 0.01


def test_classification_metrics_by_hand():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1], [0.2, 0.2, 0.6]])
    targets = np.array([0, 1, 1, 2])
    m = classification_metrics(probs, targets, num_classes=3, top_k=2)
    assert m["accuracy"] == 0.5 and m["top2_accuracy"] == 1.0
    assert m["mean_class_accuracy"] == pytest.approx((1 + 0 + 1) / 3)


def test_an_epoch_line_shows_validation_columns_only_where_there_is_a_validation_split():
    from vidlstm.stages.train import _epoch_line

    row = dict(epoch=0, train_loss=0.5, train_acc=0.75, val_loss=float("nan"), val_acc=float("nan"), seconds=1.0)
    assert _epoch_line(row, 3, False) == "epoch   1/3  loss 0.5000  acc 0.750  (1.0 s)"
    row.update(val_loss=0.25, val_acc=1.0)
    assert _epoch_line(row, 3, True) == ("epoch   1/3  loss 0.5000  acc 0.750  | val loss 0.2500  acc 1.000  "
                                         "(1.0 s)  *")
