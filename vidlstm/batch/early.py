"""Start decoding before the model (and torch) loads, so a cold `vidlstm classify` overlaps the two.

Importing torch takes ~2-3 s on a small CPU; a decode worker needs none of it. Reading only the model
folder's config.json (frames per clip, image size) is enough to start the worker and queue the files,
and by the time the model is ready the first clip usually is too. This module must not import torch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vidlstm.batch.decode import DecodeRequest, build_requests
from vidlstm.batch.pool import DecodePool
from vidlstm.defaults import snaps_to_keyframes
from vidlstm.limits import clip_size_error, int_range_error

MAX_CONFIG_BYTES = 1 << 20  # a real config.json is ~1 KB; a bigger one is left to model loading to report


@dataclass
class EarlyDecoding:
    """A started decode pool with ``requests`` already queued (the engine uses it only if they are the ones
    it would build for the loaded model)."""

    source: DecodePool
    requests: list[DecodeRequest]

    def close(self) -> None:
        self.source.close()


def start_early_decoding(model_dir, paths, *, exact_frames: bool = False, backends=None,
                         timeout: float = 60.0) -> EarlyDecoding | None:
    """One decode worker already working on ``paths``; None where config.json cannot be read.

    A missing or broken model folder is not reported here: loading the model reports it, with its
    own clear message, and the caller then closes nothing (None). Sizes out of vidlstm.limits' ranges
    count as broken: a worker must not allocate what config.json merely claims.
    """
    if model_dir is None:
        from vidlstm.defaults import default_model_dir

        model_dir = default_model_dir()
    try:
        path = Path(model_dir) / "config.json"
        if path.stat().st_size > MAX_CONFIG_BYTES:
            return None
        config = json.loads(path.read_text())
        num_frames, image_size, views = config["num_frames"], config["image_size"], config.get("test_views", 1)
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    if (int_range_error("num_frames", num_frames) or int_range_error("image_size", image_size)
            or int_range_error("test_views", views) or clip_size_error(num_frames * views, image_size)):
        return None
    requests = build_requests([str(p) for p in paths], num_frames, image_size, workers=1, backends=backends,
                              exact_frames=exact_frames, views=views, snap=snaps_to_keyframes(config.get("clip_head")))
    source = DecodePool(1, timeout).start()
    source.submit(requests)
    return EarlyDecoding(source, requests)
