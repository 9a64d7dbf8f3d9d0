"""Settings a run takes from its data when the user leaves them unset: frames per clip from the clips' lengths,
and whether to undo a moving camera's pan."""
from __future__ import annotations

import json

import numpy as np

from vidlstm.data.stabilize import camera_motion
from vidlstm.errors import VideoDecodeError
from vidlstm.io import probe
from vidlstm.training.decode_jobs import ViewsRequest, decoded_views

MIN_AUTO_FRAMES, MAX_AUTO_FRAMES = 4, 16
PROBED_CLIPS = 32  # evenly spaced over the data set: enough for a median, cheap (demuxing only)


def probed_clips(paths: list) -> list:
    """Up to ``PROBED_CLIPS`` of ``paths``, evenly spaced over the list (all of them where there are fewer)."""
    if not paths:
        return []
    return [paths[int(i)] for i in np.unique(np.linspace(0, len(paths) - 1, min(PROBED_CLIPS, len(paths))).round())]


def auto_num_frames(paths: list, probe_fn=probe) -> tuple[int, dict]:
    """(frames per clip, a note of how it was chosen) for clips at ``paths``.

    Half the frames of the median clip, so that segment sampling still has a choice of frame in every
    segment (temporal jitter) and never repeats a frame, within [4, 16]: 16 for anything of a second or
    more at 30 fps. More frames let the LSTM follow a path traced in the air (8 were too few there);
    past 16 the CNN cost grows while what the clips of a few seconds show does not.
    """
    picked = probed_clips(paths)
    counts = []
    for path in picked:
        try:
            counts.append(int(probe_fn(path, backends=("pyav",)).num_frames))
        except (VideoDecodeError, OSError, ValueError):
            continue  # training will report the file; the others decide
    if not counts:
        return MAX_AUTO_FRAMES, {"rule": "no clip could be probed: the maximum", "num_frames": MAX_AUTO_FRAMES}
    median = float(np.median(counts))
    frames = int(min(MAX_AUTO_FRAMES, max(MIN_AUTO_FRAMES, median // 2)))
    return frames, {"rule": "half the median clip's frames, within [4, 16]", "median_clip_frames": median,
                    "probed_clips": len(counts), "num_frames": frames}


STABILIZE_BAR = 0.005  # the median clip's mean pan, as a share of the frame side (0.24 px at vidnet's 48 px)
STABILIZE_SIZE = 48  # px: the clips are looked at as vidnet sees them (the pan is measured on a 64 px copy anyway)


def auto_stabilize(paths: list, num_frames: int = MAX_AUTO_FRAMES, workers: int = 1) -> tuple[bool, dict]:
    """(whether to undo the camera's pan, a note of how it was chosen) for clips at ``paths``.

    Up to ``PROBED_CLIPS`` clips, evenly spaced, are sampled as evaluation samples them, decoded as training decodes
    (in ``workers`` processes: a decoder that aborts on a damaged file costs that file, not the run), and their
    camera's pan measured (``data.stabilize.camera_motion``: only steps where the whole view moves count). On where
    the median clip's mean pan is at least ``STABILIZE_BAR`` of the frame: measured 0.048 on air-drawn paths filmed
    by a turning head (benchmarks/airdraw.py --shake 2) and 0.011 under its slowly drifting view, 0.000 on pushfit,
    fight, the ASL signs and synthetic motion (still cameras; a signer's hands and a fight do not count as a pan).
    """
    picked = probed_clips(paths)
    # View 0 is the evaluation sampling, which no content hash seeds.
    requests = [ViewsRequest(i, str(path), "0" * 64, num_frames, STABILIZE_SIZE, 1, 1 if workers else 0)
                for i, path in enumerate(picked)]
    motions = [camera_motion(views[0]) for _, views, _ in (decoded_views(requests, workers) if requests else ())
               if views is not None]  # a file that fails is reported by training; the others decide
    if not motions:
        return False, {"rule": "no clip could be read: off", "stabilize": False}
    median = float(np.median(motions))
    on = median >= STABILIZE_BAR
    return on, {"rule": f"on where the median clip's camera pan is at least {STABILIZE_BAR:.1%} of the frame side",
                "median_pan": round(median, 4), "clips": len(motions), "stabilize": on}


def resolve_stabilize(config, paths: list) -> tuple[str, dict | None]:
    """``config.stabilize`` resolved ("on" or "off") and a note of how, or None where the user set it.

    A resumed run keeps what its interrupted run wrote in RUN_DIR/config.json (its cached views were made so)."""
    if config.stabilize != "auto":
        return config.stabilize, None
    if config.resume:
        saved = saved_setting(config.run_dir, "stabilize")
        if saved in ("on", "off"):
            return saved, {"rule": "from the interrupted run's config.json", "stabilize": saved == "on"}
    on, note = auto_stabilize(paths, workers=config.decode_workers)
    return ("on" if on else "off"), note


def resolve_from_data(config, dataset) -> dict:
    """Fill the settings of ``config`` (a TrainConfig) left to the data (a LabelledVideos): frames per clip and
    stabilizing, as `train` and `extract` resolve them; returns a note of each choice for metrics.json."""
    notes = {}
    if config.num_frames is None and not config.init_from:
        config.num_frames, notes["num_frames"] = auto_num_frames([item.path for item in dataset.items])
    if not config.init_from:  # fine-tuning keeps its model's (stages/finetune.py says which)
        config.stabilize, note = resolve_stabilize(config, [item.path for item in dataset.items])
        if note:
            notes["stabilize"] = note
    return notes


def saved_setting(run_dir, key: str):
    """``key`` of the settings an interrupted run saved (RUN_DIR/config.json), or None where unreadable or absent."""
    try:
        return json.loads((run_dir / "config.json").read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None
