"""What a weighted average of `auto`'s two candidates would score, from `bench_accuracy.py --json` files.

`bench_accuracy.py --setups new --json F` keeps, per held-out fold, the true classes and both candidates' calibrated
probabilities on every held-out clip (the read-out, ``pretrained``; vidnet, ``scratch``), and each candidate's
estimate. This reads any number of such files and prints, per file and weight w, the held-out accuracy of
``w * read-out + (1 - w) * vidnet``: w = 1 is the read-out alone, w = 0 vidnet alone, 0.5 the plain average the bench
prints itself. ``--where-kept`` scores the average only in folds where `auto` kept the read-out (the kept model
elsewhere), which is what a rule "the read-out, with vidnet's vote beside it" would have served.

Nothing is trained: it re-scores saved probabilities, so it runs in a second.

    .venv/bin/python benchmarks/candidate_weights.py RUN1.json RUN2.json ... [--weights 0 0.5 0.6 0.7 0.8 1]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

READOUT, VIDNET = "pretrained", "scratch"


def fold_accuracy(fold: dict, weight: float, where_kept: bool) -> float:
    """Held-out accuracy of one fold's weighted average (the kept candidate alone where ``where_kept`` and `auto`
    kept vidnet there)."""
    truth = np.asarray(fold["truth"])
    readout, vidnet = (np.asarray(fold["probabilities"][f]) for f in (READOUT, VIDNET))
    if where_kept and fold.get("chosen") == VIDNET:
        mixed = vidnet
    else:
        mixed = weight * readout + (1.0 - weight) * vidnet
    return float(np.mean(mixed.argmax(1) == truth))


def runs(paths: list[Path]):
    """(label, folds) of every `auto` run with both candidates' probabilities in ``paths``."""
    for path in paths:
        for result in json.loads(path.read_text()):
            folds = [f for f in result.get("held_out", []) if {READOUT, VIDNET} <= set(f.get("probabilities", {}))]
            if folds:
                yield f"{result['dataset']} ({path.name})", folds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, help="bench_accuracy.py --json files")
    parser.add_argument("--weights", nargs="+", type=float, default=[0.0, 0.5, 0.6, 0.7, 0.8, 1.0],
                        help="the read-out's weights w (vidnet gets 1 - w)")
    parser.add_argument("--where-kept", action="store_true",
                        help="average only in folds where auto kept the read-out; the kept candidate elsewhere")
    args = parser.parse_args(argv)
    header = " | ".join(f"w = {w:g}" for w in args.weights)
    print(f"| run | {header} |\n|---|{'---|' * len(args.weights)}")
    means: dict[str, list[float]] = {}
    for label, folds in runs(args.files):
        cells = []
        for w in args.weights:
            per_fold = [fold_accuracy(fold, w, args.where_kept) for fold in folds]
            means.setdefault(f"{w:g}", []).append(float(np.mean(per_fold)))
            cells.append(f"{np.mean(per_fold):.3f} ({' '.join(f'{a:.3f}' for a in per_fold)})")
        print(f"| {label} | {' | '.join(cells)} |")
    print(f"| mean of the runs | {' | '.join(f'{np.mean(v):.3f}' for v in means.values())} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
