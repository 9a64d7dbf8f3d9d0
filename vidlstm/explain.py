"""Which frames mattered: per-video attention/probability JSON and a PNG strip (top frames above a timeline)."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from vidlstm.errors import UsageError, VidlstmError, replaced_bytes
from vidlstm.files import atomic_write, atomic_write_text, without_glyph_warnings

EXPLANATION_VERSION = 1
TOP_CLASSES = 3  # classes whose per-step probabilities are kept and plotted
TOP_FRAMES = 6  # thumbnails in the strip
STRIP_SIZE_INCHES = (12.0, 6.0)
STRIP_DPI = 100  # the PNG is exactly STRIP_SIZE_INCHES * STRIP_DPI pixels: 1200 x 600
STRIP_SIZE_PX = (int(STRIP_SIZE_INCHES[0] * STRIP_DPI), int(STRIP_SIZE_INCHES[1] * STRIP_DPI))
WEIGHT_WORDS = {"attention": ("attention", "attention weight"),
                "leave-one-out": ("frame's share of the score", "share of the read-out's score (frame left out)")}
"""The strip's legend and axis for each kind of per-frame weight (an explanation's ``weights``)."""
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


_CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f]")


def explanation_stem(path) -> str:
    """A file-name stem for ``path``'s explanation: readable video name + hash of the absolute path.

    The hash keeps two ``clip.mp4`` in different folders apart; the same video always gets the same
    name, so a resumed or repeated run overwrites its own files instead of piling up copies.
    """
    name = _UNSAFE_NAME_CHARS.sub("_", Path(path).stem).strip("._")[:60] or "video"
    digest = hashlib.sha1(str(Path(path).resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{name}-{digest}"


def build_explanation(path, clip, scores, labels, top_classes: int = TOP_CLASSES,
                      top_frames: int = TOP_FRAMES) -> dict:
    """The JSON-ready explanation of one scored clip (``Clip`` + ``ClipScores``); no files are written."""
    probs = np.asarray(scores.probs, dtype=np.float64)  # (C,)
    attention = np.asarray(scores.attention, dtype=np.float64)  # (T,)
    step_probs = np.asarray(scores.step_probs, dtype=np.float64)  # (T, C)
    timestamps = np.asarray(clip.timestamps, dtype=np.float64)  # (T,) seconds
    indices = np.asarray(clip.indices, dtype=np.int64)  # (T,)
    if not (len(attention) == len(step_probs) == len(timestamps) == len(indices)):
        raise VidlstmError(f"{path}: explanation needs one attention weight, step and timestamp per frame "
                           f"(got {len(attention)}, {len(step_probs)}, {len(timestamps)}, {len(indices)})")
    classes = [int(c) for c in np.argsort(-probs, kind="stable")[: max(1, top_classes)]]
    frames = [{
        "position": t,
        "frame_index": int(indices[t]),
        "timestamp": round(float(timestamps[t]), 4),
        "attention": round(float(attention[t]), 6),
        "step_probs": {labels[c]: round(float(step_probs[t, c]), 6) for c in classes},
    } for t in range(len(indices))]
    info = clip.info
    return {
        "version": EXPLANATION_VERSION,
        "path": str(path),
        "label": labels[classes[0]],
        "score": round(float(probs[classes[0]]), 6),
        "top_classes": [{"label": labels[c], "score": round(float(probs[c]), 6)} for c in classes],
        "fps": float(info.fps) if info.fps else None,
        "duration": round(float(info.duration), 4) if info.duration else None,
        "frames": frames,
        # What each frame's "attention" is: the BiLSTM's attention pooling, or where the label comes from a statistics
        # read-out (which that pooling does not decide), how much the frame adds to its score ("leave-one-out").
        "weights": getattr(scores, "weights", "attention"),
        # Positions of the most attended frames, highest weight first (ties: earlier frame first).
        "top_frames": [int(t) for t in np.argsort(-attention, kind="stable")[: max(1, top_frames)]],
    }


def _literal(text: str) -> str:
    """Text matplotlib shows as written: a file or label with two ``$`` would otherwise be parsed as math; bytes of a
    name that are not UTF-8 (surrogate escapes, which matplotlib refuses) and control characters (tabs, newlines:
    no glyph) show as U+FFFD."""
    return _CONTROL_CHARS.sub("\ufffd", replaced_bytes(text)).replace("$", r"\$")


def _bar_width(timestamps: np.ndarray) -> float:
    """Attention bars as wide as 80% of the typical gap between sampled frames."""
    gaps = np.diff(np.unique(timestamps))
    return 0.8 * float(np.median(gaps)) if len(gaps) else 0.1


def write_strip_png(explanation: dict, frames: np.ndarray, png_path) -> Path:
    """Draw the top-attention thumbnails (time order, with timestamp and weight) above the timeline plot.

    ``frames`` is the clip's (T, H, W, 3) uint8 RGB. The figure is built without pyplot (no global state,
    no display needed) and saved at a fixed size: STRIP_SIZE_PX.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = explanation["frames"]
    times = np.array([s["timestamp"] for s in steps])  # (T,)
    weights = np.array([s["attention"] for s in steps])  # (T,)
    shown = sorted(explanation["top_frames"])  # thumbnails read left to right in time
    fig = Figure(figsize=STRIP_SIZE_INCHES, dpi=STRIP_DPI)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, len(shown), height_ratios=(1.0, 1.3), hspace=0.35, left=0.06, right=0.94,
                            top=0.9, bottom=0.1)
    for column, t in enumerate(shown):
        ax = fig.add_subplot(grid[0, column])
        ax.imshow(frames[t])
        ax.set_title(f"t={times[t]:.2f}s  w={weights[t]:.3f}", fontsize=9)
        ax.set_axis_off()
    timeline = fig.add_subplot(grid[1, :])
    bars = timeline.twinx()
    kind = WEIGHT_WORDS.get(explanation.get("weights", "attention"), WEIGHT_WORDS["attention"])
    bars.bar(times, weights, width=_bar_width(times), color="0.75", alpha=0.7, label=kind[0])
    bars.bar(times[shown], weights[shown], width=_bar_width(times), color="tab:orange", alpha=0.7,
             label="top frames")
    bars.set_ylabel(kind[1])
    bars.set_ylim(0, max(float(weights.max()) * 1.15, 1e-6))
    # Lines over the bars: the bar axes go behind the probability axes.
    timeline.set_zorder(bars.get_zorder() + 1)
    timeline.patch.set_visible(False)
    for entry in explanation["top_classes"]:
        label = entry["label"]
        timeline.plot(times, [s["step_probs"][label] for s in steps], marker="o", ms=3,
                      label=_literal(f"{label} ({entry['score']:.2f})"))
    timeline.set(xlabel="time (s)", ylabel="per-step probability", ylim=(0, 1.02))
    timeline.grid(alpha=0.3)
    timeline.legend(loc="upper left", fontsize=8)
    bars.legend(loc="upper right", fontsize=8)
    video = Path(explanation["path"])
    shown_name = f"{video.parent.name}/{video.name}" if video.parent.name else video.name
    fig.suptitle(_literal(f"{shown_name}: {explanation['label']} ({explanation['score']:.2f})"), fontsize=11)
    png_path = Path(png_path)
    # A kill mid-write must not leave a half file that a later report would embed.
    with without_glyph_warnings():
        atomic_write(png_path, lambda tmp: fig.savefig(tmp, dpi=STRIP_DPI, format="png"))
    return png_path


def prepare_explain_dir(out_dir) -> Path:
    """The --explain folder, created if needed; a path that cannot be a folder is a usage error."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{out_dir}: cannot create the --explain folder ({err.strerror})") from None
    return out_dir


def explain_clip(path, clip, scores, labels, out_dir, top_classes: int = TOP_CLASSES,
                 top_frames: int = TOP_FRAMES) -> dict:
    """Write ``<name>-<hash>.json`` and ``.png`` for one scored clip into ``out_dir``.

    Returns what to add to the video's prediction record: ``{"explanation": "<path of the JSON>"}``
    (the JSON names its PNG under "strip").
    """
    out_dir = prepare_explain_dir(out_dir)
    stem = explanation_stem(path)
    explanation = build_explanation(path, clip, scores, labels, top_classes, top_frames)
    explanation["strip"] = f"{stem}.png"
    png_path = write_strip_png(explanation, clip.frames, out_dir / explanation["strip"])
    json_path = out_dir / f"{stem}.json"
    try:
        atomic_write_text(json_path, json.dumps(explanation, indent=1) + "\n")
    except BaseException:
        png_path.unlink(missing_ok=True)  # no strip without the JSON that names it
        raise
    return {"explanation": str(json_path)}
