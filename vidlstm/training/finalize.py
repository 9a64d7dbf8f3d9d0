"""End of a training run: calibrate the best model's temperature on validation, save it with its metrics, plot."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from vidlstm.checkpoint import load_model, save_model
from vidlstm.training.calibration import fit_temperature
from vidlstm.training.loop import InputAdapter, evaluate
from vidlstm.training.metrics import classification_metrics, expected_calibration_error, softmax
from vidlstm.training.plots import plot_training_curves
from vidlstm.training.readout import refit_stats_readout

# A temperature fitted on a handful of clips is noise (it can swing to 0.1 or 10); keep T = 1 below this.
MIN_CALIBRATION_CLIPS = 20


def finalize_run(config, data, rows: list[dict], stopper, origin: dict, seconds: float, device) -> dict:
    """Reload the best model, fit its temperature on the validation logits, save it with metrics.json.

    Returns the metrics written. Without a validation set the last epoch's model is kept with T = 1 (a
    ``clip_head="stats"`` model: T from its read-out's out-of-fold logits, see training/readout.py).
    """
    model_dir = config.resolved_model_dir
    model = load_model(model_dir, device=device)
    labels = list(model.config.labels)
    counts = np.bincount(data.train_set.targets, minlength=len(labels))
    metrics: dict = {
        "selection": _selection(config),
        "train_backbone": config.backbone_mode(),
        "epochs_run": len(rows),
        "best_epoch": stopper.best_epoch + 1 if stopper.best_epoch >= 0 else len(rows),
        "train_clips": len(data.train_set),
        "val_clips": len(data.val_set),
        "train_class_counts": {label: int(c) for label, c in zip(labels, counts)},
        "skipped_files": data.skipped,
        "train_seconds": round(seconds, 1),
        **origin,
    }
    temperature = 1.0
    if model.clip_stats is not None and model.config.clip_head == "stats" and config.backbone_mode() == "frozen":
        # The clip logits are the statistics read-out alone: refit it as a strongly regularised logistic
        # regression on every training clip (training/readout.py); the epoch loop trained the per-step heads.
        readout = refit_stats_readout(model, data.train_set, data.train_groups(), class_weights=config.class_weights,
                                      seed=config.seed)
        oof_logits, oof_targets = readout.pop("oof_logits", None), readout.pop("oof_targets", None)
        metrics["readout"] = readout
        if not len(data.val_set) and oof_logits is not None and len(oof_targets) >= MIN_CALIBRATION_CLIPS:
            temperature = fit_temperature(oof_logits, oof_targets)
            metrics["temperature_note"] = f"fitted on the read-out's out-of-fold logits ({len(oof_targets)} training clips)"
    if len(data.val_set):
        loader = DataLoader(data.val_set, batch_size=config.batch_size * 2, shuffle=False)
        val = evaluate(InputAdapter(model, from_features=config.backbone_mode() == "frozen"), loader, device)
        if len(data.val_set) >= MIN_CALIBRATION_CLIPS:
            temperature = fit_temperature(val["logits"], val["targets"])
        else:
            metrics["temperature_note"] = f"not fitted: {len(data.val_set)} validation clips (< {MIN_CALIBRATION_CLIPS})"
        # The validation figures and the temperature fitted on them are out-of-sample only when no validation
        # clip chose the model (monitor "last"); otherwise they are labelled in-sample.
        metrics["validation_figures"] = ("out-of-sample: no validation clip chose the model" if config.monitor == "last"
                                         else f"in-sample: the validation clips also chose the epoch ({config.monitor})")
        if data.val_copies:  # said on stderr during the run; kept where the figures are read
            metrics["val_copies_of_training_clips"] = data.val_copies
            metrics["validation_figures"] += (f"; optimistic: {data.val_copies} validation clip(s) are byte-identical "
                                              f"copies of training clips")
        calibrated = classification_metrics(softmax(val["logits"], temperature), val["targets"], len(labels))
        metrics.update(
            val_loss=round(val["val_loss"], 6),
            val_accuracy=round(calibrated["accuracy"], 6),
            val_mean_class_accuracy=round(calibrated["mean_class_accuracy"], 6),
            val_ece_uncalibrated=round(expected_calibration_error(softmax(val["logits"]), val["targets"]), 6),
            val_ece=round(calibrated["ece"], 6),
        )
    metrics["temperature"] = round(temperature, 6)
    model.config.temperature = temperature
    model.config.extra = dict(model.config.extra or {}, training={
        "data": str(config.data), "train_backbone": config.backbone_mode(), "epochs": len(rows),
        "selection": _selection(config), "time_budget": config.time_budget,
        "best_epoch": metrics["best_epoch"], "seed": config.seed, "init": origin.get("init"),
        # Absolute: evaluate finds the run's split.json (and a fine-tune base's) from a --model-out elsewhere.
        "run_dir": str(Path(config.run_dir).resolve()),
        **({"init_dir": str(Path(config.init_from).resolve())} if config.init_from else {}),
    })
    save_model(model_dir, model.cpu(), metrics=metrics)
    plot_training_curves(rows, config.run_dir / "curves.png",  # a read-out's label is not what the epochs trained
                         title=("the epochs' per-step (BiLSTM) heads; the clip label is the statistics read-out"
                                if model.config.clip_head == "stats" else None))
    return metrics


def _selection(config) -> str:
    """How the kept model was chosen, in words (metrics.json, the model card)."""
    weights = f"weight average (EMA {config.ema_decay})" if config.ema_decay > 0 else "raw weights"
    if config.monitor == "last":
        return f"last epoch, {weights}"
    return f"best {config.monitor} epoch, {weights}"
