"""Turn a video path into the sampled, resized uint8 frames a model needs (decode + sample, nothing else)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidlstm.errors import VideoDecodeError
from vidlstm.io import VideoInfo, read_sampled
from vidlstm.io.sampling import sample_segment_indices

# Clip.sampling values: which frames of each segment a clip holds.
EXACT_SAMPLING = "exact"  # the segment centre (evaluation) or a random frame (training)
KEYFRAME_SAMPLING = "keyframes"  # one frame per segment, the cheapest clip to decode (keyframe-aware)


@dataclass
class Clip:
    """One sampled clip: frames (T, H, W, 3) uint8 RGB, the frame indices used, and how it was decoded."""

    frames: np.ndarray
    indices: np.ndarray
    info: VideoInfo
    backend: str
    sampling: str = EXACT_SAMPLING

    @property
    def timestamps(self) -> np.ndarray:
        """Seconds of each sampled frame."""
        fps = self.info.fps if self.info.fps and self.info.fps > 0 else 25.0
        return self.indices.astype(np.float64) / fps


def load_clip(path, num_frames: int, image_size: int, *, train: bool = False, rng=None,
              offset_fraction: float | None = None, backends=None, threads: int = 0,
              keyframe_snap: bool = False) -> Clip:
    """Decode ``num_frames`` segment-sampled frames of ``path`` at ``image_size`` x ``image_size``.

    ``offset_fraction`` in [0, 1) shifts the evaluation sampling inside each segment, which is how
    multi-clip test-time averaging looks at different frames of the same video. ``keyframe_snap``
    (inference only, ignored with ``train`` or ``offset_fraction``) takes, in each segment, the frame
    that makes the whole clip cheapest to decode instead of the centre frame (sampling.snap_to_keyframes).
    The file is opened once: the sampler runs inside the decoder's read.
    """
    snap = keyframe_snap and not train and offset_fraction is None
    drawn: dict[int, np.ndarray] = {}  # frame count -> indices: a backend that fails after sampling costs no new draw
    snapped = []  # whether the backend that succeeded knew the keyframes

    def choose(info: VideoInfo, keyframes) -> np.ndarray:
        snapped[:] = [snap and keyframes is not None]
        if info.num_frames not in drawn:
            drawn[info.num_frames] = _segment_frames(info.num_frames, num_frames, train, rng, offset_fraction,
                                                     keyframes if snap else None)
        return drawn[info.num_frames]

    result = read_sampled(path, choose, size=(image_size, image_size), backends=backends, threads=threads)
    return Clip(frames=result.frames, indices=result.indices, info=result.info, backend=result.backend,
                sampling=KEYFRAME_SAMPLING if snapped and snapped[0] else EXACT_SAMPLING)


def view_offsets(views: int) -> list[float | None]:
    """Where inside each segment ``views`` test-time views sample: the centre alone (None), or evenly spread."""
    return [None] if views == 1 else [(k + 0.5) / views for k in range(views)]


def shifted_view_indices(total: int, num_frames: int, views: int) -> list[np.ndarray]:
    """Each test view's (num_frames,) frame indices of a ``total``-frame video, in ``view_offsets`` order."""
    return [_segment_frames(total, num_frames, False, None, offset, None) for offset in view_offsets(views)]


def read_views(path, views_of, size, *, backends=None, threads: int = 0):
    """Several clips of ``path`` decoded in one open and one forward read (training's cached views, a model's test
    views). ``views_of(total)`` gives the (V * T,) indices wanted of a ``total``-frame video, clip after clip;
    overlaps are read once. Returns (the frames (V * T, H, W, 3) in that order, or None where the decoder returned
    other frames than asked for; the wanted indices; the read's result)."""
    wanted: list[np.ndarray] = []  # the indices of the frame count the sampler saw (the last backend tried)

    def choose(info: VideoInfo, keyframes) -> np.ndarray:
        wanted[:] = [views_of(info.num_frames)]
        return np.unique(wanted[0])  # one sorted, de-duplicated read: views overlap a lot, decoders go forward

    result = read_sampled(path, choose, size=size, backends=backends, threads=threads)
    # Map the views onto the indices the sampler chose, never onto indices recomputed from the frame count
    # reported after decoding: PyAV may count an index-less MKV differently once it has read it.
    position = np.searchsorted(result.indices, wanted[0])  # into the unique indices
    if not np.array_equal(result.indices[np.minimum(position, len(result.indices) - 1)], wanted[0]):
        return None, wanted[0], result
    return result.frames[position], wanted[0], result


def load_views(path, num_frames: int, image_size: int, views: int, *, backends=None,
               threads: int = 0) -> tuple[Clip, list[np.ndarray]]:
    """Every test view of ``path`` (``shifted_view_indices``: shifted inside each segment, as ``evaluate --clips``
    samples them), decoded in one read (``read_views``): (the middle view's Clip, each view's frames
    (num_frames, S, S, 3) uint8). Views of a short video share frames; each frame is decoded once."""
    frames, wanted, result = read_views(
        path, lambda total: np.concatenate(shifted_view_indices(total, num_frames, views)),
        (image_size, image_size), backends=backends, threads=threads)
    if frames is None:
        raise VideoDecodeError(path, "the decoder returned other frames than the views asked for")
    frames = frames.reshape(views, num_frames, *frames.shape[1:])  # (V, T, S, S, 3)
    middle = views // 2
    clip = Clip(frames=frames[middle], indices=wanted[middle * num_frames:(middle + 1) * num_frames],
                info=result.info, backend=result.backend)
    return clip, list(frames)


def _segment_frames(total: int, num_frames: int, train: bool, rng, offset_fraction, keyframes) -> np.ndarray:
    """(num_frames,) int64 indices: segment sampling, shifted by ``offset_fraction`` or snapped to ``keyframes``."""
    if offset_fraction is None:
        return sample_segment_indices(total, num_frames, train=train, rng=rng, keyframes=keyframes)
    seg = total / num_frames
    return np.minimum((np.arange(num_frames) * seg + offset_fraction * seg).astype(np.int64), total - 1)
