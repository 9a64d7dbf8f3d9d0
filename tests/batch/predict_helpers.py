"""Shared by the predict/merge tests: a tiny saved model and a folder of tiny videos."""
from __future__ import annotations

from pathlib import Path

LABELS = ["left", "right", "still"]


def tiny_model_dir(root: Path) -> Path:
    """A saved vidnet LRCN at 32 px, 8 frames: fast enough for CPU tests, real in every part."""
    import torch

    from vidlstm.checkpoint import save_model
    from vidlstm.models import LRCN, ModelConfig

    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=LABELS, backbone="vidnet", image_size=32, num_frames=8))
    return save_model(root / "model", model)


def video_folder(make_video, count: int, folder: str = "videos", **kwargs) -> Path:
    """``count`` tiny, different H.264 clips in tmp_path/folder (v00.mp4, v01.mp4, ...)."""
    paths = [make_video(f"{folder}/v{i:02d}.mp4", num_frames=12, height=32, width=32, fps=8.0, seed=i, **kwargs)
             for i in range(count)]
    return paths[0].parent


def comparable(records):
    """Records without their timing, which differs from run to run."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]
