"""Training benchmarks: epoch time on cached features vs from video, and k-fold CV accuracy of training setups.

    python benchmarks/bench_train.py                      # ../shared/data/pushfit, 5 folds
    python benchmarks/bench_train.py --folds 3 --epochs 15 --speed-clips 40
    python benchmarks/bench_train.py --skip-cv --speed-backbones vidnet resnet18 --threads 1

Prints two tables (Markdown) and, with --out, writes them to a file. Every setup trains through the
real train stage (vidlstm.stages.train.run) on each fold's training clips (with its own inner
validation split for early stopping and calibration), then is scored on the held-out fold.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vidlstm.data.cache import TensorCache  # noqa: E402
from vidlstm.data.clips import load_clip  # noqa: E402
from vidlstm.data.datasets import LabelledVideos, discover_dataset, write_manifest  # noqa: E402
from vidlstm.data.loaders import CachedViewDataset  # noqa: E402
from vidlstm.data.splits import cross_validation_folds  # noqa: E402
from vidlstm.data.transforms import frames_to_tensor  # noqa: E402
from vidlstm.models import set_backbone_trainable  # noqa: E402
from vidlstm.stages import train  # noqa: E402
from vidlstm.stages.evaluate import EvaluateConfig  # noqa: E402
from vidlstm.stages.evaluate import run as evaluate  # noqa: E402
from vidlstm.training.config import TrainConfig  # noqa: E402
from vidlstm.training.distributed import DistContext  # noqa: E402
from vidlstm.training.loop import InputAdapter, train_one_epoch  # noqa: E402
from vidlstm.training.losses import LRCNLoss  # noqa: E402
from vidlstm.training.model_setup import fresh_model  # noqa: E402
from vidlstm.training.optim import build_optimizer  # noqa: E402
from vidlstm.training.prepare import content_hashes, feature_cache, fill_caches  # noqa: E402
from vidlstm.training.schedule import warmup_cosine_schedule  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "pushfit"


@dataclass
class Setup:
    """One row of the accuracy table: a name and the TrainConfig settings that differ from the defaults."""

    name: str
    settings: dict = field(default_factory=dict)


SETUPS = [
    Setup("frozen random resnet18 (rgb, 112 px)", dict(backbone="resnet18", input_mode="rgb", train_backbone="frozen")),
    Setup("vidnet end to end, rgb only", dict(backbone="vidnet", input_mode="rgb")),
    Setup("vidnet end to end, rgb + frame differences (auto's from-scratch family)", dict(backbone="vidnet")),
]


# --- (a) epoch time: cached features vs decoding every clip every epoch ------------------------------------

def epoch_from_video(model, dataset: LabelledVideos, indices, batch_size: int, rng) -> float:
    """The straightforward frozen-backbone epoch: decode each clip, run the frozen CNN, train the temporal model."""
    loss_fn = LRCNLoss()
    optimizer = build_optimizer(model, 1e-3, 0.05)
    targets = dataset.targets()
    start = time.perf_counter()
    order = rng.permutation(indices)
    model.train()
    for b in range(0, len(order), batch_size):
        batch = order[b:b + batch_size]
        frames = torch.stack([frames_to_tensor(load_clip(dataset.items[i].path, model.config.num_frames,
                                                         model.config.image_size, train=True, rng=rng).frames)
                              for i in batch])  # (B, T, 3, S, S)
        with torch.no_grad():
            feats = model.encode_frames(frames)  # (B, T, D): the frozen backbone
        out = model.forward_features(feats)
        loss = loss_fn(out, torch.as_tensor(targets[batch]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def epoch_from_cache(model, cache: TensorCache, shas, targets, batch_size: int, epochs: int = 3) -> float:
    """Mean seconds of a frozen-backbone epoch that reads cached features (the train stage's own loop)."""
    data = CachedViewDataset(cache, shas, targets, key="features", views=1, train=True)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True)
    optimizer = build_optimizer(model, 1e-3, 0.05)
    scheduler = warmup_cosine_schedule(optimizer, 0, epochs * len(loader))
    net = InputAdapter(model, from_features=True)
    start = time.perf_counter()
    for _ in range(epochs):
        train_one_epoch(net, loader, LRCNLoss(), optimizer, scheduler, DistContext(), progress=False)
    return (time.perf_counter() - start) / epochs


def speed_rows(dataset: LabelledVideos, indices, backbone: str, batch_size: int, work: Path) -> tuple[str, list[str]]:
    """One backbone's rows: a from-video epoch, a cached-feature epoch and the one-off extraction."""
    rng = np.random.default_rng(0)
    d = TrainConfig(data="", out_dir="", backbone=backbone)  # that backbone's training defaults (frames, size)
    model = fresh_model(dataset.labels, seed=0, backbone=d.backbone, input_mode=d.input_mode,
                        num_frames=d.num_frames, image_size=d.image_size)
    set_backbone_trainable(model, "frozen")
    items = [dataset.items[i] for i in indices]
    shas = content_hashes(items, work / "cache")
    cache = feature_cache(work / "cache", model)
    tick = time.perf_counter()
    fill_caches(items, shas, DistContext(), clips=None, encoders=[(cache, model)], num_frames=model.config.num_frames,
                image_size=model.config.image_size, views=1, progress=False)
    extract_s = time.perf_counter() - tick
    video_s = epoch_from_video(model, dataset, indices, batch_size, rng)
    cached_s = epoch_from_cache(model, cache, shas, dataset.targets()[indices], batch_size)
    family = ", auto's from-scratch family" if backbone == "vidnet" else ""
    name = f"{backbone} ({model.config.input_mode}, {model.config.num_frames} frames at {model.config.image_size} px{family})"
    return name, [
        f"| {name} | from video (decode + frozen CNN + LSTM, every epoch) | {video_s:.2f} | 1x |",
        f"| {name} | cached features (vidlstm train --train-backbone frozen) | {cached_s:.4f} | {video_s / cached_s:.0f}x |",
        f"| {name} | one-off feature extraction (vidlstm extract) | {extract_s:.2f} | |",
    ]


def speed_table(dataset: LabelledVideos, clips: int, batch_size: int, work: Path, backbones) -> list[str]:
    rng = np.random.default_rng(0)
    indices = np.sort(rng.choice(len(dataset.items), size=min(clips, len(dataset.items)), replace=False))
    lines = [f"Frozen random-init backbones, {len(indices)} clips, batch {batch_size}, "
             f"{torch.get_num_threads()} threads:", "",
             "| backbone | epoch | seconds | speed-up |", "|---|---|---:|---:|"]
    for backbone in backbones:
        lines += speed_rows(dataset, indices, backbone, batch_size, work)[1]
        print(lines[-2], flush=True)
    return lines


# --- (b) k-fold cross-validation accuracy ------------------------------------------------------------------

def cross_validate(setup: Setup, dataset: LabelledVideos, folds, work: Path, base: dict) -> dict:
    accuracies, seconds = [], []
    for k, (train_idx, test_idx) in enumerate(folds):
        fold_dir = work / f"{abs(hash(setup.name))}_{k}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        train_csv = write_manifest(fold_dir / "train.csv", [dataset.items[i] for i in train_idx])
        test_csv = write_manifest(fold_dir / "test.csv", [dataset.items[i] for i in test_idx])
        tick = time.perf_counter()
        config = TrainConfig(data=str(train_csv), out_dir=str(fold_dir / "run"), cache_dir=str(work / "cache"),
                             progress=False, **{**base, **setup.settings})
        run_dir = train.run(config)
        seconds.append(time.perf_counter() - tick)
        out = evaluate(EvaluateConfig(data=str(test_csv), model_dir=str(run_dir / "model"),
                                      out_dir=str(fold_dir / "eval"), progress=False))
        accuracies.append(json.loads((out / "metrics.json").read_text())["accuracy"])
        print(f"  {setup.name} fold {k + 1}/{len(folds)}: accuracy {accuracies[-1]:.3f} ({seconds[-1]:.0f} s)",
              flush=True)
    return {"mean": float(np.mean(accuracies)), "std": float(np.std(accuracies)), "folds": accuracies,
            "seconds": float(np.mean(seconds))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None, help="cap on epochs per fold (default: TrainConfig's)")
    parser.add_argument("--speed-clips", type=int, default=40, help="clips in the epoch-time comparison")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--speed-backbones", nargs="+", default=["vidnet", "resnet18"],
                        help="backbones of the epoch-time table (default: vidnet resnet18)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--setups", default="all", help="comma-separated row numbers (1-based) or 'all'")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-cv", action="store_true", help="only the epoch-time table")
    parser.add_argument("--seed", type=int, default=0, help="seed of the folds and of every training run (default 0)")
    parser.add_argument("--out", default=None, help="also write the tables to this Markdown file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    dataset = discover_dataset(args.data)
    lines = [f"Data: {args.data} ({len(dataset.items)} clips, {dataset.class_counts()})", ""]
    with tempfile.TemporaryDirectory(prefix="vidlstm-bench-train-") as tmp:
        work = Path(tmp)
        if not args.skip_speed:
            lines += speed_table(dataset, args.speed_clips, args.batch_size, work, args.speed_backbones) + [""]
            print("\n".join(lines), flush=True)
        if not args.skip_cv:
            folds = cross_validation_folds(dataset, args.folds, seed=args.seed)
            chosen = SETUPS if args.setups == "all" else [SETUPS[int(i) - 1] for i in args.setups.split(",")]
            base = ({"batch_size": args.batch_size} | ({"epochs": args.epochs} if args.epochs else {})
                    | ({"seed": args.seed} if args.seed else {}))
            table = [f"{args.folds}-fold cross-validation (stratified{', grouped' if dataset.has_groups else ''}), "
                     f"settings {base}:", "", "| setup | accuracy mean ± std | per fold | train s/fold |", "|---|---|---|---:|"]
            for setup in chosen:
                r = cross_validate(setup, dataset, folds, work, base)
                table.append(f"| {setup.name} | {r['mean']:.3f} ± {r['std']:.3f} | "
                             f"{' '.join(f'{a:.2f}' for a in r['folds'])} | {r['seconds']:.0f} |")
            lines += table
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
