"""How long a run trains: an epoch count from the data, shrunk to fit a wall-clock budget as epochs are timed.

A from-scratch CNN-LSTM on a few dozen clips per class learns over thousands of optimizer steps, not 30
epochs (gestures: 57% train accuracy after 30 epochs, 97-100% validation after 150). So the default epoch
count comes from the number of training clips (a fixed number of clip presentations), and the run's time
budget — measured from the start of the run, decoding included — cuts it down when the machine is slower
than that needs. The learning-rate schedule is re-aimed at the run that will actually happen, so a budget
cut still ends with a decayed learning rate instead of stopping mid-schedule.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from vidlstm.training.schedule import retarget

# Clip presentations a default run aims at: 150 epochs of 160 training clips (what the gesture task needed).
TARGET_PRESENTATIONS = 24_000
MIN_AUTO_EPOCHS, MAX_AUTO_EPOCHS = 30, 300


def auto_epochs(train_clips: int) -> int:
    """Epochs for ``train_clips`` clips: TARGET_PRESENTATIONS / clips, within [30, 300]."""
    return int(min(MAX_AUTO_EPOCHS, max(MIN_AUTO_EPOCHS, round(TARGET_PRESENTATIONS / max(1, train_clips)))))


@dataclass
class EpochPlan:
    """The planned number of epochs, revised after every epoch against the time budget.

    ``budget`` seconds (0: none) cover the whole run; ``reserve`` of them are kept for what follows the
    last epoch (reloading, calibration, plots). The plan shrinks when the epochs run would not fit, never
    below the epochs run; it grows back towards the first plan (``target``) when epochs got faster (a
    machine busy for a while must not cut the whole run: runs with the plan only growing in their first
    half ended 40-70 s inside a 480 s budget), by at least ``GROW_MIN`` of it so small jitters leave the
    plan alone. The schedule re-aimed at a new plan keeps the rate in use and stretches or squeezes its
    decay (schedule.retarget), so growing late never raises the learning rate.
    """

    GROW_MIN = 0.05

    planned: int
    budget: float = 0.0
    reserve: float = 5.0
    cut_by_budget: bool = False
    target: int | None = None

    def __post_init__(self):
        if self.target is None:
            self.target = self.planned

    def revise(self, epochs_done: int, elapsed: float, epoch_seconds: list[float]) -> int:
        """The new plan after ``epochs_done`` epochs and ``elapsed`` seconds of the run."""
        if self.budget > 0 and epoch_seconds and epochs_done < self.planned:
            recent = epoch_seconds[-5:]
            per_epoch = max(sum(recent) / len(recent), 1e-6)  # recent epochs: the machine's load changes
            left = self.budget - self.reserve - elapsed
            fits = epochs_done + max(0, math.floor(min(left / per_epoch, 1e9)))  # 1e308 s: no OverflowError
            if fits < self.planned:
                self.planned, self.cut_by_budget = max(epochs_done, fits), True
            elif self.planned < self.target and min(fits, self.target) >= self.planned * (1 + self.GROW_MIN):
                self.planned = min(fits, self.target)
                self.cut_by_budget = self.planned < self.target
        return self.planned

    def revise_schedule(self, scheduler, steps_per_epoch: int, epochs_done: int, elapsed: float,
                        epoch_seconds: list[float]) -> bool:
        """``revise``, and when the plan changed, re-aim ``scheduler``'s cosine at the new end; True if it did."""
        before = self.planned
        if self.revise(epochs_done, elapsed, epoch_seconds) == before:
            return False
        retarget(scheduler, self.planned * steps_per_epoch)
        return True

    def state_dict(self) -> dict:
        return {"planned": self.planned, "budget": self.budget, "cut_by_budget": self.cut_by_budget,
                "target": self.target}

    def load_state_dict(self, state: dict) -> None:
        self.planned, self.cut_by_budget = int(state["planned"]), bool(state["cut_by_budget"])
        self.target = int(state.get("target", self.planned))
