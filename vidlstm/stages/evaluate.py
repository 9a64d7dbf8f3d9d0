"""The evaluate stage: a model on labelled videos -> OUT_DIR with metrics.json, report, confusion matrix, predictions.csv."""
from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix
from tqdm import tqdm

from vidlstm.data.datasets import discover_dataset
from vidlstm.data.splits import load_split
from vidlstm.errors import UsageError, VidlstmError
from vidlstm.inference import Predictor
from vidlstm.training.metrics import classification_metrics
from vidlstm.training.plots import plot_confusion_matrix


@dataclass
class EvaluateConfig:
    """What `vidlstm evaluate` measures and where it writes."""

    data: str  # a folder per class or a CSV manifest
    model_dir: str | None = None  # None: the shipped default model
    out_dir: str = "evaluation"
    clips: int = 1  # temporal views per video, probabilities averaged (test-time augmentation)
    top_k: int = 5
    batch_size: int = 8
    split_file: str | None = None  # a run's split.json: evaluate only its `subset`
    subset: str = "val"
    device: str | None = None
    progress: bool = True

    def __post_init__(self):
        if self.clips < 1 or self.top_k < 1 or self.batch_size < 1:
            raise UsageError("--clips, --top-k and --batch-size must be >= 1")
        if self.subset not in ("train", "val"):
            raise UsageError(f"--subset must be train or val (got {self.subset!r})")


def clip_offsets(clips: int) -> list[float | None]:
    """Where inside each segment the views sample: the centre alone, or ``clips`` evenly spread offsets."""
    return [None] if clips == 1 else [(k + 0.5) / clips for k in range(clips)]


def run(config: EvaluateConfig) -> Path:
    predictor = Predictor.from_dir(config.model_dir, device=config.device)
    labels = predictor.labels
    dataset = discover_dataset(config.data, min_classes=1)
    unknown = sorted(set(dataset.labels) - set(labels))
    if unknown:
        raise UsageError(f"{config.data}: label(s) {', '.join(unknown)} are not known to the model "
                         f"(it knows {', '.join(labels)})")
    if config.split_file:
        dataset = dataset.subset(load_split(config.split_file, dataset)[config.subset])
    if not dataset.items:
        raise UsageError(f"{config.data}: no videos to evaluate")
    targets = dataset.targets(labels)
    probs, errors = _score_dataset(predictor, dataset.items, config)
    ok = np.array([e is None for e in errors])
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = classification_metrics(probs[ok], targets[ok], len(labels), config.top_k)
    metrics.update(failed=int((~ok).sum()), clips_per_video=config.clips, model=str(config.model_dir or "default"),
                   data=str(config.data), subset=config.subset if config.split_file else "all")
    preds = probs.argmax(axis=1)
    class_ids = list(range(len(labels)))
    if ok.any():
        report = classification_report(targets[ok], preds[ok], labels=class_ids, target_names=labels, zero_division=0)
        matrix = confusion_matrix(targets[ok], preds[ok], labels=class_ids)
    else:
        report, matrix = "no video could be decoded\n", np.zeros((len(labels), len(labels)), dtype=np.int64)
    (out / "classification_report.txt").write_text(report)
    plot_confusion_matrix(matrix, labels, out / "confusion_matrix.png",
                          title=f"accuracy {metrics.get('accuracy', float('nan')):.3f} (n={metrics['n']})")
    _write_predictions(out / "predictions.csv", dataset, targets, probs, errors, labels, config.top_k)
    (out / "metrics.json").write_text(json.dumps(dict(metrics, config=asdict(config)), indent=2) + "\n")
    return out


def _score_dataset(predictor: Predictor, items, config: EvaluateConfig) -> tuple[np.ndarray, list[str | None]]:
    """(N, C) probabilities averaged over the views, and an error text (None when fine) per item."""
    offsets = clip_offsets(config.clips)
    probs = np.zeros((len(items), len(predictor.labels)), dtype=np.float64)
    errors: list[str | None] = [None] * len(items)
    batch_frames, batch_owner = [], []

    def flush():
        for owner, scores in zip(batch_owner, predictor.score_frames(batch_frames)):
            probs[owner] += scores.probs / len(offsets)
        batch_frames.clear()
        batch_owner.clear()

    for i, item in enumerate(tqdm(items, desc="evaluating", disable=not config.progress, dynamic_ncols=True)):
        try:
            clips = [predictor.load_clip(item.path, offset_fraction=offset).frames for offset in offsets]
        except (VidlstmError, OSError, RuntimeError, ValueError) as err:  # one broken file costs only itself
            errors[i] = getattr(err, "reason", None) or " ".join(str(err).split())
            continue
        batch_frames.extend(clips)  # (T, H, W, 3) uint8 each
        batch_owner.extend([i] * len(clips))
        if len(batch_frames) >= config.batch_size:
            flush()
    if batch_frames:
        flush()
    return probs, errors


def _write_predictions(path: Path, dataset, targets, probs, errors, labels, top_k: int) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "predicted", "score", "correct", "top_k", "status", "error"])
        for i, item in enumerate(dataset.items):
            if errors[i] is not None:
                writer.writerow([dataset.relative_name(item), item.label, "", "", "", "", "error", errors[i]])
                continue
            order = np.argsort(-probs[i], kind="stable")[:top_k]
            top = " ".join(f"{labels[j]}:{probs[i, j]:.4f}" for j in order)
            pred = int(order[0])
            writer.writerow([dataset.relative_name(item), item.label, labels[pred], f"{probs[i, pred]:.6f}",
                             int(pred == targets[i]), top, "ok", ""])
