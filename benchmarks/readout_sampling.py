"""Train/serve skew: a statistics read-out is fitted on segment-centre frames, but classify snapped each segment's
frame to the one cheapest to decode. Held-out accuracy of auto's read-out candidate (`families.FAMILIES
["pretrained"]`, trained by the train stage), served both ways (`classify_paths(exact_frames=False/True)`), on 3
stratified folds (seed 0; group-aware where the data names groups) of a real set:

    .venv/bin/python benchmarks/readout_sampling.py pushfit ../shared/data/pushfit
    .venv/bin/python benchmarks/readout_sampling.py fight ../shared/data/fight/MANIFEST.tsv

Run folders go to /tmp/snap_NAME (a fold's trained model is reused where it is there). Since session 29 a
read-out model is served the centres by default (``ModelConfig.snaps_to_keyframes``); the keyframes arm overrides
that in this process to measure what snapping costs.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import vidlstm.models.config as model_config  # noqa: E402
from vidlstm.data.datasets import discover_dataset, write_manifest  # noqa: E402
from vidlstm.inference import Predictor  # noqa: E402
from vidlstm.stages import train  # noqa: E402
from vidlstm.stages.classify import classify_paths  # noqa: E402
from vidlstm.stages.families import FAMILIES  # noqa: E402
from vidlstm.training.config import TrainConfig  # noqa: E402

SERVED = model_config.snaps_to_keyframes  # what the product does


def main(name: str, source: str) -> int:
    work = Path(f"/tmp/snap_{name}")
    work.mkdir(exist_ok=True)
    ds = discover_dataset(source)
    y, groups = ds.targets(), ds.groups()
    folds = (StratifiedGroupKFold(3, shuffle=True, random_state=0).split(np.zeros(len(y)), y, groups)
             if groups is not None else StratifiedKFold(3, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    results = {"keyframes": [], "exact": []}
    for k, (train_idx, test_idx) in enumerate(folds):
        fold = work / f"f{k}"
        fold.mkdir(exist_ok=True)
        train_csv = write_manifest(fold / "train.csv", [ds.items[i] for i in train_idx])
        tick = time.time()
        run = fold / "run"
        if not (run / "model" / "model.safetensors").exists():
            train.run(TrainConfig(data=str(train_csv), out_dir=str(run), progress=False, **FAMILIES["pretrained"]))
        predictor = Predictor.from_dir(run / "model")
        paths = [str(ds.items[i].path) for i in test_idx]
        truth = [ds.items[i].label for i in test_idx]
        for mode in results:
            model_config.snaps_to_keyframes = (lambda head: True) if mode == "keyframes" else SERVED
            records = list(classify_paths(predictor, paths, top_k=1, exact_frames=mode == "exact"))
            results[mode].append(float(np.mean([r["label"] == t for r, t in zip(records, truth)])))
            print(f"{name} fold {k}: {mode} {results[mode][-1]:.3f} (sampling {sorted({r.get('sampling') for r in records})}) "
                  f"[{time.time() - tick:.0f} s]", flush=True)
    for mode, accuracies in results.items():
        print(f"{name} {mode}: {' '.join(f'{a:.3f}' for a in accuracies)} mean {np.mean(accuracies):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
