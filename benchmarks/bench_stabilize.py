"""What undoing the camera's pan costs a clip, against what the model it feeds costs the same clip.

    python benchmarks/bench_stabilize.py [--threads 1] [--repeats 20]
    python benchmarks/bench_stabilize.py --predict [--files 48] [--repeats 3]

Prints a markdown table: per 16-frame clip, the median milliseconds of ``vidlstm.data.stabilize.stabilize`` on a
panned textured scene, and of the forward pass of the model that reads clips of that size (vidnet at 48 px, as
``auto`` trains it; EfficientNet-Lite0 at 224 px, the read-outs' network, batch norms folded as inference folds
them), measured in the same run on the same threads. The ratio is the share stabilizing adds to the model's work;
decoding comes on top of both.

``--predict`` measures where the stabilizing of a batch run belongs: a stabilized vidnet model (16 frames, 48 px)
predicts short panning H.264 clips (3 s, 320x240: cheap to decode, where the model's process is likeliest to limit)
through the engine, the pan undone in the decode workers (what vidlstm does off the CPU) or beside the model (on a
CPU; ``Predictor.pan_in_decoders``), with 1 and 2 decode workers, alternated ``--repeats`` times. It prints files
per second and the model process's own milliseconds per file (forward pass and, beside the model, the
stabilizing), medians.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # make_clips

from vidlstm.data.stabilize import stabilize  # noqa: E402
from vidlstm.inference.predictor import Predictor  # noqa: E402
from vidlstm.models import LRCN, ModelConfig  # noqa: E402

FRAMES = 16


def panned_clip(size: int, seed: int = 0) -> np.ndarray:
    """(FRAMES, size, size, 3) uint8: a blurred-noise scene seen by a view that pans ~3% of the frame per frame."""
    rng = np.random.default_rng(seed)
    scene = cv2.GaussianBlur(rng.integers(0, 256, (3 * size, 3 * size, 3)).astype(np.uint8), (0, 0), size / 48)
    path = size + np.cumsum(rng.normal(0, 0.03 * size, (FRAMES, 2)), axis=0)
    return np.stack([scene[int(y):int(y) + size, int(x):int(x) + size] for x, y in np.clip(path, 0, 2 * size)])


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * sorted(times)[len(times) // 2]


def predict_table(files: int, repeats: int) -> None:
    """Files per second of a stabilized vidnet model, the pan undone in the decoders or beside the model."""
    import tempfile

    from make_clips import write_h264

    from vidlstm.batch.engine import EngineOptions, EngineStats, predict_records

    torch.set_num_threads(1)  # predict's own choice beside busy decoders (default_torch_threads)
    torch.manual_seed(0)
    predictor = Predictor(LRCN(ModelConfig(labels=["a", "b"], backbone="vidnet", num_frames=FRAMES, image_size=48,
                                           input_mode="diff", stabilize=True)))
    with tempfile.TemporaryDirectory(prefix="bench-stabilize-") as tmp:
        paths = [str(write_h264(Path(tmp) / f"pan{i:02d}.mp4", 75, 320, 240, seed=i)) for i in range(files)]
        runs: dict[tuple, list] = {}
        for _ in range(repeats):
            for workers in (1, 2):
                for where, in_decoders in (("beside the model", False), ("in the decoders", True)):
                    predictor.pan_in_decoders = in_decoders
                    stats = EngineStats()
                    start = time.perf_counter()
                    records = list(predict_records(predictor, paths, EngineOptions(workers=workers, batch_size=8),
                                                   stats=stats))
                    wall = time.perf_counter() - start
                    assert all(r["status"] == "ok" for r in records), records
                    runs.setdefault((workers, where), []).append((files / wall, 1000 * stats.cnn_seconds / files))
    print(f"| decode workers | pan undone | files/s | model process ms/file | files/s vs beside the model |")
    print("|---|---|---|---|---|")
    for (workers, where), values in runs.items():
        rate, model_ms = (float(np.median([v[k] for v in values])) for k in (0, 1))
        base = float(np.median([v[0] for v in runs[(workers, "beside the model")]]))
        print(f"| {workers} | {where} | {rate:.1f} | {model_ms:.1f} | {rate / base:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads (default 1)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs (default 20; --predict: 3)")
    parser.add_argument("--predict", action="store_true", help="batch throughput: the pan undone where (see above)")
    parser.add_argument("--files", type=int, default=48, help="--predict: panning clips to predict")
    args = parser.parse_args()
    if args.predict:
        predict_table(args.files, args.repeats or 3)
        return
    args.repeats = args.repeats or 20
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    print(f"| model (clip of {FRAMES} frames) | size | stabilize ms/clip | model ms/clip | stabilize / model |")
    print("|---|---|---|---|---|")
    for backbone, size in (("vidnet", 48), ("vidnet", 112), ("efficientnet_lite0", 224)):
        torch.manual_seed(0)
        predictor = Predictor(LRCN(ModelConfig(labels=["a", "b"], backbone=backbone, num_frames=FRAMES,
                                               image_size=size, input_mode="diff" if backbone == "vidnet" else "rgb")))
        predictor.fold_batch_norm(trace=False)
        clip = panned_clip(size)
        steady = median_ms(lambda: stabilize(clip), args.repeats)
        model = median_ms(lambda: predictor.score_frames([clip]), args.repeats)
        print(f"| {backbone} | {size} px | {steady:.2f} | {model:.2f} | {steady / model:.2f} |")


if __name__ == "__main__":
    main()
