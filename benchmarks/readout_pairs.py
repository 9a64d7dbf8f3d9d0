"""Does the read-out see fast motion better when each sampled frame comes with the frame LAG source frames later?

Today's read-out (`auto`'s pretrained candidate, input mode `rgb,diff`) sees 16 segment centres and the differences
of consecutive centres: on a 5 s clip at 25 fps those span ~8 source frames, a third of a second. A pair sampler
takes each centre and the frame ``--lag`` source frames later (32 steps); the same read-out over those 32 steps
then sees short differences (a pair) and long ones (one pair to the next) side by side. The rows:

- today: 16 centres, frames + differences (`readout_choice.py`'s features);
- pairs: the 32 steps, frames + differences, one read-out (what a pair sampler would give the product, as is);
- short differences alone: the odd steps' differences (each centre to its partner);
- today + short, averaged: today's read-out and one of the short differences, probabilities averaged;
- the average where it lowers the out-of-fold log-loss on the training fold (``auto``'s estimate,
  `out_of_fold_logits`, 3 inner seeds), else today's: a choice by data.

All on `bench_accuracy.py`'s outer folds (group-aware where the data names groups), read out as the product does
(`ClipStatistics.raw`, standardised on the training fold, `fit_logistic`, C = 0.01, balanced). With
``--across-recordings`` (pushfit) also on groups inferred from look-alike clips (distance 0.5, 3 seeds). The last
table is the cost of each clip's features (decode + Lite0 at 224 px, 2 threads) on the first ``--timed`` clips of
each set, both ways in the same run. Pair features take ~6 min per data set on 2 cores (``--features DIR`` keeps them).

    .venv/bin/python benchmarks/readout_pairs.py --features /tmp/vidlstm-features --across-recordings pushfit
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from pretrained_probe import frame_features, look_alike_groups  # noqa: E402
from readout_choice import SIZE, each_data_set, fit_logits, read_out_parser, statistics  # noqa: E402
from vidlstm.data.splits import cross_validation_folds  # noqa: E402
from vidlstm.training.readout import out_of_fold_logits  # noqa: E402

INNER_SEEDS = 3
ROWS = ("today: 16 centres, frames + differences", "pairs: 32 steps, frames + differences",
        "short differences alone", "today + short, averaged", "  the average where out-of-fold log-loss says")


def probabilities(x: np.ndarray, y: np.ndarray, classes: int, train, test) -> np.ndarray:
    """(len(test), K) probabilities of `readout_choice.fit_logits`'s read-out fitted on ``train``."""
    return torch.softmax(torch.from_numpy(fit_logits(x, y, classes, train, test)), 1).numpy()


def out_of_fold_probabilities(x: np.ndarray, y: np.ndarray, groups, classes: int, train) -> list[np.ndarray]:
    """Per inner seed (INNER_SEEDS), `auto`'s out-of-fold probabilities of the read-out of ``x`` on ``train``."""
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    found = []
    for seed in range(INNER_SEEDS):
        logits, _ = out_of_fold_logits((x[train] - mean) / std, y[train], np.arange(len(train)),
                                       None if groups is None else groups[train], classes, seed=seed)
        found.append(torch.softmax(torch.from_numpy(logits), 1).numpy())
    return found


def log_loss(per_seed: list[np.ndarray], y: np.ndarray) -> float:
    """Mean over inner seeds of the log-loss of each seed's (N, K) probabilities against ``y``."""
    return float(np.mean([-np.log(p[np.arange(len(y)), y] + 1e-12).mean() for p in per_seed]))


def score(today: np.ndarray, pairs: np.ndarray, short: np.ndarray, y: np.ndarray, groups, classes: int,
          folds) -> dict[str, float]:
    """Held-out accuracy of each row over ``folds``."""
    right = dict.fromkeys(ROWS, 0)
    for train, test in folds:
        train, test = np.asarray(train), np.asarray(test)
        p_today = probabilities(today, y, classes, train, test)
        p_short = probabilities(short, y, classes, train, test)
        averaged = p_today + p_short
        oof_today = out_of_fold_probabilities(today, y, groups, classes, train)
        oof_short = out_of_fold_probabilities(short, y, groups, classes, train)
        oof_averaged = [(a + b) / 2 for a, b in zip(oof_today, oof_short)]
        chosen = averaged if log_loss(oof_averaged, y[train]) < log_loss(oof_today, y[train]) else p_today
        for row, p in zip(ROWS, (p_today, probabilities(pairs, y, classes, train, test), p_short, averaged, chosen)):
            right[row] += int((p.argmax(1) == y[test]).sum())
    return {row: n / len(y) for row, n in right.items()}


def main(argv=None) -> int:
    parser = read_out_parser(__doc__)
    parser.add_argument("--lag", type=int, default=2, help="source frames from each centre to its partner")
    parser.add_argument("--across-recordings", nargs="*", default=[], metavar="DATASET",
                        help="also score these sets on groups inferred from look-alike clips (3 seeds)")
    parser.add_argument("--timed", type=int, default=20, help="clips per set whose feature cost is timed")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from sklearn.model_selection import StratifiedGroupKFold

    lines, costs = [], []
    for name, work, backbone, dataset, frames, differences in each_data_set(args.datasets, args.features,
                                                                            "vidlstm-readout-pairs-"):
        paths = [item.path for item in dataset.items]
        cached = work / f"{name}-lite0-{SIZE}-pairs{args.lag}.npz"
        if not cached.is_file():
            np.savez(cached, frames=frame_features(backbone, paths, SIZE, pair_lag=args.lag),
                     differences=frame_features(backbone, paths, SIZE, differences=True, pair_lag=args.lag))
        saved = np.load(cached)
        today = statistics(np.concatenate([frames, differences], 2))
        pairs = statistics(np.concatenate([saved["frames"], saved["differences"]], 2))
        short = statistics(saved["differences"][:, 1::2])
        y, classes = dataset.targets(), len(dataset.labels)
        groups = np.asarray(dataset.groups()) if dataset.has_groups else None
        splits = {"outer folds": (groups, [cross_validation_folds(dataset, args.folds, seed=s)
                                           for s in range(args.seeds)])}
        if name in args.across_recordings:
            inferred = look_alike_groups(frames, 0.5)
            splits[f"across recordings ({len(set(inferred))} groups)"] = (inferred, [
                list(StratifiedGroupKFold(args.folds, shuffle=True, random_state=s).split(today, y, inferred))
                for s in range(3)])
        for split, (split_groups, fold_sets) in splits.items():
            results = [score(today, pairs, short, y, split_groups, classes, folds) for folds in fold_sets]
            for row in ROWS:
                scores = [r[row] for r in results]
                lines.append(f"| {name} | {split} | {row} | {' '.join(f'{s:.3f}' for s in scores)} "
                             f"| {np.mean(scores):.3f} |")
            print("\n".join(lines[-len(ROWS):]), flush=True)
        timed = paths[:args.timed]
        seconds = []
        for lag in (0, args.lag):
            start = time.perf_counter()
            frame_features(backbone, timed, SIZE, pair_lag=lag)
            frame_features(backbone, timed, SIZE, differences=True, pair_lag=lag)
            seconds.append((time.perf_counter() - start) / len(timed))
        costs.append(f"| {name} | {len(timed)} | {seconds[0]:.2f} | {seconds[1]:.2f} | {seconds[1] / seconds[0]:.2f} |")
    print(f"\nLite0 at {SIZE} px; pairs: each centre and the frame {args.lag} source frames later:\n")
    print("| data set | folds | read-out | per fold seed | mean |\n|---|---|---|---|---|")
    print("\n".join(lines))
    print("\nFeature cost per clip (decode + frames and differences through Lite0; the probe decodes each stream "
          "on its own):\n")
    print("| data set | clips timed | 16 centres, s/clip | pairs, s/clip | ratio |\n|---|---:|---:|---:|---:|")
    print("\n".join(costs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
