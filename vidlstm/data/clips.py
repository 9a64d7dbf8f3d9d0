"""Turn a video path into the sampled, resized uint8 frames a model needs (decode + sample, nothing else)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidlstm.io import DecodeResult, VideoInfo, probe, read_frames
from vidlstm.io.sampling import sample_segment_indices


@dataclass
class Clip:
    """One sampled clip: frames (T, H, W, 3) uint8 RGB, the frame indices used, and how it was decoded."""

    frames: np.ndarray
    indices: np.ndarray
    info: VideoInfo
    backend: str

    @property
    def timestamps(self) -> np.ndarray:
        """Seconds of each sampled frame."""
        fps = self.info.fps if self.info.fps and self.info.fps > 0 else 25.0
        return self.indices.astype(np.float64) / fps


def load_clip(path, num_frames: int, image_size: int, *, train: bool = False, rng=None,
              offset_fraction: float | None = None, backends=None, threads: int = 0) -> Clip:
    """Decode ``num_frames`` segment-sampled frames of ``path`` at ``image_size`` x ``image_size``.

    ``offset_fraction`` in [0, 1) shifts the evaluation sampling inside each segment, which is how
    multi-clip test-time averaging looks at different frames of the same video.
    """
    info = probe(path, backends=backends)
    if offset_fraction is None:
        indices = sample_segment_indices(info.num_frames, num_frames, train=train, rng=rng)
    else:
        seg = info.num_frames / num_frames
        indices = np.minimum((np.arange(num_frames) * seg + offset_fraction * seg).astype(np.int64), info.num_frames - 1)
    result: DecodeResult = read_frames(path, indices, size=(image_size, image_size), info=info,
                                       backends=backends, threads=threads)
    return Clip(frames=result.frames, indices=np.asarray(indices), info=result.info, backend=result.backend)
