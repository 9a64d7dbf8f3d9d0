"""Shared fixtures: tiny generated videos (no downloads, no shared data needed) and the real-data folder."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(int(os.environ.get("VIDLSTM_TEST_THREADS", "1")))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def gradient_clip(num_frames: int = 24, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A (T, H, W, 3) uint8 clip whose content changes every frame: a moving bright square on a gradient.

    Each frame differs, so a decoder that returns the wrong frame index is caught by comparing frames.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), np.full_like(xx, 96)], -1)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    side = max(4, min(height, width) // 4)
    for t in range(num_frames):
        f = base.copy()
        x = int((width - side) * t / max(num_frames - 1, 1))
        y = int(rng.integers(0, height - side + 1))
        f[y:y + side, x:x + side] = (255, 255, 255)
        frames[t] = f
    return frames.astype(np.uint8)


@pytest.fixture
def make_video(tmp_path):
    """make_video(name="clip.mp4", num_frames=24, height=48, width=64, fps=25) -> Path of a fresh video."""
    from vidlstm.io.encode import write_video

    def _make(name="clip.mp4", num_frames=24, height=48, width=64, fps=25.0, frames=None, codec=None, seed=0,
              options=None):
        if frames is None:
            frames = gradient_clip(num_frames, height, width, seed=seed)
        return write_video(tmp_path / name, frames, fps=fps, codec=codec, options=options)

    return _make


@pytest.fixture
def shared_data():
    """The real-video folder ../shared/data; the test is skipped where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A saved, untrained vidnet model (32 px, 8 frames, 3 labels): enough to exercise every inference path."""
    from vidlstm.checkpoint import save_model
    from vidlstm.models import LRCN, ModelConfig

    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=["left", "right", "up"], backbone="vidnet", image_size=32, num_frames=8))
    return save_model(tmp_path_factory.mktemp("tiny_model"), model)


class _Terminal:
    """stderr as a terminal: where tqdm draws its bars (elsewhere, as under capture, it draws none)."""

    def __init__(self, stream):
        self._stream = stream

    def isatty(self):
        return True

    def __getattr__(self, name):
        return getattr(self._stream, name)


@pytest.fixture
def terminal_stderr(monkeypatch):
    """Call it in a test's body (pytest's capture sets sys.stderr after fixtures): progress bars are then drawn
    as on a terminal, into the captured stderr."""
    import sys

    return lambda: monkeypatch.setattr(sys, "stderr", _Terminal(sys.stderr))
