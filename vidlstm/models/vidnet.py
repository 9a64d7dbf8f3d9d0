"""vidnet: a small CNN that trains from scratch on a CPU: 4 strided conv stages, pooled + soft-argmax features."""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

# 32-64-128-128 channels, one 3x3 stride-2 conv each: ~41 M multiply-adds per 112 px frame, ~0.25 M params,
# small enough to fit a few dozen clips without memorising them, fast enough to train on 2 cores.
VIDNET_WIDTHS = (32, 64, 128, 128)
VIDNET_DEFAULT_KEYPOINTS = 8
# The soft-argmax reads the last stage's map by default (stride 16: 4x4 at 64 px), which is what models
# saved before keypoint_stage existed use. Training now reads stage 2 (stride 4: 12x12 at 48 px, 16x16 at
# 64 px): a path traced in the air needs positions finer than a quarter of the frame.
VIDNET_DEFAULT_KEYPOINT_STAGE = 4
VIDNET_TRAIN_KEYPOINT_STAGE = 2


class SpatialSoftArgmax(nn.Module):
    """Feature maps (N, C, H, W) -> the expected (x, y) of K learned heat maps, (N, 2K) in [-1, 1].

    DSNT / deep-spatial-autoencoder style: a 1x1 conv scores every position, a softmax over space
    turns the scores into a distribution, and its mean is a sub-pixel position that is
    differentiable, so the LSTM can follow where things are, not only what they are.
    Output order is (x1, y1, x2, y2, ...); x grows to the right, y downwards; pixel centres.
    """

    def __init__(self, in_channels: int, num_keypoints: int):
        super().__init__()
        self.num_keypoints = num_keypoints
        self.heatmaps = nn.Conv2d(in_channels, num_keypoints, kernel_size=1)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        n, _, h, w = fmap.shape
        scores = self.heatmaps(fmap).reshape(n, self.num_keypoints, h * w)  # (N, K, H*W)
        probs = scores.float().softmax(dim=-1).reshape(n, self.num_keypoints, h, w)  # (N, K, H, W)
        xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=fmap.device)  # (W,) pixel-centre coordinates
        ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=fmap.device)  # (H,)
        expected_x = (probs.sum(dim=2) * xs).sum(dim=-1)  # (N, K): marginal over rows, then mean column
        expected_y = (probs.sum(dim=3) * ys).sum(dim=-1)  # (N, K)
        return torch.stack([expected_x, expected_y], dim=-1).flatten(1).to(fmap.dtype)  # (N, 2K)


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """One stage: 3x3 stride-2 conv (halves H and W), batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class VidNet(nn.Module):
    """Normalised frames (N, C, H, W) -> features (N, widths[-1] + 2 * keypoints).

    The feature is the global average of the last stage (what is there) concatenated with the
    soft-argmax keypoints read from stage ``keypoint_stage`` (where it is; 1-based, stride 2**stage),
    always the last 2 * keypoints values.
    """

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = VIDNET_WIDTHS,
                 keypoints: int = VIDNET_DEFAULT_KEYPOINTS, keypoint_stage: int = VIDNET_DEFAULT_KEYPOINT_STAGE):
        super().__init__()
        if not 1 <= keypoint_stage <= len(widths):
            raise ValueError(f"keypoint_stage must be in [1, {len(widths)}], got {keypoint_stage}")
        channels = (in_channels, *widths)
        self.stages = nn.Sequential(OrderedDict(
            (f"stage{i + 1}", conv_bn_relu(channels[i], channels[i + 1])) for i in range(len(widths))))
        self.keypoint_stage = keypoint_stage
        self.keypoints = SpatialSoftArgmax(widths[keypoint_stage - 1], keypoints) if keypoints > 0 else None
        self.feature_dim = widths[-1] + 2 * keypoints
        for module in self.modules():
            if isinstance(module, nn.Conv2d) and module is not getattr(self.keypoints, "heatmaps", None):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.keypoints is None:
            return self.stages(x).mean(dim=(2, 3))  # (N, C_last)
        early = self.stages[:self.keypoint_stage](x)  # (N, C_k, H / 2**k, W / 2**k)
        fmap = self.stages[self.keypoint_stage:](early)  # (N, C_last, H/16, W/16)
        pooled = fmap.mean(dim=(2, 3))  # (N, C_last)
        return torch.cat([pooled, self.keypoints(early)], dim=1)  # (N, C_last + 2K)
