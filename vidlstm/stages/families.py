"""`train --backbone auto`: train a pretrained and a from-scratch model on the same split, keep the better one.

No one kind of model wins every task. A frozen ImageNet backbone (EfficientNet-Lite0, read out linearly from
its features' statistics over time) knows people, places and postures no few dozen clips can teach, and a
BiLSTM on those 1280 features per frame memorises them instead; vidnet trained from scratch on RGB plus frame
differences, with keypoints, follows motion and paths that frozen pooled features blur (benchmarks/RESULTS.md,
"A pretrained backbone"). So ``auto`` trains both as ordinary runs in RUN_DIR/candidates/ (each resumable on
its own), the pretrained one first with ``PRETRAINED_SHARE`` of the time budget (its features are cached, so
its epochs cost little) and vidnet in the time left, and keeps the one that gets more of the *same* validation
clips right (neither trained on them; ties keep vidnet, the lower validation loss breaking a tie of clips
would be noise on a few dozen clips). RUN_DIR/model is a copy of the kept model; RUN_DIR/choice.json and the
kept model's metrics (``chosen_from_data.family``) record both scores and the rule.

Opt-in and experimental: on fight and pushfit a validation split of 21-35 clips chose the candidate that then
scored lower on the held-out fold in most folds (benchmarks/RESULTS.md, "A pretrained backbone").
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from vidlstm.errors import UsageError
from vidlstm.files import atomic_write_text
from vidlstm.logs import log as logger
from vidlstm.training.config import TrainConfig

FAMILIES = {
    # Two cached views, not six: extracting the features is most of this candidate's time (at six views the
    # extraction alone spent its share of the budget on fight and left it one epoch).
    "pretrained": dict(backbone="efficientnet_lite0", pretrained=True, input_mode="rgb", image_size=160,
                       clip_head="stats", views=2),
    "scratch": dict(backbone="vidnet"),
}
"""The candidates, in training order; settings the user left unset come from here (or the defaults)."""
DEFAULT_FAMILY = "scratch"
PRETRAINED_SHARE = 0.3
"""Share of the time budget the pretrained candidate may take (decoding and feature extraction included)."""
CHOICE_FILE = "choice.json"


def candidate_config(config: TrainConfig, family: str, budget: float) -> TrainConfig:
    """The run of ``family``: its settings where the user left them unset, its own folder, ``budget`` seconds."""
    settings = {}
    for key, value in FAMILIES[family].items():
        user_value = getattr(config, key)
        default = TrainConfig.__dataclass_fields__[key].default
        settings[key] = value if key in ("backbone", "pretrained") or user_value in (None, default) else user_value
    folder = config.run_dir / "candidates" / family
    settings.setdefault("image_size", config.image_size)  # None: the candidate backbone's own default
    return replace(config, **settings, out_dir=str(folder), model_out=None, time_budget=budget)


def run(config: TrainConfig, train_one: Callable[[TrainConfig], Path]) -> Path:
    """Train every family with ``train_one`` (the train stage for one backbone), keep the better; RUN_DIR."""
    if config.init_from:
        raise UsageError("--backbone auto is for training from data; fine-tuning keeps the model's backbone")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UsageError("--backbone auto runs on one process; under torchrun name the backbone")
    if config.val_fraction <= 0:
        raise UsageError("--backbone auto chooses on the validation clips: --val-fraction must be above 0")
    started = time.perf_counter()
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for family in FAMILIES:
        spent = time.perf_counter() - started
        if config.time_budget > 0:
            total = config.time_budget
            budget = total * PRETRAINED_SHARE if family == "pretrained" else max(total - spent, 1.0)
        else:
            budget = 0.0
        candidate = candidate_config(config, family, budget)
        if config.resume and not (candidate.run_dir / "last" / "train_state.pt").is_file():
            candidate = replace(candidate, resume=False)  # interrupted before this candidate began
        if config.resume and (candidate.resolved_model_dir / "metrics.json").is_file() \
                and _finished(candidate.resolved_model_dir):
            logger.info(f"auto: {family} candidate already trained")
        else:
            logger.info(f"auto: training the {family} candidate ({candidate.backbone}, "
                        f"{'budget ' + format(budget, '.0f') + ' s' if budget else 'no budget'})")
            train_one(candidate)
        results[family] = _scores(candidate.resolved_model_dir)
    chosen = choose(results)
    record = {"rule": f"the family with more validation clips right; ties keep {DEFAULT_FAMILY}",
              "candidates": {f: {"settings": FAMILIES[f], **results[f]} for f in FAMILIES}, "chosen": chosen,
              "seconds": round(time.perf_counter() - started, 1)}
    atomic_write_text(run_dir / CHOICE_FILE, json.dumps(record, indent=2) + "\n")
    source = config.run_dir / "candidates" / chosen / "model"
    _copy_model(source, config.resolved_model_dir, record)
    scores = ", ".join(f"{family} {result['correct']}" for family, result in results.items())
    logger.info(f"auto: kept the {chosen} model (validation clips right of {results[chosen]['clips']}: {scores})")
    return run_dir


def choose(results: dict[str, dict]) -> str:
    """The family with the most validation clips right; ties go to DEFAULT_FAMILY."""
    return max(results, key=lambda f: (results[f]["correct"], f == DEFAULT_FAMILY))


def _finished(model_dir: Path) -> bool:
    """A candidate's model folder holds the metrics of a run that ended (only finalize writes run_seconds)."""
    return "run_seconds" in json.loads((model_dir / "metrics.json").read_text())


def _scores(model_dir: Path) -> dict:
    metrics = json.loads((model_dir / "metrics.json").read_text())
    clips = int(metrics.get("val_clips", 0))
    accuracy = float(metrics.get("val_accuracy", 0.0))
    return {"correct": int(round(accuracy * clips)), "clips": clips, "val_accuracy": accuracy,
            "val_loss": metrics.get("val_loss"), "epochs_run": metrics.get("epochs_run"),
            "run_seconds": metrics.get("run_seconds")}


def _copy_model(source: Path, dest: Path, record: dict) -> None:
    """RUN_DIR/model: the kept candidate's folder, its metrics noting the choice."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest)
    metrics_path = dest / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics.setdefault("chosen_from_data", {})["family"] = {
        "rule": record["rule"], "chosen": record["chosen"],
        "scores": {f: c["val_accuracy"] for f, c in record["candidates"].items()}}
    atomic_write_text(metrics_path, json.dumps(metrics, indent=1) + "\n")
