"""Prediction records (one per input file, JSON-serialisable): ok records from scores, error records from failures."""
from __future__ import annotations

import numpy as np

from vidlstm.errors import failure_reason


def top_k_labels(probs: np.ndarray, labels: list[str], k: int) -> list[dict]:
    """``[{"label", "score"}, ...]`` of the ``k`` best classes (at least one), highest first; ties keep class order."""
    order = np.argsort(-probs, kind="stable")[: max(1, k)]
    return [{"label": labels[i], "score": round(float(probs[i]), 6)} for i in order]


def build_record(path, *, probs: np.ndarray, labels: list[str], indices: np.ndarray, info, backend: str,
                 top_k: int, seconds: float) -> dict:
    """A record from class probabilities and the frames they came from (a clip or a whole timeline)."""
    if not np.isfinite(probs).all():  # a record's score is always a number JSON can carry
        return error_record(path, "the model gave non-finite scores (NaN or infinity)", seconds)
    top = top_k_labels(probs, labels, top_k)
    fps = info.fps if info.fps and info.fps > 0 else 25.0
    ts = np.asarray(indices, dtype=np.float64) / fps  # seconds of each frame used
    return {
        "path": str(path),
        "status": "ok",
        "label": top[0]["label"],
        "score": top[0]["score"],
        "top_k": top,
        "frames": int(len(indices)),
        "decoder": backend,
        "seconds": round(seconds, 4),
        "duration_covered": round(float(ts[-1] - ts[0]), 3) if len(ts) else 0.0,
        "duration": round(float(info.duration), 3),
    }


def error_record(path, err: BaseException | str, seconds: float) -> dict:
    """The record of a file that could not be classified: the reason, one line."""
    reason = err if isinstance(err, str) else failure_reason(err)
    return {"path": str(path), "status": "error", "label": None, "score": None, "top_k": [],
            "frames": 0, "decoder": None, "seconds": round(seconds, 4), "error": reason}


def in_given_order(records, paths: list[str]):
    """Yield ``records`` in the order of ``paths``, each as soon as the ones before it are out.

    Even one worker can report a file's failure in the same poll as the clip ahead of it, and the engine
    yields failures at once but clips after their forward pass.
    """
    waiting: dict[str, list[dict]] = {}
    next_index = 0
    for record in records:
        waiting.setdefault(record["path"], []).append(record)
        while next_index < len(paths) and waiting.get(paths[next_index]):
            yield waiting[paths[next_index]].pop(0)
            next_index += 1
