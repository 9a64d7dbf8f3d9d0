"""The evaluate stage: a model on labelled videos -> OUT_DIR with metrics.json, report, confusion matrix, predictions.csv."""
from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from vidlstm.batch.decode import DecodedClip, DecodeRequest, decode_request
from vidlstm.batch.events import Failed, Piece
from vidlstm.batch.inline import InlineDecoder
from vidlstm.batch.pool import DecodePool
from vidlstm.data.datasets import VideoItem, discover_dataset
from vidlstm.data.splits import load_split
from vidlstm.defaults import MODEL_ENV, default_model_dir
from vidlstm.errors import UsageError, VidlstmError
from vidlstm.inference import Predictor
from vidlstm.limits import MODEL_INT_RANGES, clip_size_error, int_range_error
from vidlstm.logs import log as logger, progress_bar
from vidlstm.training.in_sample import warn_in_sample
from vidlstm.training.metrics import classification_metrics
from vidlstm.training.plots import plot_confusion_matrix
from vidlstm.training.run_folder import MODEL_MARKERS, RUN_MARKERS, check_outside

OUTPUTS = ("metrics.json", "predictions.csv", "classification_report.txt", "confusion_matrix.png")
PREDICTION_COLUMNS = ["path", "label", "predicted", "score", "correct", "top_k", "status", "error"]
MAX_NAMED_FAILURES = 10
"""Videos that could not be decoded named on stderr, each with its reason (predictions.csv lists them all)."""


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
        if self.clips is not None and int_range_error("test_views", self.clips):
            # A video's views are decoded at once: --clips 100000 grew memory by a GB every few seconds, unbounded.
            low, high = MODEL_INT_RANGES["test_views"]
            raise UsageError(f"--clips must be an integer from {low} to {high}, as a model's test views "
                             f"(got {self.clips!r})")
        if self.top_k < 1 or self.batch_size < 1:
            raise UsageError("--top-k and --batch-size must be >= 1")
        if self.workers < 0 or not self.timeout > 0:
            raise UsageError("--workers must be >= 0 and --timeout > 0")
        if self.subset not in ("train", "val"):
            raise UsageError(f"--subset must be train or val (got {self.subset!r})")


def _check_out_dir(out: Path, data) -> None:
    """-o must be an evaluation's own folder: its metrics.json replaced a model's (the card and `info` then showed the
    evaluation as the model's metrics) or a run's (the report lost the run's training sections); inside DATA it was
    then read as a class folder."""
    check_outside(data, "-o", out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: not a folder (-o names the folder the evaluation is written to)")
    if any((out / marker).exists() for marker in MODEL_MARKERS + RUN_MARKERS) or (
            out.name == "candidates" and any(out.glob("*/last"))):  # an auto run's candidates folder
        raise UsageError(f"{out}: a model or training run folder; write the evaluation to another -o "
                         f"(e.g. {out / 'evaluation'})")
    mine = [name for name in OUTPUTS if (out / name).exists()]
    if mine and not _earlier_evaluation(out):  # a user's own predictions.csv or metrics.json was overwritten
        raise UsageError(f"{out}: holds a {mine[0]} that no earlier evaluation wrote; write the evaluation to another "
                         f"-o (an earlier evaluation's folder is replaced)")


def _earlier_evaluation(out: Path) -> bool:
    """Whether ``out`` holds what an earlier evaluate wrote: its metrics.json (the keys every evaluate has written),
    or, where it stopped before that (metrics.json is written last), its predictions.csv (written first)."""
    try:
        metrics = json.loads((out / "metrics.json").read_text())
    except FileNotFoundError:
        try:
            with open(out / "predictions.csv", newline="") as f:
                return next(csv.reader(f), None) == PREDICTION_COLUMNS
        except (OSError, UnicodeDecodeError, csv.Error):
            return False
    except (OSError, ValueError):
        return False
    return (isinstance(metrics, dict) and {"n", "failed", "clips_per_video", "model"} <= set(metrics)
            and isinstance(metrics.get("config"), dict) and "out_dir" in metrics["config"])


def run(config: EvaluateConfig, decode_fn=decode_request) -> Path:
    """Evaluate; ``decode_fn`` (a module-level function, worker processes import it) decodes each view."""
    _check_out_dir(Path(config.out_dir), config.data)
    predictor = Predictor.from_dir(config.model_dir, device=config.device)
    labels = predictor.labels
    too_large = clip_size_error(predictor.config.num_frames * _views(config, predictor), predictor.config.image_size)
    if too_large and config.clips:  # a video's views are decoded at once (ModelConfig checks a model's own)
        raise UsageError(f"--clips {config.clips}: {too_large} x clips {config.clips}; give fewer --clips")
    dataset = discover_dataset(config.data, min_classes=1)
    unknown = sorted(set(dataset.labels) - set(labels))
    if unknown:
        raise UsageError(f"{config.data}: label(s) {', '.join(unknown)} are not known to the model "
                         f"(it knows {', '.join(labels)})")
    if config.split_file:
        dataset = dataset.subset(load_split(config.split_file, dataset)[config.subset])
        if not dataset.items:
            why = (" (a read-out that auto kept is judged out-of-fold on every training clip, so its run holds no "
                   "validation clips: evaluate it on clips it did not train on)") if config.subset == "val" else ""
            raise UsageError(f"{config.split_file}: its {config.subset} subset is empty{why}")
    if not dataset.items:
        raise UsageError(f"{config.data}: no videos to evaluate")
    # Entries named like videos that are no files (a FIFO, a dangling link): never opened, each named and counted
    # as a failed video, as an unreadable one is (they were left out without a word, n and failed none the wiser).
    # A split's subset holds only the clips it lists, which such an entry cannot be.
    unreadable = [] if config.split_file else dataset.skipped
    for entry in unreadable:
        logger.warning(f"{entry.path}: {entry.reason}")
    model_dir = config.model_dir or str(default_model_dir())  # $VIDLSTM_MODEL's model is checked like any other
    trained_on = len(warn_in_sample(model_dir, dataset.items, "clips evaluated",
                                    "evaluate clips it never saw (or its run's --split ... --subset val)"))
    probs, errors = _score_dataset(predictor, dataset.items, config, decode_fn)
    failed = [(item, error) for item, error in zip(dataset.items, errors) if error is not None]
    for item, error in failed[:MAX_NAMED_FAILURES]:  # named where the user looks, not only in predictions.csv
        logger.warning(f"{item.path}: {error}")
    if len(failed) > MAX_NAMED_FAILURES:
        logger.warning(f"... and {len(failed) - MAX_NAMED_FAILURES} more video(s) that could not be decoded")
    if unreadable:  # after the videos, in predictions.csv as any video that could not be read
        dataset = replace(dataset, items=dataset.items + [VideoItem(e.path, e.label) for e in unreadable], skipped=[])
        probs = np.vstack([probs, np.zeros((len(unreadable), len(labels)))])
        errors = errors + [entry.reason for entry in unreadable]
    targets = dataset.targets(labels)
    ok = np.array([e is None for e in errors])
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = classification_metrics(probs[ok], targets[ok], len(labels), config.top_k)
    named = config.model_dir or os.environ.get(MODEL_ENV) or "default"
    metrics.update(failed=int((~ok).sum()), clips_per_video=_views(config, predictor), model=str(named),
                   data=str(config.data), subset=config.subset if config.split_file else "all")
    if trained_on:
        metrics["in_sample_clips"] = trained_on  # the report and a reader of metrics.json see it too
    preds = probs.argmax(axis=1)
    class_ids = list(range(len(labels)))
    if ok.any():
        # Only the classes in the data or predicted: one the model knows that appears in neither would count in the
        # macro average as a zero (3 classes evaluated, all right, read as a 0.75 macro F1 with a 4-class model).
        shown = sorted(set(targets[ok].tolist()) | set(preds[ok].tolist()))
        report = _report_text(targets[ok], preds[ok], shown, [labels[i] for i in shown])
        absent = [labels[i] for i in class_ids if i not in shown]
        if absent:
            report += f"\nnot in the data and never predicted (left out above): {', '.join(absent)}\n"
        matrix = confusion_matrix(targets[ok], preds[ok], labels=class_ids)
    else:
        report, matrix = "no video could be decoded\n", np.zeros((len(labels), len(labels)), dtype=np.int64)
    # predictions.csv first and metrics.json last: an evaluation stopped half-way is known by one (_earlier_evaluation)
    _write_predictions(out / "predictions.csv", dataset, targets, probs, errors, labels, config.top_k)
    (out / "classification_report.txt").write_text(report)
    plot_confusion_matrix(matrix, labels, out / "confusion_matrix.png",
                          title=f"accuracy {metrics.get('accuracy', float('nan')):.3f} (n={metrics['n']})")
    given = asdict(config) if config.split_file else dict(asdict(config), subset=None)  # no split: no subset
    (out / "metrics.json").write_text(json.dumps(dict(metrics, config=given), indent=2) + "\n")
    return out


def _report_text(truth: np.ndarray, pred: np.ndarray, shown: list[int], names: list[str]) -> str:
    """sklearn's classification_report, laid out as it lays it out, with the support always a whole number: sklearn
    printed it as 0.0 and 2.0 where every prediction was wrong (evaluate on a subset of the classes)."""
    precision, recall, f1, support = precision_recall_fscore_support(truth, pred, labels=shown, zero_division=0)
    width = max(len(name) for name in [*names, "weighted avg"])

    def row(name, p, r, f, n):
        return f"{name:>{width}} " + "".join(f" {float(v):>9.2f}" for v in (p, r, f)) + f" {int(n):>9}\n"

    total = int(support.sum())
    weights = support if total else None
    return (f"{'':>{width}} " + "".join(f" {h:>9}" for h in ("precision", "recall", "f1-score", "support")) + "\n\n"
            + "".join(row(name, *values) for name, *values in zip(names, precision, recall, f1, support)) + "\n"
            + f"{'accuracy':>{width}}  {'':>9} {'':>9} {float(np.mean(truth == pred)):>9.2f} {total:>9}\n"
            + row("macro avg", precision.mean(), recall.mean(), f1.mean(), total)
            + row("weighted avg", *(np.average(v, weights=weights) for v in (precision, recall, f1)), total))


def _score_dataset(predictor: Predictor, items, config: EvaluateConfig,
                   decode_fn=decode_request) -> tuple[np.ndarray, list[str | None]]:
    """(N, C) probabilities averaged over the views, and an error text (None when fine) per item.

    Views are decoded by ``config.workers`` decode processes (vidlstm.batch.pool.DecodePool), so a decoder
    that crashes or hangs costs its file, as in predict; ``workers=0`` decodes in this process. A video's views
    come from one request (one read, data.clips.load_views) and are scored as predict scores them
    (``Predictor.score_views``); ``config.batch_size`` counts clips per forward pass.
    """
    cfg = predictor.config
    requests = [DecodeRequest(i, str(item.path), cfg.num_frames, cfg.image_size, threads=1 if config.workers else 0,
                              keyframe_snap=cfg.snaps_to_keyframes, stabilize=predictor.decoders_stabilize(),
                              views=_views(config, predictor))
                for i, item in enumerate(items)]
    probs = np.zeros((len(items), len(predictor.labels)), dtype=np.float64)
    errors: list[str | None] = [None] * len(items)
    delivered: set[int] = set()
    batch: list[tuple[int, DecodedClip]] = []

    def flush():
        views = [decoded.views or [decoded.clip.frames] for _, decoded in batch]
        scores = predictor.score_views(views, stabilized=all(decoded.stabilized for _, decoded in batch))
        for (owner, _), clip_scores in zip(batch, scores):
            probs[owner] = clip_scores.probs
        batch.clear()

    source = DecodePool(config.workers, config.timeout, decode_fn) if config.workers else InlineDecoder(decode_fn)
    bar = progress_bar(config.progress, total=len(items), desc="evaluating", unit="video", dynamic_ncols=True)
    with source, bar:
        source.submit(requests)
        while source.unfinished:
            for event in source.poll(block=True):
                owner = event.request.task_id
                if isinstance(event, Piece) and isinstance(event.value, DecodedClip):
                    delivered.add(owner)
                    batch.append((owner, event.value))  # (T, H, W, 3) uint8 frames, one clip per view
                    continue
                if owner not in delivered:  # one broken file costs only itself
                    errors[owner] = errors[owner] or (event.reason if isinstance(event, Failed)
                                                      else "the decoder returned no frames")
                bar.update(1)
            if sum(len(decoded.views or [None]) for _, decoded in batch) >= config.batch_size:
                flush()
    if batch:
        flush()
    return probs, errors


def _views(config: EvaluateConfig, predictor: Predictor) -> int:
    """Clips scored per video: ``--clips``, else the model's own test views."""
    return config.clips or predictor.config.test_views


def _write_predictions(path: Path, dataset, targets, probs, errors, labels, top_k: int) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(PREDICTION_COLUMNS)
        for i, item in enumerate(dataset.items):
            if errors[i] is not None:
                writer.writerow([dataset.relative_name(item), item.label, "", "", "", "[]", "error", errors[i]])
                continue
            order = np.argsort(-probs[i], kind="stable")[:top_k]
            # As predict's CSV: a JSON list, which any label (a space, a colon) leaves unambiguous.
            top = json.dumps([{"label": labels[j], "score": round(float(probs[i, j]), 6)} for j in order],
                             ensure_ascii=False)
            pred = int(order[0])
            writer.writerow([dataset.relative_name(item), item.label, labels[pred], f"{probs[i, pred]:.6f}",
                             int(pred == targets[i]), top, "ok", ""])
