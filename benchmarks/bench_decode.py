"""Sparse decoding speed: 16 segment-sampled frames at 112x112 of a 60 s H.264 clip, per decoder.

Each decoder runs in its own process (decord2 installs under the same module name as decord, and a
cold process is what a batch worker is), single-threaded (``threads=1``, as batch workers decode), on
the same clips: 640x480 and 1280x720, keyframes every 2 s (cameras, streaming) and every 10 s
(x264's default keyint=250). Printed: milliseconds per clip (median of 5 after one warm-up read), and
the full sequential read-every-frame that a naive loader does, for scale. The vidlstm.io rows run
``load_clip`` as inference does: exact segment centres, and keyframe-snapped (the keyframe nearest each
segment's centre, inference's default; any frame of a segment is a fair sample, training draws a random
one): a keyframe decodes without decoding the frames before it.
CPU milliseconds are reported besides wall time: with one decoder thread they are what the clip
costs on an idle core, and they stay comparable when other work shares the machine.

    python benchmarks/bench_decode.py [--alt-path DIR]   # DIR: pip --target folders with decord2/torchcodec
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NUM_FRAMES, SIZE, REPEATS = 16, 112, 3

# name -> (how it decodes, extra sys.path folder name under --alt-path or None)
METHODS = {
    "vidlstm.io decord": ("io", "decord", None),
    "vidlstm.io pyav": ("io", "pyav", None),
    "vidlstm.io opencv": ("io", "opencv", None),
    "vidlstm.io decord, keyframe-snapped": ("io_keyframes", "decord", None),
    "vidlstm.io pyav, keyframe-snapped": ("io_keyframes", "pyav", None),
    "decord2 (raw)": ("decord_raw", None, "decord2"),
    "torchcodec (raw)": ("torchcodec_raw", None, "torchcodec"),
    "opencv read all + resize": ("read_all", None, None),
}


def sample_indices(num_frames: int):
    from vidlstm.io.sampling import sample_segment_indices

    return sample_segment_indices(num_frames, NUM_FRAMES)


def _decode_once(kind: str, backend: str | None, path: str):
    """Decode 16 sampled frames of ``path`` at 112x112 the ``kind`` way; returns the frame array shape."""
    if kind in ("io", "io_keyframes"):
        from vidlstm.data.clips import load_clip

        return load_clip(path, NUM_FRAMES, SIZE, backends=(backend,), threads=1,
                         keyframe_snap=kind == "io_keyframes").frames.shape
    if kind == "decord_raw":
        import decord

        reader = decord.VideoReader(path, ctx=decord.cpu(0), width=SIZE, height=SIZE, num_threads=1)
        return reader.get_batch(sample_indices(len(reader)).tolist()).asnumpy().shape
    if kind == "torchcodec_raw":
        import torch
        from torchcodec.decoders import VideoDecoder

        torch.set_num_threads(1)
        decoder = VideoDecoder(path, num_ffmpeg_threads=1, seek_mode="exact")
        batch = decoder.get_frames_at(sample_indices(decoder.metadata.num_frames).tolist()).data  # (T, 3, H, W)
        return torch.nn.functional.interpolate(batch.float(), size=(SIZE, SIZE), mode="area").shape
    if kind == "read_all":
        import cv2

        cv2.setNumThreads(1)
        cap = cv2.VideoCapture(path)
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.resize(frame, (SIZE, SIZE), interpolation=cv2.INTER_AREA))
        cap.release()
        picked = [frames[i] for i in sample_indices(len(frames))]
        return (len(picked),) + picked[0].shape
    raise ValueError(kind)


def worker(kind: str, backend: str | None, paths: list[str]) -> None:
    """Child process: time each clip and print one JSON line."""
    result = {}
    for path in paths:
        _decode_once(kind, backend, path)  # warm-up: imports, codec initialisation, page cache
        wall, cpu = [], []
        for _ in range(REPEATS):
            start, start_cpu = time.perf_counter(), time.process_time()
            shape = _decode_once(kind, backend, path)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        assert tuple(shape)[0] == NUM_FRAMES, shape
        result[path] = [statistics.median(wall), statistics.median(cpu)]
    print(json.dumps(result))


def run_method(name: str, paths: list[Path], alt_path: Path | None) -> dict | str:
    kind, backend, alt = METHODS[name]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    python_path = [str(REPO), str(HERE)]
    if alt:
        if alt_path is None or not (alt_path / alt).is_dir():
            return f"not installed (pip install --target {alt_path or 'DIR'}/{alt} --no-deps {alt})"
        python_path.insert(0, str(alt_path / alt))
    env["PYTHONPATH"] = os.pathsep.join(python_path)
    cmd = [sys.executable, __file__, "--worker", kind, backend or "-", *map(str, paths)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        return f"failed: {lines[-1][:110] if lines else f'exit {proc.returncode}'}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_clips() -> list[tuple[str, Path]]:
    sys.path.insert(0, str(HERE))
    from make_clips import DATA_DIR, FPS, write_h264

    clips = []
    for width, height in ((640, 480), (1280, 720)):
        for keyint in (2, 10):
            path = DATA_DIR / "decode" / f"60s_{width}x{height}_keyint{keyint}s.mp4"
            if not path.exists():
                write_h264(path, 60 * FPS, width, height, seed=7, keyint_seconds=keyint)
            clips.append((f"{width}x{height} key/{keyint}s", path))
    return clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alt-path", type=Path, default=Path("/tmp/altdec"),
                        help="folder holding pip --target installs decord2/ and torchcodec/ (default /tmp/altdec)")
    parser.add_argument("--methods", nargs="*", default=list(METHODS), help="subset of: " + ", ".join(METHODS))
    args = parser.parse_args()
    clips = bench_clips()
    columns = [label for label, _ in clips]
    print(f"sparse decoding, {NUM_FRAMES} frames at {SIZE}x{SIZE}, 1 thread: wall ms / CPU ms per 60 s clip "
          f"(median of {REPEATS})\n")
    print(f"| {'decoder':<32} |" + "".join(f" {c:>20} |" for c in columns))
    print(f"|{'-' * 34}|" + "".join(f"{'-' * 22}|" for _ in columns))
    for name in args.methods:
        result = run_method(name, [p for _, p in clips], args.alt_path)
        if isinstance(result, str):
            print(f"| {name:<32} | {result}")
            continue
        cells = [f"{1000 * result[str(p)][0]:.0f} / {1000 * result[str(p)][1]:.0f}" for _, p in clips]
        print(f"| {name:<32} |" + "".join(f" {c:>20} |" for c in cells), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], None if sys.argv[3] == "-" else sys.argv[3], sys.argv[4:])
    else:
        main()
