"""Per-chunk time of `vidlstm stream`'s model step over a long stream: constant, vs. re-running the history each chunk.

Feeds generated frames (a moving square, in memory, so decoding does not blur the numbers) through
StreamClassifier chunk by chunk, and times the first and last 10 chunks. For contrast it also times
the stateless alternative: re-running the temporal model over all features so far at every chunk.

    .venv/bin/python benchmarks/bench_stream.py [--chunks 300] [--chunk-frames 8] [--image-size 112]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vidlstm.checkpoint import load_model
from vidlstm.models import LRCN, ModelConfig
from vidlstm.inference import Predictor
from vidlstm.stages.stream import StreamClassifier, StreamFrame

WARMUP_CHUNKS = 3  # first calls allocate and pick kernels: not part of either window
WINDOW = 10


def moving_square_chunk(chunk: int, frames: int, size: int) -> list[StreamFrame]:
    """``frames`` consecutive frames of a square moving across a grey field, as 8 fps stream frames."""
    out = []
    for i in range(frames):
        t = chunk * frames + i
        rgb = np.full((size, size, 3), 96, np.uint8)
        x = (7 * t) % (size - size // 4)
        rgb[size // 3: size // 3 + size // 4, x: x + size // 4] = 255
        out.append(StreamFrame(t, t / 8.0, rgb))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: a random vidnet model)")
    parser.add_argument("--chunks", type=int, default=300)
    parser.add_argument("--chunk-frames", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=112, help="for the random model only")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model) if args.model else LRCN(ModelConfig(labels=["a", "b", "c"],
                                                                       image_size=args.image_size))
    size = model.config.image_size
    classifier = StreamClassifier(Predictor(model, device=args.device))
    stream_ms, history_ms, features = [], [], []
    for chunk in range(args.chunks):
        frames = moving_square_chunk(chunk, args.chunk_frames, size)
        start = time.perf_counter()
        classifier.feed(frames)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        stream_ms.append(1000 * (time.perf_counter() - start))
        # The stateless alternative: keep every feature and re-run the causal head over all of them.
        with torch.inference_mode():
            feats, _ = classifier.predictor.encode_chunk(np.stack([f.rgb for f in frames]))
            features.append(feats)
            start = time.perf_counter()
            classifier.predictor.model.forward_features(torch.cat(features)[None])
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            history_ms.append(1000 * (time.perf_counter() - start))
    state_shapes = [tuple(t.shape) for t in classifier.state]
    first = slice(WARMUP_CHUNKS, WARMUP_CHUNKS + WINDOW)
    last = slice(args.chunks - WINDOW, args.chunks)
    print(f"{args.chunks} chunks x {args.chunk_frames} frames at {size} px, {args.threads} thread(s), {args.device}; "
          f"LSTM state {state_shapes} throughout\n")
    print(f"| what | chunks {first.start + 1}-{first.stop} ms | chunks {last.start + 1}-{last.stop} ms "
          "| last / first |")
    print("|---|---|---|---|")
    for name, times in (("stream step (encoder + causal head, state carried)", stream_ms),
                        ("temporal model re-run over the whole history", history_ms)):
        a, b = float(np.median(times[first])), float(np.median(times[last]))
        print(f"| {name} | {a:.2f} | {b:.2f} | {b / a:.2f} |")


if __name__ == "__main__":
    main()
