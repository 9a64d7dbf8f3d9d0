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


class WarmupCosine:
    """The schedule's multiplier as an object, so a run can re-aim it (``total_steps``) when its time budget
    shortens the run. LambdaLR saves a callable object's attributes in its state_dict, so a resumed run
    continues with the re-aimed schedule."""

    def __init__(self, warmup_steps: int, total_steps: int, floor: float = 0.01):
        self.warmup_steps, self.total_steps, self.floor = warmup_steps, total_steps, floor

    def __call__(self, step: int) -> float:
        return warmup_cosine_factor(step, self.warmup_steps, self.total_steps, self.floor)


def warmup_cosine_schedule(optimizer: Optimizer, warmup_steps: int, total_steps: int, floor: float = 0.01) -> LambdaLR:
    """A LambdaLR to be stepped once per optimizer step (not per epoch); ``retarget(scheduler, steps)``
    changes where its cosine ends."""
    return LambdaLR(optimizer, WarmupCosine(warmup_steps, total_steps, floor))


def retarget(scheduler: LambdaLR, total_steps: int) -> None:
    """Make the cosine end at ``total_steps`` from now on (the steps already taken keep their rates); the
    warm-up shrinks to at most a fifth of the new length, so a short run still spends most of it decaying."""
    for schedule in scheduler.lr_lambdas:
        schedule.total_steps = total_steps
        schedule.warmup_steps = min(schedule.warmup_steps, total_steps // 5)
