"""What undoing the camera's pan costs a clip, against what the model it feeds costs the same clip.

    python benchmarks/bench_stabilize.py [--threads 1] [--repeats 20]

Prints a markdown table: per 16-frame clip, the median milliseconds of ``vidlstm.data.stabilize.stabilize`` on a
panned textured scene, and of the forward pass of the model that reads clips of that size (vidnet at 48 px, as
``auto`` trains it; EfficientNet-Lite0 at 224 px, the read-outs' network, batch norms folded as inference folds
them), measured in the same run on the same threads. The ratio is the share stabilizing adds to the model's work;
decoding comes on top of both.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads (default 1)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
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
