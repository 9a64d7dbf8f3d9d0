"""A stand-in for egocentric air-drawn hand gestures, the task issue 9 measured and we have no clips of.

    python benchmarks/airdraw.py OUT_DIR [--per-class 26] [--seed 0] [--shake 0]

A forearm reaches in from the bottom of the frame and its fingertip traces one of ten paths (circles both ways, a
square, a triangle, a Z, a check mark, a zigzag, an S, a figure of eight, an arrow up) over a still frame of a real
clip of ../shared/data (fight and pushfit), as a head-mounted camera films it: the view drifts, the light changes,
and every clip draws its own size, slant, place, speed profile, skin tone, sleeve and idle frames before and after.
The label is the path alone. Each clip's ``group`` is the real clip its background came from, so group-aware folds
keep every scene on one side, as a test set recorded elsewhere would (`bench_accuracy.py --datasets airdraw`).
``--shake S`` turns the head instead: the view, arm and all, pans at about S px per frame
(`--datasets airdraw-shake`, S = 2).
Writes OUT_DIR/<path>/<path>_NNN.mp4 and OUT_DIR/manifest.csv (path,label,group; absolute paths).
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vidlstm.data.datasets import VideoItem, write_manifest  # noqa: E402
from vidlstm.io import probe, read_frames  # noqa: E402
from vidlstm.io.encode import write_video  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
HEIGHT, WIDTH, FPS = 240, 320, 30.0
SOURCES = 48  # real clips lending backgrounds (the groups)


def _polyline(points, n: int = 200) -> np.ndarray:
    """``n`` points evenly spaced along the polyline through ``points``."""
    pts = np.asarray(points, float)
    along = np.r_[0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
    u = np.linspace(0, along[-1], n)
    return np.stack([np.interp(u, along, pts[:, 0]), np.interp(u, along, pts[:, 1])], 1)


def _circle(clockwise: bool, n: int = 200) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n) * (1 if clockwise else -1) - math.pi / 2  # image y points down
    return np.stack([np.cos(t), np.sin(t)], 1)


_T = np.linspace(0, 2 * math.pi, 200)
PATHS = {  # unit-sized paths, x to the right, y down, in drawing order
    "circle_cw": _circle(True),
    "circle_acw": _circle(False),
    "square": _polyline([(-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1)]),
    "triangle": _polyline([(0, -1), (1, 1), (-1, 1), (0, -1)]),
    "zed": _polyline([(-1, -1), (1, -1), (-1, 1), (1, 1)]),
    "check": _polyline([(-1, 0), (-0.3, 1), (1, -1)]),
    "zigzag": _polyline([(-1, -1), (-0.5, 1), (0, -1), (0.5, 1), (1, -1)]),
    "ess": np.stack([0.8 * np.sin(_T) * np.r_[np.ones(100), -np.ones(100)], np.linspace(-1, 1, 200)], 1),
    "infinity": np.stack([np.sin(_T), 0.6 * np.sin(2 * _T)], 1),
    "arrow_up": _polyline([(0, 1), (0, -1), (-0.6, -0.4), (0, -1), (0.6, -0.4)]),
}


def backgrounds(seed: int, per_source: int = 3) -> list[tuple[str, np.ndarray]]:
    """(source clip name, 300x400 frame) pairs: ``per_source`` still frames of each of ``SOURCES`` real clips."""
    paths = []
    for name in ("fight", "pushfit"):
        folder = SHARED / name
        if not (folder / "MANIFEST.tsv").is_file():
            raise SystemExit(f"{folder}: not here (the backgrounds come from the real clips in ../shared/data)")
        with open(folder / "MANIFEST.tsv", newline="") as f:
            paths += [folder / row["path"] for row in csv.DictReader(f, delimiter="\t")]
    rng = np.random.default_rng(seed)
    out = []
    for path in rng.permutation(np.array(paths, dtype=object))[:SOURCES]:
        info = probe(path)
        indices = np.linspace(0, info.num_frames - 1, per_source + 2)[1:-1].astype(int)
        frames = read_frames(path, indices, size=(HEIGHT + 60, WIDTH + 80), info=info).frames
        out += [(f"{path.parent.name}/{path.stem}", frame) for frame in frames]
    return out


def fingertip_path(label: str, num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """(num_frames, 2) pixel positions of the fingertip: enter, trace ``label``'s path at a varying speed, rest."""
    path = PATHS[label]
    turn = rng.normal(0, 0.2)
    path = path @ np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]]).T
    path = path * rng.uniform(0.8, 1.25, 2)  # stretched a little, each way
    scale = HEIGHT * rng.uniform(0.18, 0.32)
    centre = np.array([WIDTH * rng.uniform(0.35, 0.65), HEIGHT * rng.uniform(0.35, 0.6)])
    before, after = int(rng.integers(3, 15)), int(rng.integers(3, 15))
    drawing = max(8, num_frames - before - after)
    progress = np.cumsum(rng.uniform(0.4, 1.6, drawing))  # an uneven speed
    progress = (progress - progress[0]) / (progress[-1] - progress[0]) * (len(path) - 1)
    traced = np.stack([np.interp(progress, np.arange(len(path)), path[:, i]) for i in (0, 1)], 1)
    traced = centre + scale * traced + rng.normal(0, 1.0, traced.shape)
    entry = np.array([WIDTH * rng.uniform(0.5, 1.0), HEIGHT * 1.2])  # the hand comes up from below
    reach = [entry + (traced[0] - entry) * (i + 1) / (before + 1) for i in range(before)]
    rest = np.repeat(traced[-1:], max(0, num_frames - before - drawing), 0)
    return np.concatenate([np.array(reach).reshape(-1, 2), traced, rest])[:num_frames]


def _head(num_frames: int, shake: float, rng: np.random.Generator) -> np.ndarray:
    """(T, 2) top-left corners of the view in the 300x400 background.

    ``shake`` 0: a slow drift (a random walk of 1.2 px per frame). Otherwise the head turns: a smooth velocity
    (AR(1), 0.9 carried over) whose per-frame speed has std ``shake`` px, bouncing off the background's edges.
    """
    if not shake:
        return np.clip(np.cumsum(rng.normal(0, 1.2, (num_frames, 2)), 0) + [40, 30], 0, [80, 60])
    limit, pos, velocity, out = np.array([80.0, 60.0]), rng.uniform(0, [80, 60]), np.zeros(2), []
    for _ in range(num_frames):
        velocity = 0.9 * velocity + rng.normal(0, shake * math.sqrt(1 - 0.81), 2)
        pos = pos + velocity
        for axis in range(2):  # bounce
            if not 0 <= pos[axis] <= limit[axis]:
                pos[axis] = float(np.clip(2 * np.clip(pos[axis], 0, limit[axis]) - pos[axis], 0, limit[axis]))
                velocity[axis] = -velocity[axis]
        out.append(pos.copy())
    return np.array(out)


def render(label: str, background: np.ndarray, rng: np.random.Generator, shake: float = 0.0) -> np.ndarray:
    """One clip (T, H, W, 3) uint8 RGB of a forearm tracing ``label``'s path in front of ``background``."""
    num_frames = int(rng.integers(45, 91))
    tips = fingertip_path(label, num_frames, rng)
    if rng.random() < 0.5:
        background = background[:, ::-1]
    shoulder = np.array([WIDTH * rng.uniform(0.55, 0.95), HEIGHT * 1.15])
    skin = tuple(float(v) for v in (rng.uniform(150, 240), rng.uniform(100, 180), rng.uniform(70, 150)))
    sleeve = tuple(int(v) for v in rng.integers(0, 256, 3))
    view = _head(num_frames, shake, rng)
    light = 1 + np.cumsum(rng.normal(0, 0.01, num_frames))
    frames = np.empty((num_frames, HEIGHT, WIDTH, 3), np.uint8)
    for t, tip in enumerate(tips):
        dx, dy = view[t].astype(int)
        img = np.ascontiguousarray(background[dy:dy + HEIGHT, dx:dx + WIDTH])
        # a turning head moves the arm in the frame as much as the scene (a rotation shifts near and far alike)
        turn = view[t] - view[0] if shake else 0.0
        tip, root = tip - turn, shoulder - turn
        along = (tip - root) / (np.linalg.norm(tip - root) + 1e-6)
        across = np.array([-along[1], along[0]])
        wrist = tip - along * HEIGHT * 0.22
        arm = np.array([root + across * HEIGHT * 0.11, wrist + across * HEIGHT * 0.077,
                        wrist - across * HEIGHT * 0.077, root - across * HEIGHT * 0.11])
        cv2.fillPoly(img, [np.round(arm).astype(np.int32)], sleeve, cv2.LINE_AA)
        palm = tuple(int(v) for v in np.round(wrist + along * HEIGHT * 0.04))
        cv2.ellipse(img, palm, (int(HEIGHT * 0.07), int(HEIGHT * 0.07)), math.degrees(math.atan2(along[1], along[0])),
                    0, 360, skin, -1, cv2.LINE_AA)
        finger = (tuple(int(v) for v in np.round(wrist)), tuple(int(v) for v in np.round(tip)))
        cv2.line(img, *finger, skin, max(3, int(HEIGHT * 0.03)), cv2.LINE_AA)
        cv2.circle(img, finger[1], max(2, int(HEIGHT * 0.018)), tuple(v * 0.9 for v in skin), -1, cv2.LINE_AA)
        frames[t] = np.clip(img * light[t] + rng.normal(0, 2, img.shape), 0, 255)
    return frames


def generate(out_dir: Path, per_class: int = 26, seed: int = 0, shake: float = 0.0) -> Path:
    """Write the clips and OUT_DIR/manifest.csv (``datasets.write_manifest``); returns the manifest."""
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    scenes = backgrounds(seed)
    items = []
    for i in range(per_class):
        for label in PATHS:
            source, background = scenes[int(rng.integers(len(scenes)))]
            path = out_dir / label / f"{label}_{i:03d}.mp4"
            write_video(path, render(label, background, rng, shake), fps=FPS)
            items.append(VideoItem(path, label, group=source))
    return write_manifest(out_dir / "manifest.csv", items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--per-class", type=int, default=26)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shake", type=float, default=0.0,
                        help="the head turns at about this many px per frame (std) instead of drifting")
    args = parser.parse_args()
    print(generate(args.out_dir, args.per_class, args.seed, args.shake))


if __name__ == "__main__":
    main()
