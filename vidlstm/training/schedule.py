"""Per-step learning-rate schedule: linear warm-up from ~0 to the base rate, then cosine decay to a floor."""
from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int, floor: float = 0.01) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps  # never exactly 0: the first step already learns a little
    return cosine_decay((step - warmup_steps) / max(1, total_steps - warmup_steps), 1.0, floor)


def cosine_decay(progress: float, start: float, floor: float) -> float:
    """Half a cosine from ``start`` (progress 0) down to ``floor`` (progress >= 1)."""
    return floor + (start - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class WarmupCosine:
    """The schedule's multiplier as an object, so a run can re-aim it (``total_steps``) when its time budget
    changes the run's length. LambdaLR saves a callable object's attributes in its state_dict, so a resumed
    run continues with the re-aimed schedule.

    Once re-aimed after the warm-up, the schedule is anchored: from ``anchor_step`` on it is a half cosine
    from the rate in use there (``anchor_factor``) down to the floor at the new end, so the rate never
    jumps, whether the run got shorter (it decays faster from here) or longer (slower)."""

    def __init__(self, warmup_steps: int, total_steps: int, floor: float = 0.01):
        self.warmup_steps, self.total_steps, self.floor = warmup_steps, total_steps, floor
        self.anchor_step: int | None = None
        self.anchor_factor: float | None = None

    def __call__(self, step: int) -> float:
        # A schedule saved before anchoring loads into a fresh object, whose anchor stays None.
        if self.anchor_step is None or step < self.anchor_step:
            return warmup_cosine_factor(step, self.warmup_steps, self.total_steps, self.floor)
        progress = (step - self.anchor_step) / max(1, self.total_steps - self.anchor_step)
        return cosine_decay(progress, self.anchor_factor, self.floor)


def warmup_cosine_schedule(optimizer: Optimizer, warmup_steps: int, total_steps: int, floor: float = 0.01) -> LambdaLR:
    """A LambdaLR to be stepped once per optimizer step (not per epoch); ``retarget(scheduler, steps)``
    changes where its cosine ends."""
    return LambdaLR(optimizer, WarmupCosine(warmup_steps, total_steps, floor))


def retarget(scheduler: LambdaLR, total_steps: int) -> None:
    """Make the cosine end at ``total_steps`` from now on (the steps already taken keep their rates).

    During the warm-up, the warm-up shrinks to at most a fifth of the new length, so a short run still spends
    most of it decaying. After it, the rate about to be used stays as it is and the decay from it to the floor
    is stretched or squeezed to the new end (WarmupCosine's anchor): a longer plan never raises the rate.
    """
    step = scheduler.last_epoch  # the step the next optimizer update takes
    for schedule in scheduler.lr_lambdas:
        if step >= schedule.warmup_steps:
            schedule.anchor_factor, schedule.anchor_step = schedule(step), step
        else:
            schedule.warmup_steps = min(schedule.warmup_steps, total_steps // 5)
        schedule.total_steps = total_steps
