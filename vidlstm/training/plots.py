"""PNG figures of a run (matplotlib's Agg canvas): training curves and the confusion matrix."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vidlstm.files import without_glyph_warnings


def _figure(figsize):
    """A figure drawn on its own Agg canvas: no pyplot, so the caller's matplotlib backend is never changed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def plot_training_curves(rows: list[dict], path, title: str | None = None) -> Path:
    """Loss and accuracy per epoch (train and validation) side by side; ``title`` above both (what was trained)."""
    epochs = [r["epoch"] for r in rows]
    fig = _figure((10, 4))
    if title:
        fig.suptitle(title)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for key, style in (("train_loss", "-"), ("val_loss", "--")):
        ax_loss.plot(epochs, [r.get(key, np.nan) for r in rows], style, marker="o", ms=3, label=key)
    for key, style in (("train_acc", "-"), ("val_acc", "--")):
        ax_acc.plot(epochs, [r.get(key, np.nan) for r in rows], style, marker="o", ms=3, label=key)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    with without_glyph_warnings():  # class names in a script the font lacks (laid out and drawn)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    return Path(path)


def plot_confusion_matrix(matrix: np.ndarray, labels: list[str], path, title: str = "confusion matrix") -> Path:
    """Rows are true labels, columns predictions; each cell shows its count."""
    size = max(4.0, 0.6 * len(labels) + 2)
    fig = _figure((size, size))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, int(matrix[i, j]), ha="center", va="center",
                    color="white" if matrix[i, j] > threshold else "black")
    with without_glyph_warnings():  # class names in a script the font lacks (laid out and drawn)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    return Path(path)
