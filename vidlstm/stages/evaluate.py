"""The evaluate stage: a model on labelled videos -> OUT_DIR with metrics.json, report, confusion matrix, predictions.csv."""
from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix
from tqdm import tqdm

from vidlstm.batch.decode import DecodedClip, DecodeRequest, decode_request
from vidlstm.batch.events import Failed, Piece
from vidlstm.batch.inline import InlineDecoder
from vidlstm.batch.pool import DecodePool
from vidlstm.data.clips import view_offsets
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
    clips: int | None = None  # temporal views per video, probabilities averaged (None: the model's test_views)
    top_k: int = 5
    batch_size: int = 8
    split_file: str | None = None  # a run's split.json: evaluate only its `subset`
    subset: str = "val"
    device: str | None = None
    progress: bool = True
    workers: int = 1  # decode processes: a decoder crash or hang costs its file; 0 decodes here, unguarded
    timeout: float = 60.0  # seconds a decoder may go silent on one file before that file fails

    def __post_init__(self):
        if (self.clips is not None and self.clips < 1) or self.top_k < 1 or self.batch_size < 1:
            raise UsageError("--clips, --top-k and --batch-size must be >= 1")
        if self.workers < 0 or not self.timeout > 0:
            raise UsageError("--workers must be >= 0 and --timeout > 0")
        if self.subset not in ("train", "val"):
            raise UsageError(f"--subset must be train or val (got {self.subset!r})")


def clip_offsets(clips: int) -> list[float | None]:
    """Where inside each segment the views sample: the centre alone, or ``clips`` evenly spread offsets (as a
    model's test views sample them in predict and classify: data.clips.view_offsets)."""
    return view_offsets(clips)


def run(config: EvaluateConfig, decode_fn=decode_request) -> Path:
    """Evaluate; ``decode_fn`` (a module-level function, worker processes import it) decodes each view."""
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
    probs, errors = _score_dataset(predictor, dataset.items, config, decode_fn)
    ok = np.array([e is None for e in errors])
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = classification_metrics(probs[ok], targets[ok], len(labels), config.top_k)
    metrics.update(failed=int((~ok).sum()), clips_per_video=config.clips or predictor.config.test_views, model=str(config.model_dir or "default"),
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


def _score_dataset(predictor: Predictor, items, config: EvaluateConfig,
                   decode_fn=decode_request) -> tuple[np.ndarray, list[str | None]]:
    """(N, C) probabilities averaged over the views, and an error text (None when fine) per item.

    Views are decoded by ``config.workers`` decode processes (vidlstm.batch.pool.DecodePool), so a decoder
    that crashes or hangs costs its file, as in predict; ``workers=0`` decodes in this process.
    """
    offsets = clip_offsets(config.clips or predictor.config.test_views)
    cfg = predictor.config
    requests = [DecodeRequest(i * len(offsets) + k, str(item.path), cfg.num_frames, cfg.image_size,
                              threads=1 if config.workers else 0, keyframe_snap=True, offset_fraction=offset,
                              stabilize=predictor.decoders_stabilize())
                for i, item in enumerate(items) for k, offset in enumerate(offsets)]
    probs = np.zeros((len(items), len(predictor.labels)), dtype=np.float64)
    errors: list[str | None] = [None] * len(items)
    views_left = [len(offsets)] * len(items)
    delivered: set[int] = set()
    batch_frames, batch_owner, batch_stabilized = [], [], []

    def flush():
        for owner, scores in zip(batch_owner, predictor.score_frames(batch_frames, stabilized=all(batch_stabilized))):
            probs[owner] += scores.probs / len(offsets)
        batch_frames.clear()
        batch_owner.clear()
        batch_stabilized.clear()

    source = DecodePool(config.workers, config.timeout, decode_fn) if config.workers else InlineDecoder(decode_fn)
    bar = tqdm(total=len(items), desc="evaluating", disable=not config.progress, dynamic_ncols=True)
    with source, bar:
        source.submit(requests)
        while source.unfinished:
            for event in source.poll(block=True):
                owner = event.request.task_id // len(offsets)
                if isinstance(event, Piece) and isinstance(event.value, DecodedClip):
                    delivered.add(event.request.task_id)
                    batch_frames.append(event.value.clip.frames)  # (T, H, W, 3) uint8
                    batch_owner.append(owner)
                    batch_stabilized.append(event.value.stabilized)  # in the decode worker, where the model needs it
                    continue
                if event.request.task_id not in delivered:  # one broken file costs only itself
                    reason = event.reason if isinstance(event, Failed) else "the decoder returned no frames"
                    errors[owner] = errors[owner] or reason
                views_left[owner] -= 1
                bar.update(views_left[owner] == 0)
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
