"""vidnet: size and cost budget, and the soft-argmax keypoint layer's geometry."""
from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from vidlstm.models.vidnet import SpatialSoftArgmax, VidNet


def test_soft_argmax_finds_a_single_peak_at_its_pixel_centre():
    layer = SpatialSoftArgmax(in_channels=2, num_keypoints=1)
    with torch.no_grad():
        layer.heatmaps.weight.zero_()
        layer.heatmaps.weight[0, 0] = 60.0  # heat map = 60 x channel 0: a near one-hot softmax
        layer.heatmaps.bias.zero_()
    fmap = torch.zeros(1, 2, 4, 5)
    fmap[0, 0, 1, 3] = 1.0  # row 1 of 4, column 3 of 5
    x, y = layer(fmap)[0].tolist()
    assert x == pytest.approx((2 * 3 + 1) / 5 - 1, abs=1e-6)  # 0.4
    assert y == pytest.approx((2 * 1 + 1) / 4 - 1, abs=1e-6)  # -0.25


def test_soft_argmax_of_a_flat_map_is_the_centre():
    layer = SpatialSoftArgmax(in_channels=3, num_keypoints=4)
    out = layer(torch.ones(2, 3, 6, 7))
    assert out.shape == (2, 8)
    torch.testing.assert_close(out, torch.zeros(2, 8), rtol=0, atol=1e-6)


def test_keypoints_follow_horizontal_motion_only_along_x():
    torch.manual_seed(0)
    net = VidNet(in_channels=3, keypoints=8).eval()
    frames = torch.zeros(2, 3, 112, 112)
    frames[0, :, 48:64, 32:48] = 2.0
    frames[1, :, 48:64, 64:80] = 2.0  # the same square 32 px (2 feature cells) to the right
    with torch.no_grad():
        feats = net(frames)  # (2, 128 + 16)
    keypoints = feats[:, 128:].view(2, 8, 2)  # (2, K, xy)
    torch.testing.assert_close(keypoints[0, :, 1], keypoints[1, :, 1], rtol=0, atol=1e-6)  # y unchanged
    assert (keypoints[0, :, 0] - keypoints[1, :, 0]).abs().max() > 1e-3  # x moved
    torch.testing.assert_close(feats[0, :128], feats[1, :128], rtol=1e-5, atol=1e-6)  # pooled: translation-invariant


def test_vidnet_size_and_cost_budget_at_112_px():
    net = VidNet(in_channels=6, keypoints=8).eval()
    assert net.feature_dim == 128 + 2 * 8
    params = sum(p.numel() for p in net.parameters())
    assert 150_000 < params < 500_000
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.zeros(1, 6, 112, 112))
    multiply_adds = counter.get_total_flops() / 2  # the counter counts a multiply-add as 2 FLOPs
    assert 40e6 <= multiply_adds <= 80e6


def moving_dot_batch(rng, batch: int, size: int = 48, radius: int = 2):
    """(B, 3, S, S) frames of a small bright dot on dim noise, and its (B, 2) centre in [-1, 1] (x, y)."""
    frames = torch.from_numpy(rng.uniform(-0.3, 0.3, (batch, 3, size, size)).astype("float32"))
    centres = rng.integers(radius + 1, size - radius - 1, (batch, 2))  # (B, 2) pixel (x, y)
    for i, (x, y) in enumerate(centres):
        frames[i, :, y - radius:y + radius + 1, x - radius:x + radius + 1] = 2.0
    target = torch.from_numpy(((2 * centres + 1) / size - 1).astype("float32"))  # pixel centres, as the layer
    return frames, target


@pytest.mark.slow
def test_soft_argmax_on_the_fine_map_learns_to_locate_a_small_moving_dot():
    """A 5-px dot anywhere in a 48 px frame: keypoints read from stage 2 (a 12x12 map) must find it to within
    a few pixels after a short training; the same budget on the last stage's 3x3 map stays far coarser."""
    import numpy as np

    errors = {}
    for stage in (2, 4):
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        net = VidNet(in_channels=3, keypoints=1, keypoint_stage=stage)
        optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
        for _ in range(100):
            frames, target = moving_dot_batch(rng, 16)
            loss = torch.nn.functional.mse_loss(net(frames)[:, -2:], target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        net.eval()
        frames, target = moving_dot_batch(np.random.default_rng(1), 256)
        with torch.no_grad():
            errors[stage] = float((net(frames)[:, -2:] - target).abs().mean()) * 48 / 2  # mean error in pixels
    assert errors[2] < 1.5, errors  # measured 0.8 px (stage 4: 1.8 px)
    assert errors[2] < errors[4] / 1.5, errors


def test_keypoint_stage_sets_the_map_the_keypoints_read():
    net = VidNet(in_channels=6, keypoints=4, keypoint_stage=2)
    assert net.keypoints.heatmaps.in_channels == 64  # stage 2's width
    assert net(torch.zeros(3, 6, 48, 48)).shape == (3, 128 + 8)
    with pytest.raises(ValueError, match="keypoint_stage"):
        VidNet(keypoints=4, keypoint_stage=5)
