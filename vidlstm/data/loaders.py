"""Torch datasets over cached views: decoded uint8 clips (augmented on the fly) or frozen-backbone features."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from vidlstm.data.augment import ClipAugmenter
from vidlstm.data.cache import TensorCache
from vidlstm.data.transforms import frames_to_tensor


class CachedViewDataset(Dataset):
    """``(x, target)`` pairs read from a TensorCache entry per (video, view).

    ``key="frames"``: x is (T, 3, H, W) float in [0, 1], augmented when an augmenter is given.
    ``key="features"``: x is (T, D) float. Evaluation always uses view 0, the centre sampling. Training
    draws fresh temporal jitter every epoch: for frames, each of the T segments takes its frame from a
    view of its own (every view holds one frame per segment, so any mix is a valid TSN sampling: V**T
    clips per video instead of V); for features, one view per clip (a frame's rgb+diff feature was
    computed against that view's previous frame). All randomness comes from (seed, epoch, index), so
    the data an epoch sees does not depend on workers or on resuming.
    ``in_memory`` reads every entry once up front (default: features always, a few MB; decoded clips
    while they total under ``MEMORY_LIMIT`` bytes, so an epoch never touches the disk).
    """

    MEMORY_LIMIT = 1 << 30

    def __init__(self, cache: TensorCache, content_shas: list[str], targets: np.ndarray, *, key: str,
                 views: int = 1, train: bool = False, augmenter: ClipAugmenter | None = None, seed: int = 0,
                 in_memory: bool | None = None):
        if key not in ("frames", "features"):
            raise ValueError(f"key must be 'frames' or 'features', got {key!r}")
        if len(content_shas) != len(targets):
            raise ValueError("content_shas and targets differ in length")
        self.cache, self.content_shas, self.targets = cache, list(content_shas), np.asarray(targets, dtype=np.int64)
        self.key, self.views, self.train, self.augmenter, self.seed = key, views, train, augmenter, seed
        self.epoch = 0
        self.memory: dict[tuple[int, int], object] | None = None
        used_views = range(views) if train else range(1)
        preload = in_memory
        if preload is None:
            preload = key == "features" or self._estimated_bytes(len(used_views)) < self.MEMORY_LIMIT
        if preload:
            self.memory = {(i, v): self._read(i, v) for i in range(len(self.content_shas)) for v in used_views}

    def _estimated_bytes(self, views: int) -> int:
        if not self.content_shas:
            return 0
        first = self._read(0, 0)
        return first.numel() * first.element_size() * views * len(self.content_shas)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.content_shas)

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.train and self.views > 1 and self.key == "frames":
            per_segment = rng.integers(self.views, size=len(self._view(index, 0)))  # (T,) a view per segment
            x = torch.stack([self._view(index, int(v))[t] for t, v in enumerate(per_segment)])  # (T, S, S, 3)
        else:
            view = int(rng.integers(self.views)) if self.train and self.views > 1 else 0
            x = self._view(index, view)
        if self.key == "frames":
            x = frames_to_tensor(x.numpy())  # (T, 3, H, W) float [0, 1]
            if self.train and self.augmenter is not None:
                x = self.augmenter(x, rng)
        return x, int(self.targets[index])

    def every_view(self) -> torch.Tensor:
        """Every cached view of every item stacked, (N * V, ...): V = ``views`` when training, else 1."""
        used_views = range(self.views) if self.train else range(1)
        return torch.stack([torch.as_tensor(self._view(i, v)) for i in range(len(self)) for v in used_views])

    def _view(self, index: int, view: int):
        return self.memory[index, view] if self.memory is not None else self._read(index, view)

    def _read(self, index: int, view: int):
        entry = self.cache.get(self.content_shas[index], view)
        if entry is None:
            raise RuntimeError(f"cache entry missing for {self.content_shas[index][:12]} view {view} in "
                               f"{self.cache.folder}; was the cache cleared while training?")
        return entry[self.key]
