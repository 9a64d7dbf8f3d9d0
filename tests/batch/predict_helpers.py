"""Shared by the predict/merge tests: a tiny saved model and a folder of tiny videos."""
from __future__ import annotations

from pathlib import Path

import pytest

LABELS = ["left", "right", "still"]


def tiny_model_dir(root: Path) -> Path:
    """A saved vidnet LRCN at 32 px, 8 frames: fast enough for CPU tests, real in every part."""
    import torch

    from vidlstm.checkpoint import save_model
    from vidlstm.models import LRCN, ModelConfig

    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=LABELS, backbone="vidnet", image_size=32, num_frames=8))
    return save_model(root / "model", model)


def readout_model_dir(root: Path, num_frames: int = 8) -> Path:
    """A saved statistics read-out (clip_head "stats") on an untrained Lite0 at 32 px, its statistics fitted on
    random features: what `train --backbone auto` keeps on many real sets, in every part that inference uses."""
    import torch

    from vidlstm.checkpoint import save_model
    from vidlstm.models import LRCN, ModelConfig

    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=["a", "b"], backbone="efficientnet_lite0", num_frames=num_frames, image_size=32,
                             input_mode="rgb", clip_head="stats"))
    with torch.no_grad():
        model.clip_stats.fit(torch.randn(4, num_frames, model.feature_dim))
    return save_model(root / "readout", model.eval())


def video_folder(make_video, count: int, folder: str = "videos", **kwargs) -> Path:
    """``count`` tiny, different H.264 clips in tmp_path/folder (v00.mp4, v01.mp4, ...)."""
    paths = [make_video(f"{folder}/v{i:02d}.mp4", num_frames=12, height=32, width=32, fps=8.0, seed=i, **kwargs)
             for i in range(count)]
    return paths[0].parent


def comparable(records):
    """Records without their timing, which differs from run to run."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def assert_same_records(got, expected):
    """Equal records, scores to 1e-5: another engine, shard or thread count batches files differently, and a
    float sum in another order can move the sixth rounded decimal (0.317179 vs 0.31718 was seen in CI)."""
    assert [r["path"] for r in got] == [r["path"] for r in expected]
    for g, e in zip(comparable(got), comparable(expected)):
        assert [t["label"] for t in g["top_k"]] == [t["label"] for t in e["top_k"]], g["path"]
        assert [t["score"] for t in g["top_k"]] == pytest.approx([t["score"] for t in e["top_k"]], abs=1e-5)
        assert g["score"] == pytest.approx(e["score"], abs=1e-5) if e["score"] is not None else g["score"] is None
        rest = lambda r: {k: v for k, v in r.items() if k not in ("score", "top_k")}  # noqa: E731
        assert rest(g) == rest(e)
