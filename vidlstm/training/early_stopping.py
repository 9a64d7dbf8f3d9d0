"""Early stopping on a validation metric with patience; its state is saved with the resume state."""
from __future__ import annotations

import math


class EarlyStopping:
    """Track the best value of ``monitor`` ("val_loss": lower is better, "val_acc": higher is better,
    ties broken by the lower val_loss) and say when ``patience`` epochs passed without improvement.
    ``monitor="last"``: every epoch is the new best (the run keeps its final model; never stops early)."""

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 1e-4):
        if monitor not in ("val_loss", "val_acc", "last"):
            raise ValueError(f"monitor must be 'val_loss', 'val_acc' or 'last', got {monitor!r}")
        if monitor == "last":
            patience = 0
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.best_score: tuple[float, float] | None = None
        self.best_epoch = -1
        self.bad_epochs = 0

    def _score(self, metrics: dict) -> tuple[float, float]:
        # Tuples compare element-wise, so val_acc ties fall through to the (negated) loss.
        if self.monitor == "val_loss":
            return (-metrics["val_loss"], 0.0)
        return (metrics["val_acc"], -metrics["val_loss"])

    def update(self, epoch: int, metrics: dict) -> bool:
        """Record one epoch's metrics; True when this epoch is the new best."""
        if self.monitor == "last":
            self.best_score, self.best_epoch, self.bad_epochs = (float(epoch), 0.0), epoch, 0
            return True
        score = self._score(metrics)
        if any(math.isnan(v) for v in score):
            improved = False
        elif self.best_score is None:
            improved = True
        else:
            head, best_head = score[0], self.best_score[0]
            improved = head > best_head + self.min_delta or (abs(head - best_head) <= self.min_delta
                                                            and score[1] > self.best_score[1] + self.min_delta)
        if improved:
            self.best_score, self.best_epoch, self.bad_epochs = score, epoch, 0
        else:
            self.bad_epochs += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        return {"best_score": list(self.best_score) if self.best_score else None, "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.best_score = tuple(state["best_score"]) if state["best_score"] is not None else None
        self.best_epoch, self.bad_epochs = int(state["best_epoch"]), int(state["bad_epochs"])
