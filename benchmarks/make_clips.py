"""Generate (and cache) the benchmark videos: H.264 clips of 5-60 s at 320x240 to 1280x720, and long videos.

Content is a panning textured background with moving blocks, so every frame carries motion and detail
like camera footage (a static synthetic frame would make decoding unrealistically cheap). Keyframes
every 2 s (x264 ``keyint``), as phones, cameras and streaming encoders write them.

    python benchmarks/make_clips.py            # writes benchmarks/.data/clips/*.mp4
"""
from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / ".data"
DURATIONS = (5, 10, 20, 30, 45, 60)  # seconds
SIZES = ((320, 240), (640, 360), (640, 480), (1280, 720))  # (width, height)
FPS = 25


def _texture(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random RGB texture twice the frame size (panned across to fake camera motion)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 8 + 2, width // 8 + 2, 3), dtype=np.uint8)
    import cv2

    big = cv2.resize(coarse, (2 * width, 2 * height), interpolation=cv2.INTER_CUBIC)
    fine = rng.integers(0, 24, big.shape, dtype=np.uint8)
    return cv2.add(big, fine)  # (2H, 2W, 3)


def synthetic_frames(num_frames: int, height: int, width: int, seed: int = 0):
    """Yield ``num_frames`` (H, W, 3) uint8 frames: panning texture plus two moving blocks."""
    texture = _texture(height, width, seed)
    side = max(8, min(height, width) // 5)
    for t in range(num_frames):
        dy = int((height / 2) * (1 + np.sin(t / 90.0)))
        dx = int((width / 2) * (1 + np.cos(t / 130.0)))
        frame = texture[dy:dy + height, dx:dx + width].copy()
        x = int((width - side) * (0.5 + 0.5 * np.sin(t / 17.0)))
        y = int((height - side) * (0.5 + 0.5 * np.cos(t / 23.0)))
        frame[y:y + side, x:x + side] = (255, 255, 255)
        frame[height - y - side:height - y, width - x - side:width - x] = (20, 20, 200)
        yield frame


def write_h264(path: Path, num_frames: int, width: int, height: int, fps: int = FPS, seed: int = 0,
               keyint_seconds: float = 2.0, preset: str = "veryfast") -> Path:
    """Encode synthetic frames one at a time (a 60 s 720p clip never sits in memory) to H.264."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    _ignore_in_git(path.parent)
    tmp = path.with_name(path.name + ".part.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        keyint = max(1, int(round(keyint_seconds * fps)))
        stream.options = {"crf": "23", "preset": preset, "x264-params": f"keyint={keyint}:min-keyint={keyint}"}
        for frame in synthetic_frames(num_frames, height, width, seed):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)  # only complete files get the final name, so the cache never holds a torn clip
    return path


def _ignore_in_git(folder: Path) -> None:
    # Generated data stays out of git without touching the project's .gitignore.
    marker = DATA_DIR / ".gitignore"
    if folder.resolve().is_relative_to(DATA_DIR) and not marker.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        marker.write_text("*\n")


def clip_specs(count: int):
    """(name, seconds, width, height) of the benchmark clips: every duration meets several sizes."""
    for i in range(count):
        seconds = DURATIONS[i % len(DURATIONS)]
        width, height = SIZES[(i + i // len(DURATIONS)) % len(SIZES)]
        yield f"clip{i:02d}_{seconds}s_{width}x{height}.mp4", seconds, width, height


def make_clip_dir(count: int = 12, root: Path = DATA_DIR) -> Path:
    """The benchmark clip directory (made once, then reused)."""
    folder = root / f"clips{count}"
    for i, (name, seconds, width, height) in enumerate(clip_specs(count)):
        if not (folder / name).exists():
            write_h264(folder / name, seconds * FPS, width, height, seed=i)
    return folder


def make_long_video(minutes: float, root: Path = DATA_DIR, width: int = 320, height: int = 240) -> Path:
    """A ``minutes``-long 320x240 H.264 video (made once, then reused)."""
    path = root / f"long_{minutes:g}min_{width}x{height}.mp4"
    if not path.exists():
        write_h264(path, int(minutes * 60 * FPS), width, height, seed=99, preset="ultrafast")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=12, help="benchmark clips (default 12)")
    parser.add_argument("--long", action="store_true", help="also make the 1- and 60-minute videos")
    args = parser.parse_args()
    print(make_clip_dir(args.count))
    if args.long:
        print(make_long_video(1))
        print(make_long_video(60))


if __name__ == "__main__":
    main()
