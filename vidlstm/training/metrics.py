"""Classification metrics from logits (scikit-learn where it has them): accuracy, top-k, class accuracy, ECE."""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, bins: int = 10) -> float:
    """ECE: |accuracy - confidence| averaged over equal-width confidence bins, weighted by bin size."""
    if len(targets) == 0:
        return float("nan")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == targets
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def classification_metrics(probs: np.ndarray, targets: np.ndarray, num_classes: int, top_k: int = 5) -> dict:
    """accuracy, top-k accuracy (k capped at the class count), mean class accuracy and ECE of (N, C) probs."""
    if len(targets) == 0:
        return {"n": 0}
    preds = probs.argmax(axis=1)
    k = min(top_k, num_classes)
    present = np.unique(targets)
    with warnings.catch_warnings():  # predicting a class absent from the targets is normal on small sets
        warnings.simplefilter("ignore", UserWarning)
        balanced = float(balanced_accuracy_score(targets, preds)) if len(present) > 1 else float(accuracy_score(targets, preds))
    return {
        "n": int(len(targets)),
        "top_k": k,
        "accuracy": float(accuracy_score(targets, preds)),
        f"top{k}_accuracy": float((np.argsort(-probs, axis=1)[:, :k] == targets[:, None]).any(axis=1).mean()),
        # Mean over the classes present in the targets: a class with no clips has no accuracy.
        "mean_class_accuracy": balanced,
        "ece": expected_calibration_error(probs, targets),
    }
