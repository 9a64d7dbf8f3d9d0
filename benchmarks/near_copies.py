"""What `auto`'s near-copy rule reads: the median nearest-neighbour similarity of the training clips' mean Lite0
features (`training.readout.nearest_neighbour_similarity`), on the training side of `bench_accuracy.py`'s outer
folds, over both streams side by side (what the read-out of frames and differences fed it from session 23) and
over the frames alone (what its threshold `families.NEAR_COPY_SIMILARITY`, 0.9, was set on in session 15).

The features are `readout_choice.py`'s: 16 segment-centre frames per clip at 224 px and their differences, extracted
once per data set (~3 min each on 2 cores; ``--features DIR`` keeps them).

    .venv/bin/python benchmarks/near_copies.py --features /tmp/lite0-features
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from readout_choice import each_data_set, read_out_parser  # noqa: E402
from vidlstm.data.splits import cross_validation_folds  # noqa: E402
from vidlstm.stages.families import NEAR_COPY_SIMILARITY  # noqa: E402
from vidlstm.training.readout import nearest_neighbour_similarity  # noqa: E402


def spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f} (median {np.median(values):.3f})"


def main(argv=None) -> int:
    parser = read_out_parser(__doc__)
    parser.set_defaults(datasets=["fight", "pushfit", "synthetic", "airdraw"], seeds=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lines = []
    for name, _, _, dataset, frames, differences in each_data_set(args.datasets, args.features,
                                                                  "vidlstm-near-copies-"):
        both = np.concatenate([frames, differences], 2).mean(1)  # (N, 2D): the clips' mean features, as the read-out
        alone = frames.mean(1)
        folds = [train for seed in range(args.seeds) for train, _ in cross_validation_folds(dataset, args.folds, seed)]
        side = [nearest_neighbour_similarity(both[train]) for train in folds]
        framed = [nearest_neighbour_similarity(alone[train]) for train in folds]
        over = sum(s >= NEAR_COPY_SIMILARITY for s in side), sum(s >= NEAR_COPY_SIMILARITY for s in framed)
        line = (f"| {name} ({len(dataset.items)} clips{', grouped' if dataset.has_groups else ''}) | "
                f"{nearest_neighbour_similarity(both):.3f} / {nearest_neighbour_similarity(alone):.3f} | "
                f"{spread(side)}, {over[0]} of {len(folds)} >= {NEAR_COPY_SIMILARITY} | "
                f"{spread(framed)}, {over[1]} of {len(folds)} >= {NEAR_COPY_SIMILARITY} |")
        print(line, flush=True)
        lines.append(line)
    print(f"\nmedian nearest-neighbour similarity of clip-mean Lite0 features; training sides of {args.folds} folds x "
          f"{args.seeds} fold seeds:\n")
    print("| data set | whole set: both streams / frames alone | training folds, both streams | "
          "training folds, frames alone |\n|---|---|---|---|")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
