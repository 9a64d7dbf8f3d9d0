"""What a kept read-out model costs at inference: `vidlstm predict` files/s of a frozen Lite0-224 statistics read-out
on the frames alone (input mode rgb) against the frames and their differences (rgb,diff, auto's read-out: two backbone
passes per frame), the latter with vidnet beside it as its partner (what `auto` keeps where it keeps the read-out and
vidnet trained: ``training.partner``), and with ``--explain DIR`` (each frame's weight found by leaving it out, and a
strip PNG and a JSON per file), in one run, alternating.

    .venv/bin/python benchmarks/bench_readout_predict.py                 # 24 fight clips, 2 workers, 2 rounds
    .venv/bin/python benchmarks/bench_readout_predict.py --clips 12 --rounds 3 --workers 1

The models are built, not trained (their weights do not change the cost): ImageNet Lite0, 16 frames at 224 px,
``clip_head = "stats"``, the partner vidnet at 48 px on the differences (auto's candidate settings), saved as model
folders and run by the real command in a subprocess.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vidlstm.checkpoint import save_model  # noqa: E402
from vidlstm.models import LRCN, ModelConfig  # noqa: E402
from vidlstm.training.partner import with_partner  # noqa: E402

MODES = ("rgb", "rgb,diff")
ROWS = ("rgb", "rgb,diff", "rgb,diff+partner", "rgb,diff --explain")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "fight")
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    clips = sorted(args.data.rglob("*.mp4"))[:args.clips]
    if not clips:
        raise SystemExit(f"{args.data}: no .mp4 clips (the real data sets live in ../shared/data)")
    rates = {row: [] for row in ROWS}
    with tempfile.TemporaryDirectory(prefix="vidlstm-readout-predict-") as tmp:
        work = Path(tmp)
        (work / "clips").mkdir()
        for i, clip in enumerate(clips):
            (work / "clips" / f"{i:03d}_{clip.name}").symlink_to(clip.resolve())
        for mode in MODES:
            torch.manual_seed(0)
            model = LRCN(ModelConfig(labels=["a", "b"], backbone="efficientnet_lite0", pretrained=True, image_size=224,
                                     num_frames=16, input_mode=mode, clip_head="stats"))
            with torch.no_grad():
                model.clip_stats.fit(torch.randn(8, 16, model.feature_dim))
            save_model(work / f"model_{mode}", model.eval())
        torch.manual_seed(0)
        partner = LRCN(ModelConfig(labels=["a", "b"], backbone="vidnet", image_size=48, num_frames=16,
                                   input_mode="diff", keypoint_stage=2, centred_keypoints=True))
        save_model(work / "model_rgb,diff+partner", with_partner(model.eval(), partner.eval()))
        for r in range(args.rounds):
            for i, row in enumerate(ROWS):
                mode, explain = row.split(" ")[0], row.endswith("--explain")
                record = work / f"{i}_{r}.jsonl"
                command = [sys.executable, "-m", "vidlstm", "predict", str(work / "clips"), "--model",
                           str(work / f"model_{mode}"), "-o", str(record), "--workers", str(args.workers),
                           "--no-progress"] + (["--explain", str(work / f"explain_{r}")] if explain else [])
                tick = time.perf_counter()
                subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
                rates[row].append(len(clips) / (time.perf_counter() - tick))
                print(f"round {r + 1}, {row}: {rates[row][-1]:.2f} files/s", flush=True)
            if explain:  # what the run promised: a strip and a JSON of leave-one-out weights per file
                strips = sorted((work / f"explain_{r}").rglob("*.png"))
                assert len(strips) == len(clips), (len(strips), len(clips))
    base = max(rates["rgb"])
    print(f"\n{len(clips)} clips, --workers {args.workers}, best of {args.rounds} rounds:\n")
    print("| read-out model | files/s per round | best | vs rgb |\n|---|---|---|---|")
    for row in ROWS:
        print(f"| {row} | {' '.join(f'{v:.2f}' for v in rates[row])} | {max(rates[row]):.2f} | "
              f"{max(rates[row]) / base:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
