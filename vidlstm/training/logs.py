"""Per-epoch metric logs of a run: ``metrics.csv`` (resume-safe) and TensorBoard scalars when installed."""
from __future__ import annotations

import csv
from pathlib import Path

from vidlstm.files import atomic_write

METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


class MetricsLog:
    """Rows of METRIC_COLUMNS in ``path``. On resume, rows after the resumed epoch are dropped so the file
    reads exactly as if the run had never stopped."""

    def __init__(self, path, keep_epochs_below: int | None = None):
        self.path = Path(path)
        self.rows: list[dict] = []
        if keep_epochs_below is not None and self.path.exists():
            with open(self.path, newline="") as f:
                self.rows = [_parse(r) for r in csv.DictReader(f) if int(r["epoch"]) < keep_epochs_below]
        self._rewrite()

    def append(self, row: dict) -> None:
        self.rows.append({k: row.get(k) for k in METRIC_COLUMNS})
        self._rewrite()

    def _rewrite(self) -> None:
        def write(tmp):
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
                writer.writeheader()
                writer.writerows(self.rows)

        atomic_write(self.path, write)


def _parse(row: dict) -> dict:
    out = {}
    for key in METRIC_COLUMNS:
        value = row.get(key, "")
        out[key] = int(value) if key == "epoch" else (float(value) if value not in ("", None) else None)
    return out


class TensorBoardLog:
    """Scalars under ``log_dir`` when the tensorboard package is importable; silently nothing otherwise."""

    def __init__(self, log_dir):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional (pip install vidlstm[tensorboard])
            self.writer = None
        else:
            self.writer = SummaryWriter(log_dir=str(log_dir))

    @property
    def enabled(self) -> bool:
        return self.writer is not None

    def log(self, row: dict, step: int) -> None:
        if self.writer is None:
            return
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                self.writer.add_scalar(key.replace("_", "/", 1), value, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
