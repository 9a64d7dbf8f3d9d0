"""Does the read-out generalise better when it also trains on augmented copies of each training clip?

Each clip's 16 segment-centre frames are decoded once at 288 px; each copy is one random crop (45-100% of the area,
aspect 3:4-4:3) resized to 224 px, mirrored half the time, brightness and contrast x0.75-1.25 (one draw per copy,
the same for all 16 frames), then the frozen EfficientNet-Lite0 features of the frames and of their differences, as
input mode `rgb,diff`. The read-out is the product's (`ClipStatistics.raw` of both streams side by side, standardised on
the training rows, `training.readout.fit_logistic` with balanced weights), on `bench_accuracy.py`'s outer folds
(group-aware where the data names groups). With ``--across-recordings`` (pushfit, which names none) also on groups
inferred from look-alike clips (average-linkage clusters of the clips' centred Lite0 means, cosine distance 0.5 and
0.7). Copies take ~7 min per data set on 2 cores (``--features DIR`` keeps them, and the clips' own features of
`readout_choice.py`, between runs).

    .venv/bin/python benchmarks/readout_augment.py --features /tmp/vidlstm-features --across-recordings pushfit
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from pretrained_probe import FRAMES, look_alike_groups  # noqa: E402
from readout_choice import SIZE, each_data_set, read_out_parser, statistics  # noqa: E402
from readout_choice import fitted as fitted_logits  # noqa: E402
from vidlstm.data.splits import cross_validation_folds  # noqa: E402
from vidlstm.io import probe, read_frames  # noqa: E402
from vidlstm.io.sampling import sample_segment_indices  # noqa: E402
from vidlstm.training.readout import READOUT_C  # noqa: E402

DECODE = 288


def augmented_features(backbone, paths: list, copies: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, copies, T, 1280) features of the frames and of their differences, for ``copies`` random views per clip."""
    mean, std = torch.tensor(backbone.mean)[:, None, None], torch.tensor(backbone.std)[:, None, None]
    module, rng = backbone.module.eval(), np.random.default_rng(seed)
    frames_out, differences_out = [], []
    for path in paths:
        info = probe(path)
        raw = read_frames(path, sample_segment_indices(info.num_frames, FRAMES), size=(DECODE, DECODE), info=info,
                          threads=1).frames
        clip = torch.from_numpy(raw).permute(0, 3, 1, 2).float() / 255  # (T, 3, DECODE, DECODE)
        per_copy = []
        for _ in range(copies):
            area, ratio = rng.uniform(0.45, 1.0), np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
            h = min(DECODE, int(round(DECODE * np.sqrt(area / ratio))))
            w = min(DECODE, int(round(DECODE * np.sqrt(area * ratio))))
            top, left = rng.integers(0, DECODE - h + 1), rng.integers(0, DECODE - w + 1)
            x = F.interpolate(clip[:, :, top:top + h, left:left + w], size=(SIZE, SIZE), mode="bilinear",
                              align_corners=False, antialias=True)
            if rng.random() < 0.5:
                x = x.flip(3)
            brightness, contrast = rng.uniform(0.75, 1.25, size=2)
            level = x.mean()
            x = (((x - level) * contrast + level * brightness).clamp(0, 1) - mean) / std
            x = torch.cat([x, torch.zeros_like(x[:1]), x[1:] - x[:-1]])  # frames, then differences (first zero)
            with torch.inference_mode():
                per_copy.append(module(x.contiguous(memory_format=torch.channels_last)).numpy())
        frames_out.append(np.stack([f[:FRAMES] for f in per_copy]))
        differences_out.append(np.stack([f[FRAMES:] for f in per_copy]))
    return np.stack(frames_out), np.stack(differences_out)


def fitted(x: np.ndarray, y: np.ndarray, classes: int, c: float):
    """A read-out fitted on rows ``x`` (`readout_choice.fitted`): a function from rows to probabilities."""
    logits = fitted_logits(x, y, classes, c)
    return lambda rows: torch.softmax(torch.from_numpy(logits(rows)), 1).numpy()


def score(own: np.ndarray, copies: np.ndarray, y: np.ndarray, classes: int, folds, c: float) -> dict[str, float]:
    """Held-out accuracy of each way to use the copies over ``folds``."""
    k, dim = copies.shape[1], own.shape[1]
    right = dict.fromkeys(["own description (today)", "+ copies as training rows", "  test averaged over copies",
                           "copies alone"], 0)
    for train, test in folds:
        right["own description (today)"] += int((fitted(own[train], y[train], classes, c)(own[test]).argmax(1)
                                                 == y[test]).sum())
        both = fitted(np.concatenate([own[train], copies[train].reshape(-1, dim)]),
                      np.concatenate([y[train], np.repeat(y[train], k)]), classes, c)
        right["+ copies as training rows"] += int((both(own[test]).argmax(1) == y[test]).sum())
        averaged = both(own[test]) + sum(both(copies[test, i]) for i in range(k))
        right["  test averaged over copies"] += int((averaged.argmax(1) == y[test]).sum())
        alone = fitted(copies[train].reshape(-1, dim), np.repeat(y[train], k), classes, c)
        right["copies alone"] += int((alone(own[test]).argmax(1) == y[test]).sum())
    return {row: n / len(y) for row, n in right.items()}


def main(argv=None) -> int:
    parser = read_out_parser(__doc__)
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--c", type=float, nargs="+", default=[READOUT_C])
    parser.add_argument("--across-recordings", nargs="*", default=[], metavar="DATASET",
                        help="also score these sets on groups inferred from look-alike clips (3 seeds)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from sklearn.model_selection import StratifiedGroupKFold

    lines = []
    for name, work, backbone, dataset, frames, differences in each_data_set(args.datasets, args.features,
                                                                            "vidlstm-readout-augment-"):
        cached = work / f"{name}-aug{args.copies}.npz"
        if not cached.is_file():
            aug_frames, aug_differences = augmented_features(backbone, [it.path for it in dataset.items],
                                                             args.copies)
            np.savez(cached, frames=aug_frames, differences=aug_differences)
        saved = np.load(cached)
        own = statistics(np.concatenate([frames, differences], 2))
        copies = np.stack([statistics(np.concatenate([saved["frames"][:, i], saved["differences"][:, i]], 2))
                           for i in range(args.copies)], 1)
        y, classes = dataset.targets(), len(dataset.labels)
        splits = {"outer folds": [cross_validation_folds(dataset, args.folds, seed=s) for s in range(args.seeds)]}
        if name in args.across_recordings:
            for threshold in (0.5, 0.7):
                groups = look_alike_groups(frames, threshold)
                splits[f"across recordings ({len(set(groups))} groups)"] = [
                    list(StratifiedGroupKFold(args.folds, shuffle=True, random_state=s).split(own, y, groups))
                    for s in range(3)]
        for c in args.c:
            for split, fold_sets in splits.items():
                results = [score(own, copies, y, classes, folds, c) for folds in fold_sets]
                for row in results[0]:
                    scores = [r[row] for r in results]
                    lines.append(f"| {name} | {split} | {c:g} | {row} | {' '.join(f'{s:.3f}' for s in scores)} "
                                 f"| {np.mean(scores):.3f} |")
                print("\n".join(lines[-len(results[0]):]), flush=True)
    print(f"\n{args.copies} augmented copies per clip, Lite0 at {SIZE} px, frames and differences side by side:\n")
    print("| data set | folds | C | read-out | per fold seed | mean |\n|---|---|---|---|---|---|")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
