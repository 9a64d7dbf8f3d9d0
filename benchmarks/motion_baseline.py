"""What a model without learnt features reaches on the real sets: frame-difference statistics + scikit-learn.

A reference for `bench_accuracy.py`, on the same group-aware folds (`cross_validation_folds`, same seed): each
clip gives 32 segment-sampled grey frames at 64 px; the absolute differences of consecutive frames give, per
frame pair, their mean, spread, 90th percentile, the share of pixels that changed by more than 20 grey levels
and the mean change in each cell of a 4x4 grid; a clip is described by those over time (mean, spread,
maximum, mean change from pair to pair) plus its mean colour and colour spread (86 numbers). Three classifiers
are cross-validated on them. If this scores like the CNN-LSTM, what limits a set is not how the network
reads motion.

    .venv/bin/python benchmarks/motion_baseline.py                  # pushfit and fight, 3 folds (~90 s)
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_accuracy import dataset_source  # noqa: E402
from vidlstm.data.datasets import discover_dataset  # noqa: E402
from vidlstm.data.splits import cross_validation_folds  # noqa: E402
from vidlstm.io import probe, read_frames  # noqa: E402
from vidlstm.io.sampling import sample_segment_indices  # noqa: E402

FRAMES, SIZE, GRID = 32, 64, 4


def clip_features(path) -> np.ndarray:
    """(86,) float: frame-difference statistics over time, and colour."""
    info = probe(path)
    frames = read_frames(path, sample_segment_indices(info.num_frames, FRAMES), size=(SIZE, SIZE), info=info,
                         threads=1).frames.astype(np.float32)  # (T, H, W, 3)
    change = np.abs(np.diff(frames.mean(-1), axis=0))  # (T-1, H, W)
    pairs = len(change)
    cell = SIZE // GRID
    grid = change.reshape(pairs, GRID, cell, GRID, cell).mean((2, 4)).reshape(pairs, GRID * GRID)
    flat = change.reshape(pairs, -1)
    overall = np.stack([flat.mean(1), flat.std(1), np.percentile(flat, 90, axis=1), (flat > 20).mean(1)], 1)
    per_pair = np.concatenate([overall, grid], 1)  # (T-1, 20)
    over_time = [per_pair.mean(0), per_pair.std(0), per_pair.max(0), np.abs(np.diff(per_pair, axis=0)).mean(0)]
    return np.concatenate(over_time + [frames.mean((0, 1, 2)), frames.std((0, 1, 2))])


def classifiers() -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "logistic regression (C=1, standardised)": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)),
        "random forest (500 trees)": lambda: RandomForestClassifier(500, random_state=0),
        "gradient boosting (200 rounds, lr 0.05)": lambda: HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05,
                                                                                           random_state=0),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["pushfit", "fight"])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="seed of the folds (bench_accuracy's --seed)")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vidlstm-motion-baseline-") as tmp:
        for name in args.datasets:
            dataset = discover_dataset(dataset_source(name, Path(tmp), args.seed))
            folds = cross_validation_folds(dataset, args.folds, seed=args.seed)
            started = time.perf_counter()
            features = np.stack([clip_features(item.path) for item in dataset.items])  # (N, 86)
            seconds = time.perf_counter() - started
            targets = dataset.targets()
            for label, make in classifiers().items():
                scores = [float((make().fit(features[train], targets[train]).predict(features[test]) == targets[test]).mean())
                          for train, test in folds]
                rows.append((name, label, scores, seconds))
    print(f"{args.folds}-fold cross-validation (bench_accuracy's folds, seed {args.seed}), {FRAMES} frames at {SIZE} px:\n")
    print("| data set | classifier | accuracy mean ± std | per fold | feature s (all clips) |")
    print("|---|---|---|---|---:|")
    for name, label, scores, seconds in rows:
        print(f"| {name} | {label} | {np.mean(scores):.3f} ± {np.std(scores):.3f} | "
              f"{' '.join(f'{s:.2f}' for s in scores)} | {seconds:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
