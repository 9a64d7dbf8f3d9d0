"""Per-step learning-rate schedule: linear warm-up from ~0 to the base rate, then cosine decay to a floor."""
from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int, floor: float = 0.01) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps  # never exactly 0: the first step already learns a little
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def warmup_cosine_schedule(optimizer: Optimizer, warmup_steps: int, total_steps: int, floor: float = 0.01) -> LambdaLR:
    """A LambdaLR to be stepped once per optimizer step (not per epoch)."""
    return LambdaLR(optimizer, lambda step: warmup_cosine_factor(step, warmup_steps, total_steps, floor))
