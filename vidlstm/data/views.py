"""Temporal views of a video: the centre sampling plus reproducible random-offset samplings, decoded in one pass.

View 0 is the evaluation sampling (centre of each segment). Views 1..V-1 are TSN training samplings
with random offsets drawn from a generator seeded by the file's content hash and the view index, so
the same file always yields the same views (which is what lets them be cached).
"""
from __future__ import annotations

import numpy as np

from vidlstm.data.stabilize import stabilize as undo_pan
from vidlstm.data.clips import read_views
from vidlstm.io.sampling import sample_segment_indices


def view_indices(num_frames_in_video: int, num_frames: int, view: int, content_sha: str) -> np.ndarray:
    """(T,) frame indices of ``view`` for a video of ``num_frames_in_video`` frames."""
    if view == 0:
        return sample_segment_indices(num_frames_in_video, num_frames, train=False)
    rng = np.random.default_rng([int(content_sha[:16], 16), view])
    return sample_segment_indices(num_frames_in_video, num_frames, train=True, rng=rng)


def decode_views(path, content_sha: str, num_frames: int, image_size: int, views: int,
                 threads: int = 0, stabilize: bool = False) -> np.ndarray:
    """(V, T, S, S, 3) uint8 RGB: every view of ``path``, decoded in one open of the file; with ``stabilize``
    each view's camera pan undone (``data.stabilize``, as inference does to the clip it samples).

    Raises VideoDecodeError when no backend can read the file.
    """
    def all_views(total: int) -> np.ndarray:  # (V * T,) indices, view after view
        return np.concatenate([view_indices(total, num_frames, v, content_sha) for v in range(views)])

    frames, _, _ = read_views(path, all_views, (image_size, image_size), threads=threads)
    if frames is None:
        raise RuntimeError(f"{path}: the decoder returned other frames than the views asked for")
    out = frames.reshape(views, num_frames, image_size, image_size, 3)  # (V, T, S, S, 3)
    return np.stack([undo_pan(view) for view in out]) if stabilize else out


def clip_spec(num_frames: int, image_size: int, stabilize: bool = False) -> dict:
    """Everything that changes decoded views (the clip cache's spec; the view index is part of the entry name).
    Unstabilized views keep the spec (and so the cache entries) they had before stabilizing existed."""
    spec = {"num_frames": num_frames, "image_size": image_size, "sampling": "segment", "view_rule": 1}
    return dict(spec, stabilize=1) if stabilize else spec
