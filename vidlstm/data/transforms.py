"""Frame-array conversions shared by training and inference (uint8 HWC numpy <-> float CHW tensors)."""
from __future__ import annotations

import numpy as np
import torch


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 RGB -> (T, 3, H, W) float32 in [0, 1], the model's input contract."""
    x = torch.from_numpy(np.ascontiguousarray(frames))  # (T, H, W, 3) uint8
    return x.permute(0, 3, 1, 2).float().div_(255.0)  # (T, 3, H, W)
