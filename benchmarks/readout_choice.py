"""Which read-out `auto` should keep: the out-of-fold choice between the frames' and the motion read-out, against
each alone, their averaged probabilities, and one read-out of both descriptions side by side.

The product's own parts on `bench_accuracy.py`'s outer folds (group-aware where the data names groups): the frozen
EfficientNet-Lite0 features of 16 segment-centre frames at 224 px and of their differences
(`pretrained_probe.frame_features`), each clip described by `ClipStatistics.raw` (mean, spread, mean change),
standardised on the training fold, fitted by `training.readout.fit_logistic` (C = 0.01, balanced class weights),
and `auto`'s estimate `out_of_fold_logits` (5 inner folds, averaged over ``--repeats`` fold seeds) to choose.
Features are extracted once per data set (~3 min each on 2 cores; ``--features DIR`` keeps them between runs).

    .venv/bin/python benchmarks/readout_choice.py                                  # fight and pushfit, 5 fold seeds
    .venv/bin/python benchmarks/readout_choice.py --datasets fight --seeds 3 --repeats 1 5
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_accuracy import dataset_source  # noqa: E402
from pretrained_probe import frame_features  # noqa: E402
from vidlstm.data.datasets import discover_dataset  # noqa: E402
from vidlstm.data.splits import cross_validation_folds  # noqa: E402
from vidlstm.models import get_backbone  # noqa: E402
from vidlstm.models.temporal import ClipStatistics  # noqa: E402
from vidlstm.training.readout import READOUT_C, fit_logistic, out_of_fold_logits  # noqa: E402

SIZE = 224


def statistics(feats: np.ndarray) -> np.ndarray:
    """(N, T, D) features -> (N, 3D) float64 clip statistics (unstandardised)."""
    f = torch.from_numpy(feats)
    return ClipStatistics.raw(f, torch.ones(f.shape[:2], dtype=torch.bool)).numpy().astype(np.float64)


def fitted(x: np.ndarray, y: np.ndarray, classes: int, c: float = READOUT_C, floor: float = 0.0):
    """A read-out fitted on rows ``x`` (standardised on them; ``floor``: no column scaled by less than that share of
    the median column's spread, as ``ClipStatistics.fit``): a function from rows to logits."""
    mean, std = x.mean(0), x.std(0)
    std = np.maximum(std, floor * np.median(std)) + 1e-6
    weight, bias = fit_logistic(torch.from_numpy((x - mean) / std), torch.from_numpy(y), classes, c, balanced=True)
    return lambda rows: (torch.from_numpy((rows - mean) / std).float() @ weight.T + bias).numpy()


def fit_logits(x: np.ndarray, y: np.ndarray, classes: int, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Logits of ``test`` from a read-out fitted on ``train`` (standardised on ``train``)."""
    return fitted(x[train], y[train], classes)(x[test])


def estimate(x: np.ndarray, y: np.ndarray, groups, classes: int, train: np.ndarray, repeats: int) -> float:
    """`auto`'s out-of-fold accuracy of a read-out on the training fold, averaged over ``repeats`` fold seeds."""
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    xs, g = (x[train] - mean) / std, None if groups is None else groups[train]
    scores = []
    for seed in range(repeats):
        logits, _ = out_of_fold_logits(xs, y[train], np.arange(len(train)), g, classes, seed=seed)
        scores.append(float((logits.argmax(1) == y[train]).mean()))
    return float(np.mean(scores))


def features(name: str, work: Path, backbone) -> tuple[object, np.ndarray, np.ndarray]:
    dataset = discover_dataset(dataset_source(name, work, 0))
    cached = work / f"{name}-lite0-{SIZE}.npz"
    if cached.is_file():
        saved = np.load(cached)
        return dataset, saved["frames"], saved["differences"]
    paths = [item.path for item in dataset.items]
    frames = frame_features(backbone, paths, SIZE)
    differences = frame_features(backbone, paths, SIZE, differences=True)
    np.savez(cached, frames=frames, differences=differences)
    return dataset, frames, differences


def each_data_set(names: list[str], keep: Path | None, prefix: str):
    """(name, feature folder, backbone, dataset, frames, differences) per data set, the features extracted once
    (kept in ``keep`` where given, else in a temporary folder for the loop's life)."""
    backbone = get_backbone("efficientnet_lite0", pretrained=True)
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name in names:
            yield (name, work, backbone, *features(name, work, backbone))


def read_out_parser(description: str) -> argparse.ArgumentParser:
    """The options every read-out benchmark takes: data sets, outer folds and their seeds, a feature folder, threads."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["fight", "pushfit"])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5, help="outer fold seeds 0..N-1")
    parser.add_argument("--features", type=Path, help="keep the extracted features in this folder")
    parser.add_argument("--threads", type=int, default=2)
    return parser


def main(argv=None) -> int:
    parser = read_out_parser(__doc__)
    parser.add_argument("--repeats", type=int, nargs="+", default=[1], help="inner fold seeds averaged per estimate")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lines = []
    for name, _, _, dataset, frames, differences in each_data_set(args.datasets, args.features,
                                                                  "vidlstm-readout-choice-"):
        y, groups, classes = dataset.targets(), dataset.groups(), len(dataset.labels)
        described = {"frames": statistics(frames), "motion": statistics(differences)}
        both = statistics(np.concatenate([frames, differences], 2))
        rows = {"frames alone": [], "motion alone": [], **{f"choice, {r} repeat(s)": [] for r in args.repeats},
                "probabilities averaged": [], "side by side": []}
        for seed in range(args.seeds):
            right = dict.fromkeys(rows, 0)
            for train, test in cross_validation_folds(dataset, args.folds, seed=seed):
                held = {m: fit_logits(x, y, classes, train, test) for m, x in described.items()}
                right["frames alone"] += int((held["frames"].argmax(1) == y[test]).sum())
                right["motion alone"] += int((held["motion"].argmax(1) == y[test]).sum())
                averaged = sum(torch.softmax(torch.from_numpy(h), 1).numpy() for h in held.values())
                right["probabilities averaged"] += int((averaged.argmax(1) == y[test]).sum())
                right["side by side"] += int((fit_logits(both, y, classes, train, test).argmax(1) == y[test]).sum())
                for r in args.repeats:
                    est = {m: estimate(x, y, groups, classes, train, r) for m, x in described.items()}
                    kept = max(described, key=lambda m: est[m])  # the frames on equal estimates, as auto
                    right[f"choice, {r} repeat(s)"] += int((held[kept].argmax(1) == y[test]).sum())
            for row in rows:
                rows[row].append(right[row] / len(y))
            print(f"{name} seed {seed}: " + ", ".join(f"{row} {v[-1]:.3f}" for row, v in rows.items()), flush=True)
        for row, scores in rows.items():
            lines.append(f"| {name} | {row} | {' '.join(f'{s:.3f}' for s in scores)} | {np.mean(scores):.3f} |")
    print(f"\n{args.folds}-fold cross-validation, fold seeds 0-{args.seeds - 1}, Lite0 at {SIZE} px, C = {READOUT_C}:\n")
    print("| data set | read-out | per fold seed | mean |\n|---|---|---|---|")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
