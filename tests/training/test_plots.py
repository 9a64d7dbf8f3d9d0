"""Run figures: PNG files drawn on their own Agg canvas, never through pyplot's global backend."""
from __future__ import annotations

from pathlib import Path

import vidlstm


def test_plots_leave_the_global_matplotlib_backend_alone(tmp_path):
    import matplotlib

    from vidlstm.training.plots import plot_confusion_matrix, plot_training_curves

    before = matplotlib.get_backend()
    rows = [{"epoch": 0, "train_loss": 1.0, "val_loss": 1.1, "train_acc": 0.5, "val_acc": 0.4},
            {"epoch": 1, "train_loss": 0.8, "val_loss": 0.9, "train_acc": 0.6, "val_acc": 0.5}]
    curves = plot_training_curves(rows, tmp_path / "curves.png")
    matrix = plot_confusion_matrix(__import__("numpy").eye(2), ["a", "b"], tmp_path / "cm.png")
    assert curves.read_bytes()[:8] == matrix.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.get_backend() == before
    for module in ("training/plots.py", "explain.py"):
        source = (Path(vidlstm.__file__).parent / module).read_text()
        assert "matplotlib.use(" not in source and "import matplotlib.pyplot" not in source


def test_class_names_in_a_script_the_font_lacks_draw_without_warnings(tmp_path, recwarn):
    """evaluate with a class named 日本語 printed matplotlib's "Glyph ... missing from font" from the confusion matrix."""
    import numpy as np

    from vidlstm.training.plots import plot_confusion_matrix

    plot_confusion_matrix(np.array([[2, 0], [1, 3]]), ["日本語", "猫"], tmp_path / "cm.png")
    assert (tmp_path / "cm.png").is_file() and not [w for w in recwarn if "Glyph" in str(w.message)]
