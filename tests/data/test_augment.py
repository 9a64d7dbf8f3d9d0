"""Clip augmentation: one parameter draw per clip (frames stay consistent), deterministic, flip only when asked."""
from __future__ import annotations

import numpy as np
import torch

from vidlstm.data.augment import AugmentConfig, ClipAugmenter, sample_crop_box


def left_bright_clip(steps=4, size=32):
    clip = torch.zeros(steps, 3, size, size)
    clip[:, :, :, : size // 2] = 0.8  # bright left half, dark right half
    return clip


def test_every_frame_gets_the_same_crop_and_colour():
    clip = torch.rand(1, 3, 32, 32).repeat(6, 1, 1, 1)  # six identical frames
    out = ClipAugmenter()(clip, np.random.default_rng(0))
    assert out.shape == clip.shape
    assert not torch.allclose(out, clip)  # something changed...
    for t in range(1, 6):  # ...identically on every frame
        assert torch.allclose(out[t], out[0], atol=1e-6)


def test_same_rng_seed_gives_the_same_clip_and_different_seeds_differ():
    clip = torch.rand(4, 3, 32, 32)
    aug = ClipAugmenter()
    a = aug(clip.clone(), np.random.default_rng(7))
    b = aug(clip.clone(), np.random.default_rng(7))
    c = aug(clip.clone(), np.random.default_rng(8))
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_no_flip_unless_asked():
    clip = left_bright_clip()
    no_jitter = dict(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), brightness=0, contrast=0, saturation=0)
    plain = ClipAugmenter(AugmentConfig(**no_jitter))
    for seed in range(20):
        out = plain(clip.clone(), np.random.default_rng(seed))
        assert out[..., :16].mean() > out[..., 16:].mean()  # left side stays the bright one
    flipping = ClipAugmenter(AugmentConfig(hflip=True, **no_jitter))
    flipped = sum(bool(flipping(clip.clone(), np.random.default_rng(s))[..., 16:].mean() > 0.5) for s in range(40))
    assert 8 < flipped < 32  # about half the clips are mirrored


def test_crop_box_stays_inside_the_frame_and_respects_the_scale():
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, h, w = sample_crop_box(48, 64, (0.6, 1.0), (3 / 4, 4 / 3), rng)
        assert 0 <= top and top + h <= 48 and 0 <= left and left + w <= 64
        assert 0.55 <= h * w / (48 * 64) <= 1.0
