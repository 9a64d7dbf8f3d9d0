"""Does every backend hand back the frame asked for? Sparse reads against a front-to-back decode, per file.

For each video of the decode corpus (``../shared/data/videos``, or the files given), the reference is every
frame decoded in order by plain PyAV, turned upright by its display matrix and shrunk to 64x64. Each backend
(and thread count) then reads ~11 spread-out frames, seeking as it would in use; a frame is wrong when a
reference frame other than its own index is closer to it and differs from that index's frame by more than
half a grey level (frames that repeat are not told apart). Prints one row per file and a summary line.

    .venv/bin/python benchmarks/frame_accuracy.py                 # the whole corpus (a few minutes)
    .venv/bin/python benchmarks/frame_accuracy.py a.avi b.mp4     # these files
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vidlstm.errors import VideoDecodeError  # noqa: E402
from vidlstm.io import available_backends, read_frames  # noqa: E402
from vidlstm.io.info import is_video_name  # noqa: E402

CORPUS = REPO.parent / "shared" / "data" / "videos"
SIZE = (64, 64)
MAX_FRAMES = 2000  # longer files are left out: the reference holds every frame


def shrink(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(frame, SIZE[::-1], interpolation=cv2.INTER_AREA).astype(np.float32)


def reference_frames(path: Path) -> np.ndarray:
    """(N, 64, 64, 3) float32: every frame in decode order, upright."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = []
        for frame in container.decode(stream):
            frames.append(shrink(np.rot90(frame.to_ndarray(format="rgb24"), k=frame.rotation // 90)))
            if len(frames) > MAX_FRAMES:
                raise ValueError(f"more than {MAX_FRAMES} frames")
    if not frames:
        raise ValueError("no frames")
    return np.stack(frames)


def wrong_frames(frames: np.ndarray, indices: list[int], reference: np.ndarray) -> list[tuple[int, int]]:
    """(asked, closest) for each frame closer to another reference frame than to its own."""
    wrong = []
    for frame, index in zip(frames, indices):
        distances = np.abs(reference - shrink(frame)[None]).mean(axis=(1, 2, 3))  # (N,)
        closest = int(np.argmin(distances))
        if closest != index and np.abs(reference[closest] - reference[index]).mean() > 0.5:
            wrong.append((index, closest))
    return wrong


def check(path: Path, backends: tuple[str, ...], threads: tuple[int, ...]) -> tuple[str, dict]:
    """(note, {(backend, threads): "ok" | "WRONG ..." | "error: ..."}) for one file."""
    try:
        reference = reference_frames(path)
    except (av.error.FFmpegError, ValueError, IndexError) as err:
        return f"no reference ({str(err)[:60]})", {}
    count = len(reference)
    indices = sorted(set(np.linspace(0, count - 1, 9).round().astype(int).tolist()
                         + [min(count - 1, count // 3 + 1), min(count - 1, count // 2 + 3)]))
    results = {}
    for backend in backends:
        for thread_count in threads:
            try:
                frames = read_frames(path, indices, size=None, backends=(backend,), threads=thread_count).frames
            except VideoDecodeError as err:
                results[backend, thread_count] = f"error: {err.reason[:50]}"
                continue
            wrong = wrong_frames(frames, indices, reference)
            results[backend, thread_count] = "ok" if not wrong else "WRONG " + " ".join(f"{a}->{b}" for a, b in wrong[:3])
    return f"{count} frames", results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path, help=f"videos to check (default: every video under {CORPUS})")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 0], help="decoder thread counts (default 1 0)")
    args = parser.parse_args(argv)
    files = args.files or sorted(p for p in CORPUS.rglob("*") if p.is_file() and is_video_name(p.name))
    if not files:
        raise SystemExit(f"{CORPUS}: no videos (the decode corpus lives in ../shared/data/videos)")
    backends, threads = available_backends(), tuple(dict.fromkeys(args.threads))
    columns = [(b, t) for b in backends for t in threads]
    print("| file | frames | " + " | ".join(f"{b} threads={t}" for b, t in columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    wrong = errors = checked = 0
    for path in files:
        note, results = check(path, backends, threads)
        name = path.relative_to(CORPUS) if path.is_relative_to(CORPUS) else path
        print(f"| {name} | {note} | " + " | ".join(results.get(c, "") for c in columns) + " |", flush=True)
        checked += len(results)
        wrong += sum(value.startswith("WRONG") for value in results.values())
        errors += sum(value.startswith("error") for value in results.values())
    print(f"\n{checked} reads of {len(files)} files (backends {', '.join(backends)}): {checked - wrong - errors} "
          f"right, {wrong} with a wrong frame, {errors} refused with an error")
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
