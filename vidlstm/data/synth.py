"""Synthetic motion clips whose label lives only in *how things move*: no single frame reveals the class."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from vidlstm.files import atomic_write_text

MOTION_CLASSES = ("left", "right", "up", "down", "grow", "shrink", "clockwise", "anticlockwise")
MARKER = "vidlstm_synth.json"
"""What a synthetic set's folder holds beside its manifest.csv: how the set was drawn (its classes, clips per class,
sizes, seed). ``earlier_set`` knows a set by it, not by how its clips are named (a user's data set named that way was
taken for one and deleted)."""
WRITERS = ("vidlstm synth", "vidlstm demo")
"""Who writes a synthetic set, as its MARKER's ``written_by`` says: `demo --keep` replaces only its own earlier
sets, never one `vidlstm synth` wrote (which may have trained a model); synth replaces either."""
MAX_SIZE = 2160  # frame height, px
MAX_FRAMES = 7200  # frames per clip (5 min at 24 fps)
MAX_CLIP_BYTES = 2 * 2 ** 30  # one clip's frames, drawn in memory
MAX_FPS = 240


@dataclass
class SynthConfig:
    """How `vidlstm synth` draws its clips."""

    per_class: int = 20  # clips per class
    size: int = 96  # frame height; width is size * 4/3 rounded to even
    min_frames: int = 24  # clip length is drawn from [min_frames, max_frames]
    max_frames: int = 48
    fps: float = 25.0
    seed: int = 0
    suffix: str = ".mp4"  # container (H.264 for .mp4)

    def __post_init__(self):
        if self.per_class < 1:
            raise ValueError(f"--per-class must be >= 1 (got {self.per_class})")
        if not 2 <= self.min_frames <= self.max_frames:
            raise ValueError(f"need 2 <= --min-frames <= --max-frames (got {self.min_frames} and {self.max_frames}; "
                             f"--min-frames is 24 unless given)")
        if not 32 <= self.size <= MAX_SIZE:
            raise ValueError(f"--size must be from 32 to {MAX_SIZE} pixels (got {self.size})")
        if self.size % 2:  # the encoder padded it: 33 made 34-pixel frames
            raise ValueError(f"--size must be even, as H.264 frames' sides are (got {self.size})")
        if self.max_frames > MAX_FRAMES:
            raise ValueError(f"--max-frames must be at most {MAX_FRAMES} (got {self.max_frames})")
        clip_bytes = self.max_frames * self.size * frame_width(self.size) * 3
        if clip_bytes > MAX_CLIP_BYTES:  # a clip is drawn whole in memory before it is encoded
            raise ValueError(f"a clip of {self.max_frames} frames at {self.size} px would take "
                             f"{clip_bytes / 2 ** 30:.1f} GiB of memory to draw "
                             f"(at most {MAX_CLIP_BYTES // 2 ** 30} GiB); "
                             f"ask for fewer frames or a smaller size")
        if not (isinstance(self.fps, (int, float)) and math.isfinite(self.fps) and 1 <= self.fps <= MAX_FPS):
            raise ValueError(f"--fps must be a number from 1 to {MAX_FPS} (got {self.fps})")


def frame_width(size: int) -> int:
    """A synthetic clip's frame width for its height ``size``: 4:3, rounded to even (H.264 wants even sides)."""
    return int(round(size * 4 / 3 / 2)) * 2


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A textured background: a random colour gradient plus low-frequency noise and a static distractor."""
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, w)[None, :, None] if rng.random() < 0.5 else np.linspace(0, 1, h)[:, None, None]
    bg = c0 * (1 - ramp) + c1 * ramp + np.zeros((h, w, 3))
    noise = cv2.resize(rng.normal(0, 18, (h // 8 + 1, w // 8 + 1, 3)), (w, h), interpolation=cv2.INTER_CUBIC)
    bg = np.clip(bg * 0.6 + noise, 0, 255).astype(np.uint8)
    # A distractor that never moves: the classifier must ignore static content.
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    cx, cy, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(h // 16 + 2, h // 7 + 3))
    if rng.random() < 0.5:
        cv2.circle(bg, (cx, cy), r, colour, -1, cv2.LINE_AA)
    else:
        cv2.rectangle(bg, (cx - r, cy - r), (cx + r, cy + r), colour, -1, cv2.LINE_AA)
    return bg


def _draw_shape(img, shape: str, centre, radius: float, angle: float, colour) -> None:
    cx, cy = centre
    if shape == "circle":
        cv2.circle(img, (int(round(cx)), int(round(cy))), max(1, int(round(radius))), colour, -1, cv2.LINE_AA)
        return
    sides = {"square": 4, "triangle": 3, "pentagon": 5}[shape]
    pts = [(cx + radius * math.cos(angle + 2 * math.pi * k / sides), cy + radius * math.sin(angle + 2 * math.pi * k / sides))
           for k in range(sides)]
    cv2.fillPoly(img, [np.round(np.array(pts)).astype(np.int32)], colour, cv2.LINE_AA)


def render_clip(label: str, num_frames: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Render one clip of class ``label`` as (T, H, W, 3) uint8 RGB."""
    if label not in MOTION_CLASSES:
        raise ValueError(f"unknown synthetic class {label!r}; choose from {', '.join(MOTION_CLASSES)}")
    bg = _background(rng, height, width)
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    shape = str(rng.choice(["circle", "square", "triangle", "pentagon"]))
    base_r = height * rng.uniform(0.10, 0.16)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    # Translation: travel 35-70% of the frame along the axis, from a random start that keeps it in view.
    travel = rng.uniform(0.35, 0.7)
    span_x, span_y = width - 2 * base_r, height - 2 * base_r
    start_x = base_r + rng.uniform(0, 1) * span_x
    start_y = base_r + rng.uniform(0, 1) * span_y
    if label in ("left", "right"):
        d = travel * span_x
        x0 = base_r + rng.uniform(0, span_x - d)
        xs = np.linspace(x0, x0 + d, num_frames)
        xs = xs if label == "right" else xs[::-1]
        ys = np.full(num_frames, start_y) + rng.normal(0, 0.5, num_frames)
    elif label in ("up", "down"):
        d = travel * span_y
        y0 = base_r + rng.uniform(0, span_y - d)
        ys = np.linspace(y0, y0 + d, num_frames)
        ys = ys if label == "down" else ys[::-1]
        xs = np.full(num_frames, start_x) + rng.normal(0, 0.5, num_frames)
    else:
        cx = width * rng.uniform(0.3, 0.7)
        cy = height * rng.uniform(0.3, 0.7)
        xs, ys = np.full(num_frames, cx), np.full(num_frames, cy)
    radii = np.full(num_frames, base_r)
    if label in ("grow", "shrink"):
        r_small, r_big = height * rng.uniform(0.05, 0.09), height * rng.uniform(0.2, 0.3)
        radii = np.linspace(r_small, r_big, num_frames)
        radii = radii if label == "grow" else radii[::-1]
    angle0 = rng.uniform(0, 2 * math.pi)
    angles = np.full(num_frames, angle0)
    if label in ("clockwise", "anticlockwise"):
        sweep = rng.uniform(0.6, 1.4) * math.pi  # image y points down, so +angle turns clockwise on screen
        angles = angle0 + np.linspace(0, sweep if label == "clockwise" else -sweep, num_frames)
    for t in range(num_frames):
        img = bg.copy()
        if label in ("clockwise", "anticlockwise"):
            # An arm with a knob at its tip: rotation is visible whatever the object's symmetry.
            r = height * 0.3
            tip = (xs[t] + r * math.cos(angles[t]), ys[t] + r * math.sin(angles[t]))
            cv2.line(img, (int(xs[t]), int(ys[t])), (int(tip[0]), int(tip[1])), colour, max(2, height // 16), cv2.LINE_AA)
            _draw_shape(img, "circle", tip, height * 0.09, 0.0, colour)
        else:
            _draw_shape(img, shape, (xs[t], ys[t]), radii[t], angles[t], colour)
        frames[t] = img
    # Sensor noise, so that frames are never pixel-identical and codecs see texture.
    noise = rng.normal(0, 2, frames.shape)
    return np.clip(frames + noise, 0, 255).astype(np.uint8)


def manifest_rows(classes, per_class: int, suffix: str = ".mp4") -> list[tuple[str, str]]:
    """The (path, label) rows of a synthetic set's manifest.csv, in the order its clips are drawn."""
    return [(f"{label}/{label}_{i:03d}{suffix}", label) for i in range(per_class) for label in classes]


def generate_dataset(out_dir, config: SynthConfig | None = None, classes=MOTION_CLASSES,
                     written_by: str = WRITERS[0]) -> Path:
    """Write ``out_dir/<class>/<class>_NNN.mp4`` for every class, a ``manifest.csv`` (path,label) and MARKER (which
    names ``written_by``, one of WRITERS)."""
    from vidlstm.io.encode import write_video

    config = config or SynthConfig()
    out_dir = Path(out_dir)
    rng = np.random.default_rng(config.seed)
    height = config.size
    width = frame_width(config.size)
    rows = manifest_rows(classes, config.per_class, config.suffix)
    # The marker and manifest first: a set interrupted half-way is still known as synth's own, and replaced by the
    # next run.
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / MARKER, json.dumps({"written_by": written_by, "classes": list(classes),
                                                    **asdict(config)}, indent=1) + "\n")
    manifest = io.StringIO()
    writer = csv.writer(manifest)
    writer.writerow(["path", "label"])
    writer.writerows(rows)
    atomic_write_text(out_dir / "manifest.csv", manifest.getvalue(), newline="")  # whole, or not there
    for path, label in rows:
        n = int(rng.integers(config.min_frames, config.max_frames + 1))
        write_video(out_dir / path, render_clip(label, n, height, width, rng), fps=config.fps)
    return out_dir


def earlier_set(folder, writers=WRITERS) -> set[str] | None:
    """The clips of the synthetic set in ``folder``, as its manifest.csv lists them (none where it was stopped before
    the manifest was written), or None where the folder holds no synthetic set. A set is known by its MARKER, whose
    classes and clips per class write exactly its manifest.csv; a set written before the marker, by a manifest that
    is exactly what `vidlstm synth` wrote then: every motion class in its order, CLASS/CLASS_NNN.mp4 from 000, the
    classes in turn for each number (a data set of the user's is not listed so; a `demo --keep` of fewer classes is
    no longer known, and is left to the user). Only a set one of ``writers`` wrote (one before the marker: synth's)."""
    folder = Path(folder)
    rows = _manifest(folder / "manifest.csv")
    drawn = _drawn(folder / MARKER)
    if drawn is not None:
        classes, per_class, suffix, writer = drawn
        if writer not in writers:
            return None
        if rows is _ABSENT:
            return set()
        if rows is None or len(rows) != per_class * len(classes) or rows != manifest_rows(classes, per_class, suffix):
            return None
    elif WRITERS[0] not in writers or not isinstance(rows, list) or not rows or len(rows) % len(MOTION_CLASSES) or \
            rows != manifest_rows(MOTION_CLASSES, len(rows) // len(MOTION_CLASSES)):
        return None
    return {os.path.normpath(path) for path, _ in rows}


_ABSENT = object()


def _manifest(path: Path):
    """A manifest.csv's (path, label) rows after a ``path,label`` header; _ABSENT where there is no such file; None
    where it is no manifest synth writes (unreadable, another header, rows of other widths)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [tuple(row) for row in csv.reader(f)]
    except FileNotFoundError:
        return _ABSENT
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    if not rows or rows[0] != ("path", "label") or any(len(row) != 2 for row in rows[1:]):
        return None
    return rows[1:]


def _drawn(path: Path) -> tuple[tuple[str, ...], int, str, str] | None:
    """(classes, clips per class, suffix, writer) from a synthetic set's MARKER, or None where there is none or it is
    not one synth writes (one of WRITERS wrote it; its classes are motion classes, each once)."""
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(settings, dict) or settings.get("written_by") not in WRITERS:
        return None
    classes, per_class, suffix = settings.get("classes"), settings.get("per_class"), settings.get("suffix")
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) and c in MOTION_CLASSES for c in classes)
            and len(set(classes)) == len(classes)):
        return None
    if type(per_class) is not int or per_class < 1 or not (isinstance(suffix, str) and
                                                           re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix)):
        return None
    return tuple(classes), per_class, suffix, settings["written_by"]
