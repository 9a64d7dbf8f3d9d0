"""Other forms of the read-out on the same frozen features: normalised, per-frame, with extremes, non-linear.

The product's read-out (`ClipStatistics.raw` of the frames' and the differences' EfficientNet-Lite0 features side by
side, standardised, `training.readout.fit_logistic` with balanced weights) against:

- **spreads floored**: no statistic scaled by less than ``SCALE_FLOOR`` of the median one's spread;
- **signed square root** of every feature before the statistics (the power normalisation of pooled CNN features);
- **L2-normalised** per-frame features before the statistics;
- **a per-frame read-out**: one logistic regression on every training clip's frames (each frame carries its clip's
  label, 16x the rows), a clip's score the mean of its frames' log-probabilities; at C = 0.01 and 0.001;
- the read-out before session 26 and the per-frame one, their probabilities averaged;
- the statistics plus each feature's maximum and minimum over the clip;
- non-linear read-outs of the same standardised statistics: an RBF support-vector machine (C = 10, gamma 1 / the
  statistics' count, Platt probabilities) and 5 nearest neighbours by cosine similarity.

Scored on `bench_accuracy.py`'s outer folds (group-aware where the data names groups), fold seeds 0..N-1; the
features are `readout_choice.py`'s (``--features DIR`` keeps them between runs).

    .venv/bin/python benchmarks/readout_forms.py --features /tmp/vidlstm-features
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from readout_choice import SIZE, each_data_set, fitted, read_out_parser, statistics  # noqa: E402
from vidlstm.data.splits import cross_validation_folds  # noqa: E402
from vidlstm.models.temporal import SCALE_FLOOR  # noqa: E402
from vidlstm.training.readout import READOUT_C  # noqa: E402


def log_probabilities(x_train, y_train, x_test, classes: int, c: float = READOUT_C,
                      floor: float = 0.0) -> np.ndarray:
    """Log-probabilities of ``x_test`` from `readout_choice.fitted`'s read-out of ``x_train``."""
    logits = fitted(x_train, y_train, classes, c, floor)(x_test)
    return torch.log_softmax(torch.from_numpy(logits), 1).numpy()


def non_linear(x_train, y_train, x_test, make, floor: float = SCALE_FLOOR) -> np.ndarray:
    """Log-probabilities of ``x_test`` from the sklearn classifier ``make()`` fitted on ``x_train``, both standardised
    as ``log_probabilities`` does."""
    mean, std = x_train.mean(0), x_train.std(0)
    std = np.maximum(std, floor * np.median(std)) + 1e-6
    fitted = make().fit((x_train - mean) / std, y_train)
    return np.log(np.clip(fitted.predict_proba((x_test - mean) / std), 1e-9, 1.0))


def forms(frames: np.ndarray, differences: np.ndarray, y: np.ndarray, classes: int) -> dict:
    """Each read-out as a function (train indices, test indices) -> (len(test), classes) log-probabilities."""
    def side_by_side(transform):
        return np.concatenate([transform(frames), transform(differences)], 2)

    def on_clips(x, floor=0.0):
        return lambda train, test: log_probabilities(x[train], y[train], x[test], classes, floor=floor)

    def per_frame(c):
        stacked = side_by_side(lambda a: a).astype(np.float64)
        n, steps, dim = stacked.shape

        def fit(train, test):
            rows = log_probabilities(stacked[train].reshape(-1, dim), np.repeat(y[train], steps),
                                     stacked[test].reshape(-1, dim), classes, c)
            return rows.reshape(len(test), steps, classes).mean(1)
        return fit

    today = on_clips(statistics(side_by_side(lambda a: a)))
    stats = statistics(side_by_side(lambda a: a))

    def by(make):
        return lambda train, test: non_linear(stats[train], y[train], stats[test], make)
    extremes = np.concatenate([stats, side_by_side(lambda a: a).max(1), side_by_side(lambda a: a).min(1)], 1)
    frame_read_out = per_frame(READOUT_C)
    return {
        "spreads as they are (before session 26)": today,
        f"spreads floored at {SCALE_FLOOR:g} x the median (ClipStatistics since session 26)": on_clips(
            statistics(side_by_side(lambda a: a)), SCALE_FLOOR),
        "signed square root first": on_clips(statistics(side_by_side(lambda a: np.sign(a) * np.sqrt(np.abs(a))))),
        "L2-normalised frames first": on_clips(statistics(side_by_side(
            lambda a: a / (np.linalg.norm(a, axis=-1, keepdims=True) + 1e-6)))),
        f"per-frame read-out, C = {READOUT_C:g}": frame_read_out,
        "per-frame read-out, C = 0.001": per_frame(0.001),
        "spreads as they are + per-frame, averaged": lambda train, test: np.log(
            (np.exp(today(train, test)) + np.exp(frame_read_out(train, test))) / 2),
        "each feature's maximum and minimum added, floored": on_clips(extremes.astype(np.float64), SCALE_FLOOR),
        "RBF support-vector machine, C = 10": by(lambda: SVC(C=10.0, gamma=1.0 / stats.shape[1], probability=True,
                                                             class_weight="balanced", random_state=0)),
        "5 nearest neighbours, cosine": by(lambda: KNeighborsClassifier(5, metric="cosine", weights="distance")),
    }


def main(argv=None) -> int:
    args = read_out_parser(__doc__).parse_args(argv)
    torch.set_num_threads(args.threads)
    lines = []
    for name, _, _, dataset, frames, differences in each_data_set(args.datasets, args.features,
                                                                  "vidlstm-readout-forms-"):
        y, classes = dataset.targets(), len(dataset.labels)
        folds = [cross_validation_folds(dataset, args.folds, seed=seed) for seed in range(args.seeds)]
        for row, fit in forms(frames, differences, y, classes).items():
            scores = [sum(int((fit(train, test).argmax(1) == y[test]).sum()) for train, test in split) / len(y)
                      for split in folds]
            lines.append(f"| {name} | {row} | {' '.join(f'{s:.3f}' for s in scores)} | {np.mean(scores):.3f} |")
            print(lines[-1], flush=True)
    print(f"\n{args.folds}-fold cross-validation, fold seeds 0-{args.seeds - 1}, Lite0 at {SIZE} px:\n")
    print("| data set | read-out | per fold seed | mean |\n|---|---|---|---|")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
