"""Decode CPU per clip at a model's sampling, on the clips of bench_predict: what inference pays to decode.

Each row decodes every clip as `vidlstm predict` does (``load_clip`` with keyframe-aware sampling, PyAV,
one thread), in this one process, ``--repeats`` passes after a warm-up pass, and prints CPU seconds per
clip. Rows, all in the same run so that their ratios hold on a noisy machine:

- the walk as shipped (the decoder drained after a wanted frame's packet where a seek comes next);
- the same walk fed packets until the decoder gives each frame up by itself (the drain turned off);
- the frames sampled at the segment centres instead (no keyframe awareness);
- three test views, each shifted inside the segments, in one read (``load_views``: a model with ``test_views`` 3,
  as `train` gives vidnet on the frame differences alone);
- every frame decoded and converted (what a loader that reads the whole video pays), for scale.

    python benchmarks/bench_clip_decode.py [--frames 16] [--size 48] [--clips 12] [--repeats 2]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def cpu_per_clip(clips, decode, repeats: int) -> float:
    for path in clips:  # warm-up: file cache, codec initialisation
        decode(path)
    tick = time.process_time()
    for _ in range(repeats):
        for path in clips:
            decode(path)
    return (time.process_time() - tick) / (repeats * len(clips))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=16, help="frames per clip (the shipped model's 16)")
    parser.add_argument("--size", type=int, default=48, help="image size (the shipped model's 48 px)")
    parser.add_argument("--clips", type=int, default=12, help="bench_predict's clip set (default 12)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import torch

    from make_clips import make_clip_dir
    from vidlstm.data.clips import load_clip, load_views
    from vidlstm.io import pyav_backend, read_frames

    torch.set_num_threads(1)
    clips = sorted(make_clip_dir(args.clips).glob("*.mp4"))
    real_up_to = pyav_backend._IndexedWalk.frames_up_to

    def snapped(path):
        return load_clip(path, args.frames, args.size, backends=("pyav",), threads=1, keyframe_snap=True)

    def pushed(path):  # the drain turned off: packets fed until each frame comes out
        pyav_backend._IndexedWalk.frames_up_to = lambda self, target, drain=False: real_up_to(self, target, False)
        try:
            return snapped(path)
        finally:
            pyav_backend._IndexedWalk.frames_up_to = real_up_to

    def centres(path):
        return load_clip(path, args.frames, args.size, backends=("pyav",), threads=1)

    def three_views(path):
        return load_views(path, args.frames, args.size, 3, backends=("pyav",), threads=1)

    def every_frame(path):
        total = pyav_backend.probe(path, threads=1).num_frames
        return read_frames(path, list(range(total)), size=(args.size, args.size), backends=("pyav",), threads=1)

    rows = [("keyframe-aware, decoder drained (shipped)", snapped),
            ("keyframe-aware, packets fed until the frame comes out", pushed),
            ("segment centres (no keyframe awareness), drained", centres),
            ("3 test views at their offsets, one read", three_views),
            ("every frame decoded and converted", every_frame)]
    print(f"{len(clips)} clips of {clips[0].parent}; {args.frames} frames at {args.size} px, PyAV, 1 thread, "
          f"{args.repeats} passes\n")
    print(f"| {'decode':<56} | {'CPU s/clip':>10} | {'vs shipped':>10} |")
    print(f"|{'-' * 58}|{'-' * 12}|{'-' * 12}|")
    reference = None
    for name, decode in rows:
        seconds = cpu_per_clip(clips, decode, 1 if decode is every_frame else args.repeats)
        reference = reference or seconds
        print(f"| {name:<56} | {seconds:>10.3f} | {seconds / reference:>9.2f}x |", flush=True)


if __name__ == "__main__":
    main()
