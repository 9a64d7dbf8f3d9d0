"""Clip-level augmentation: one random crop / colour jitter / flip drawn per clip and applied to every frame."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF


@dataclass
class AugmentConfig:
    """How strongly training clips are perturbed. Every parameter is drawn once per clip, never per frame,
    so motion between frames stays exactly what the video shows."""

    crop_scale: tuple[float, float] = (0.6, 1.0)  # area fraction of the random resized crop
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect-ratio range of the crop
    brightness: float = 0.3  # factor drawn from [1 - b, 1 + b]
    contrast: float = 0.3
    saturation: float = 0.3
    hflip: bool = False  # off by default: a mirror turns "swipe left" into "swipe right"

    def __post_init__(self):
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {self.crop_scale}")
        for name in ("brightness", "contrast", "saturation"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} jitter must be in [0, 1), got {getattr(self, name)}")


def sample_crop_box(height: int, width: int, scale, ratio, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random resized crop, as torchvision's RandomResizedCrop draws it, from ``rng``."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    return 0, 0, height, width  # the whole frame: rare fallback for extreme ratios


class ClipAugmenter:
    """Callable (T, 3, H, W) float [0, 1] -> same shape, with one parameter set per call drawn from ``rng``."""

    def __init__(self, config: AugmentConfig | None = None):
        self.config = config or AugmentConfig()

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        cfg = self.config
        _, _, height, width = clip.shape  # (T, 3, H, W)
        top, left, h, w = sample_crop_box(height, width, cfg.crop_scale, cfg.crop_ratio, rng)
        clip = TF.resized_crop(clip, top, left, h, w, [height, width], antialias=True)  # (T, 3, H, W)
        # Colour jitter in a random order, like torchvision's ColorJitter, but one draw for the whole clip.
        jitters = [(TF.adjust_brightness, cfg.brightness), (TF.adjust_contrast, cfg.contrast),
                   (TF.adjust_saturation, cfg.saturation)]
        for k in rng.permutation(len(jitters)):
            op, strength = jitters[k]
            if strength > 0:
                clip = op(clip, float(rng.uniform(1 - strength, 1 + strength)))
        if cfg.hflip and rng.random() < 0.5:
            clip = TF.horizontal_flip(clip)
        return clip.clamp_(0.0, 1.0)
