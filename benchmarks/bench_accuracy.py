"""Accuracy of `vidlstm train` defaults: k-fold cross-validation over every real labelled set we have.

    python benchmarks/bench_accuracy.py                          # pushfit, fight, synthetic; old vs new defaults
    python benchmarks/bench_accuracy.py --datasets fight --folds 3 --setups new
    python benchmarks/bench_accuracy.py --setups new --set image_size=64 --set input_mode=rgb   # a candidate

Each fold trains through the real train stage (vidlstm.stages.train.run) on the fold's training clips (its
own inner validation split, as a user's run has) and is scored by `vidlstm evaluate` on the held-out
fold. Folds are stratified, and group-aware where the data has groups: ``fight``'s MANIFEST.tsv
``group`` column is the source video, so clips of one source never sit on both sides of a split.
``pushfit`` has no group column (its clip names carry no source). ``synthetic`` is `vidlstm synth`
data drawn fresh from a seed; ``airdraw`` (benchmarks/airdraw.py) stands in for air-drawn gestures: a hand
tracing 10 paths over scenes of the real clips, 26 per path, grouped by scene; ``airdraw-shake`` is the same with the
head turning (the view, arm and all, pans ~2 px per frame). Prints one Markdown table: mean ± std
accuracy and train seconds per fold.
With ``backbone = auto`` (the default) it also scores each candidate `auto` trained on the held-out fold, and the
average of their probabilities for every set of two or more (an ensemble of candidates); ``--json`` keeps each
fold's per-clip probabilities and estimates, so other choice rules can be checked on the same folds.
"""
from __future__ import annotations

import argparse
import csv
from itertools import combinations
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vidlstm.data.datasets import discover_dataset, write_manifest  # noqa: E402
from vidlstm.data.splits import cross_validation_folds  # noqa: E402
from vidlstm.data.synth import SynthConfig, generate_dataset  # noqa: E402
from vidlstm.stages import train  # noqa: E402
from vidlstm.stages.evaluate import EvaluateConfig  # noqa: E402
from vidlstm.stages.evaluate import run as evaluate  # noqa: E402
from vidlstm.training.config import TrainConfig  # noqa: E402

SHARED = REPO.parent / "shared" / "data"

# The defaults before issue 9 (vidnet, 8 frames at 64 px, 30 epochs, best val_acc epoch with patience 15, no weight
# average, keypoints from the 4x4 map, 5 views, no time budget), spelled out so the same code runs them.
OLD_DEFAULTS = dict(backbone="vidnet", num_frames=8, image_size=64, epochs=30, patience=15, monitor="val_acc", ema_decay=0.0,
                    keypoint_stage=4, centred_keypoints=False, views=5, time_budget=0.0, input_mode="rgb+diff",
                    search=False)
# "new": today's defaults; "search": the same with `train --search` (the input mode chosen by data).
SETUPS = {"old": OLD_DEFAULTS, "new": {}, "search": {"search": True}}
# the airdraw sets (benchmarks/airdraw.py) and their head's shake, px per frame
AIRDRAW_SHAKE = {"airdraw": 0.0, "airdraw-shake": 2.0}


def manifest_from_tsv(folder: Path, out: Path) -> Path:
    """A path,label[,group] CSV from a data folder's MANIFEST.tsv (absolute paths)."""
    with open(folder / "MANIFEST.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    grouped = "group" in rows[0]
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"] + (["group"] if grouped else []))
        for row in rows:
            writer.writerow([folder / row["path"], row["label"]] + ([row["group"]] if grouped else []))
    return out


def dataset_source(name: str, work: Path, seed: int) -> Path:
    if name == "synthetic":
        return generate_dataset(work / "synthetic", SynthConfig(per_class=24, seed=1000 + seed))
    if name in AIRDRAW_SHAKE:  # paths traced by a hand over real scenes; the group is the scene's source clip
        from airdraw import generate

        return generate(work / name, per_class=26, seed=seed, shake=AIRDRAW_SHAKE[name])
    folder = SHARED / name
    if not folder.is_dir():
        raise SystemExit(f"{folder}: not here (the real data sets live in ../shared/data)")
    return manifest_from_tsv(folder, work / f"{name}.csv")


def with_look_alike_groups(source: Path, threshold: float) -> Path:
    """``source``'s manifest with a group column inferred from look-alike clips, where it names none: average-linkage
    clusters (cosine distance ``threshold``) of the clips' centred mean Lite0 features (16 segment-centre frames at
    224 px), as sessions 16 and 23 grouped pushfit's recordings. Folds then hold recordings apart."""
    import dataclasses

    from pretrained_probe import frame_features, look_alike_groups
    from vidlstm.models import get_backbone

    dataset = discover_dataset(source)
    if dataset.has_groups:
        return source
    frames = frame_features(get_backbone("efficientnet_lite0", pretrained=True),
                            [item.path for item in dataset.items], 224)
    groups = look_alike_groups(frames, threshold)
    items = [dataclasses.replace(item, group=f"rec{g:03d}") for item, g in zip(dataset.items, groups)]
    return write_manifest(source.with_name(source.stem + "-look-alike.csv"), items)


def write_fold(path: Path, dataset, indices) -> Path:
    """The manifest of ``dataset``'s items at ``indices`` (absolute paths, their groups where it has any)."""
    return write_manifest(path, [dataset.items[i] for i in indices])


def cross_validate(name: str, settings: dict, dataset, folds, work: Path, seed: int,
                   eval_clips: tuple[int, ...] = (0,), members: int = 1) -> dict:
    """Train and score every fold; each fold model is scored once per entry of ``eval_clips`` (views per video;
    0: the model's own test views, as `vidlstm evaluate` and `classify` score it).

    With ``members`` > 1 each fold trains that many models (seeds ``seed``, ``seed + 1``, ...), each with
    its share of the time budget, and is scored by their averaged probabilities (an ensemble);
    ``member_accuracy`` keeps the members' mean accuracy beside it.
    """
    seconds, epochs, modes, member_accuracy = [], [], [], []
    candidates: dict[str, list[float]] = {}  # --set backbone=auto: each family's own held-out accuracy
    averaged: dict[str, list[float]] = {}  # backbone auto: candidates' held-out probabilities averaged, per set
    held_out: list[dict] = []  # backbone auto: per fold, the true classes and each candidate's probabilities
    by_views: dict[int, list[float]] = {n: [] for n in eval_clips}
    accuracies = by_views[eval_clips[0]]  # the first view count is the headline figure
    budget = settings.get("time_budget", TrainConfig.__dataclass_fields__["time_budget"].default)
    for k, (train_idx, test_idx) in enumerate(folds):
        fold_dir = work / f"{name}_{k}"
        fold_dir.mkdir(parents=True)
        train_csv = write_fold(fold_dir / "train.csv", dataset, train_idx)
        test_csv = write_fold(fold_dir / "test.csv", dataset, test_idx)
        tick = time.perf_counter()
        run_dirs, fold_epochs = [], []
        for j in range(members):
            config = TrainConfig(data=str(train_csv), out_dir=str(fold_dir / f"run{j}"), progress=False,
                                 **{**settings, "seed": seed + j, "time_budget": budget / members})
            run_dirs.append(train.run(config))
            metrics = json.loads((run_dirs[-1] / "model" / "metrics.json").read_text())
            fold_epochs.append(metrics["epochs_run"])
        seconds.append(time.perf_counter() - tick)
        epochs.append("+".join(map(str, fold_epochs)))
        note = metrics.get("chosen_from_data", {}).get("input_mode", {})
        modes.append(note.get("input_mode") or settings.get("input_mode", "rgb+diff"))
        choice_path = run_dirs[0] / "choice.json"
        if choice_path.is_file():  # backbone auto: which family was kept, and how each scores on the held-out fold
            choice = json.loads(choice_path.read_text())
            estimates = " / ".join("-" if c["accuracy"] is None else f"{c['accuracy']:.2f}" for c in choice["candidates"].values())
            modes[-1] = f"{choice['chosen']} (estimates {estimates})"
            family_probs = {}
            for family in choice["candidates"]:
                out = evaluate(EvaluateConfig(data=str(test_csv), model_dir=str(run_dirs[0] / "candidates" / family / "model"),
                                              top_k=len(dataset.labels), out_dir=str(fold_dir / f"eval_{family}"),
                                              progress=False))
                truth, family_probs[family] = read_probabilities(out / "predictions.csv")
                candidates.setdefault(family, []).append(float(np.mean(family_probs[family].argmax(1) == truth)))
            for members_set in candidate_sets(list(family_probs)):
                mean_probs = np.mean([family_probs[f] for f in members_set], axis=0)
                averaged.setdefault(" + ".join(members_set), []).append(float(np.mean(mean_probs.argmax(1) == truth)))
            held_out.append({"truth": truth.tolist(), "estimates": {f: c["accuracy"] for f, c in choice["candidates"].items()},
                             "chosen": choice["chosen"],
                             "probabilities": {f: np.round(p, 5).tolist() for f, p in family_probs.items()}})
            scores = ", ".join(f"{f} {a[-1]:.3f}" for f, a in [*candidates.items(), *averaged.items()])
            val = ", ".join(f"{f} {c['accuracy']} ({c['estimate']}, {c['clips']} clips)" for f, c in choice["candidates"].items())
            print(f"  {name} fold {k + 1}: candidates {scores}; estimates {val}", flush=True)
        if note.get("scores"):
            print(f"  {name} fold {k + 1}: search scores {note['scores']}", flush=True)
        for views in eval_clips:
            probs = []
            for j, run_dir in enumerate(run_dirs):
                out = evaluate(EvaluateConfig(data=str(test_csv), model_dir=str(run_dir / "model"), clips=views or None,
                                              top_k=len(dataset.labels), out_dir=str(fold_dir / f"eval{j}_{views}"),
                                              progress=False))
                truth, p = read_probabilities(out / "predictions.csv")
                probs.append(p)
                if views == eval_clips[0] and members > 1:
                    member_accuracy.append(float(np.mean(p.argmax(1) == truth)))
            by_views[views].append(float(np.mean(np.mean(probs, axis=0).argmax(1) == truth)))
        views_text = ", ".join(f"{by_views[v][-1]:.3f} with {v or 'its own'} views" for v in eval_clips[1:])
        members_text = (f", members {' '.join(f'{a:.3f}' for a in member_accuracy[-members:])}" if members > 1 else "")
        print(f"  {name} fold {k + 1}/{len(folds)}: accuracy {accuracies[-1]:.3f}{' (' + views_text + ')' if views_text else ''}"
              f"{members_text} ({seconds[-1]:.0f} s, {epochs[-1]} epochs, input mode {modes[-1]})", flush=True)
    return {"mean": float(np.mean(accuracies)), "std": float(np.std(accuracies)), "folds": accuracies,
            "seconds": float(np.mean(seconds)), "max_seconds": float(np.max(seconds)), "epochs": epochs,
            "input_modes": modes, "eval_clips": list(eval_clips), "members": members,
            "member_accuracy": member_accuracy, "candidates": candidates, "averaged": averaged,
            "held_out": held_out,
            "by_views": {str(v): {"mean": float(np.mean(a)), "std": float(np.std(a)), "folds": a}
                         for v, a in by_views.items()}}


def candidate_sets(families: list[str]) -> list[tuple[str, ...]]:
    """Every set of two or more candidates, whose held-out probabilities are averaged for an ensemble's score."""
    return [group for size in range(2, len(families) + 1) for group in combinations(families, size)]


def read_probabilities(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """((N,) true class ids, (N, C) probabilities, classes in sorted order) from an evaluate predictions.csv
    whose top_k lists every class (a file that failed to decode counts as uniform)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    tops = [top_k_scores(row["top_k"]) for row in rows]
    labels = sorted({r["label"] for r in rows} | {label for top in tops for label in top})
    probs = np.full((len(rows), len(labels)), 1.0 / len(labels))
    for i, top in enumerate(tops):
        for label, score in top.items():
            probs[i, labels.index(label)] = score
    return np.array([labels.index(r["label"]) for r in rows]), probs


def top_k_scores(cell: str) -> dict[str, float]:
    """{label: score} of a predictions.csv top_k cell: a JSON list of {label, score} (an empty cell or [] for a
    video that failed), or the `label:score label:score` of an older vidlstm."""
    if not cell.strip():
        return {}
    if cell.lstrip().startswith("["):
        return {t["label"]: float(t["score"]) for t in json.loads(cell)}
    return {label: float(score) for label, score in (token.rsplit(":", 1) for token in cell.split())}


def parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["pushfit", "fight", "synthetic"])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--setups", nargs="+", default=["old", "new"], choices=sorted(SETUPS))
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a TrainConfig field in every setup (a candidate to compare)")
    parser.add_argument("--eval-clips", type=int, nargs="+", default=[0], metavar="N",
                        help="score each fold model with N temporal views per video (evaluate --clips N; 0, the "
                             "default: the model's own test views), "
                             "probabilities averaged; several N: one table row each, the same fold models")
    parser.add_argument("--members", type=int, default=1, metavar="K",
                        help="train K models per fold (seeds seed..seed+K-1, each with 1/K of the time budget) "
                             "and score their averaged probabilities: an ensemble at the same total budget")
    parser.add_argument("--seed", type=int, default=0, help="seed of the folds and of every run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stabilize", action="store_true",
                        help="rewrite every clip with the camera's translation undone first, at its full frame rate "
                             "(benchmarks/stabilize.py); vidlstm's own, on the sampled frames: --set stabilize=on|off")
    parser.add_argument("--look-alike-groups", type=float, default=None, metavar="DISTANCE",
                        help="where a data set names no groups, infer them from look-alike clips (cosine distance "
                             "of their Lite0 means, e.g. 0.5) so that folds hold recordings apart")
    parser.add_argument("--json", default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = {k: parse_value(v) for k, v in (item.split("=", 1) for item in args.set)}
    results = []
    with tempfile.TemporaryDirectory(prefix="vidlstm-bench-accuracy-") as tmp:
        work = Path(tmp)
        for name in args.datasets:
            source = dataset_source(name, work, args.seed)
            if args.stabilize:
                if name != "synthetic" and name not in AIRDRAW_SHAKE:
                    raise SystemExit(f"--stabilize rewrites clips in place: only data drawn here (not {name})")
                from stabilize import stabilize_manifest

                stabilize_manifest(source)
            if args.look_alike_groups is not None:
                source = with_look_alike_groups(source, args.look_alike_groups)
            dataset = discover_dataset(source)
            folds = cross_validation_folds(dataset, args.folds, seed=args.seed)
            print(f"{name}: {len(dataset.items)} clips {dataset.class_counts()}, {args.folds} folds"
                  f"{' (grouped)' if dataset.has_groups else ''}", flush=True)
            for setup in args.setups:
                settings = {**SETUPS[setup], **overrides}
                r = cross_validate(f"{name}-{setup}", settings, dataset, folds, work, args.seed,
                                   tuple(dict.fromkeys(args.eval_clips)), args.members)
                results.append({"dataset": name, "setup": setup, "settings": settings, **r})
    lines = [f"{args.folds}-fold cross-validation, seed {args.seed}, overrides {overrides or 'none'}:", "",
             "| data set | setup | accuracy mean ± std | per fold | train s/fold (max) | epochs | input mode |",
             "|---|---|---|---|---:|---|---|"]
    for r in results:
        for views, score in r["by_views"].items():
            count = "its own" if views == "0" else views
            setup = r["setup"] if len(r["by_views"]) == 1 else f"{r['setup']}, {count} view{'s' * (views != '1')}"
            lines.append(f"| {r['dataset']} | {setup} | {score['mean']:.3f} ± {score['std']:.3f} | "
                         f"{' '.join(f'{a:.2f}' for a in score['folds'])} | {r['seconds']:.0f} ({r['max_seconds']:.0f}) | "
                         f"{' '.join(map(str, r['epochs']))} | {' '.join(r['input_modes'])} |")
        for family, scores in r.get("candidates", {}).items():
            lines.append(f"| {r['dataset']} | {r['setup']}, {family} candidate | {np.mean(scores):.3f} ± {np.std(scores):.3f} | "
                         f"{' '.join(f'{a:.2f}' for a in scores)} | | | |")
        for group, scores in r.get("averaged", {}).items():
            lines.append(f"| {r['dataset']} | {r['setup']}, average of {group} | {np.mean(scores):.3f} ± {np.std(scores):.3f} | "
                         f"{' '.join(f'{a:.2f}' for a in scores)} | | | |")
        if r["members"] > 1:
            lines.append(f"| {r['dataset']} | {r['setup']}, one member | {np.mean(r['member_accuracy']):.3f} ± "
                         f"{np.std(r['member_accuracy']):.3f} | {' '.join(f'{a:.2f}' for a in r['member_accuracy'])} | | | |")
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
