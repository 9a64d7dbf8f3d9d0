"""train --stabilize: chosen by data (on where the view pans), recorded, and carried into the model it saves."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from vidlstm.stages import train
from vidlstm.training.config import TrainConfig

TINY = dict(backbone="vidnet", num_frames=8, image_size=32, batch_size=4, views=2, epochs=2, progress=False)


def turning_clip(label: str, seed: int) -> np.ndarray:
    """(24, 64, 64, 3): a textured scene seen by a turning head, with a dot moving right ("right") or left."""
    rng = np.random.default_rng(seed)
    scene = cv2.GaussianBlur(rng.integers(0, 256, (200, 200, 3)).astype(np.uint8), (0, 0), 2.0)
    view = 60 + np.cumsum(rng.normal(0, 2.0, (24, 2)) + [1.5, 0.5], axis=0)
    frames = []
    for t, (x, y) in enumerate(view):
        frame = np.ascontiguousarray(scene[int(y):int(y) + 64, int(x):int(x) + 64])
        dot = 10 + 2 * t if label == "right" else 54 - 2 * t
        cv2.circle(frame, (dot, 32), 4, (255, 255, 255), -1)
        frames.append(frame)
    return np.stack(frames)


@pytest.fixture(scope="module")
def turning_data(tmp_path_factory):
    from vidlstm.io.encode import write_video

    root = tmp_path_factory.mktemp("turning")
    for label in ("left", "right"):
        for i in range(4):
            write_video(root / "data" / label / f"{label}{i}.mp4", turning_clip(label, 10 * i + len(label)), fps=25)
    return root


@pytest.mark.slow
def test_a_turning_camera_turns_stabilizing_on_and_the_model_keeps_it(turning_data):
    from vidlstm.checkpoint import load_model
    from vidlstm.stages.evaluate import EvaluateConfig, run as evaluate

    run_dir = train.run(TrainConfig(data=str(turning_data / "data"), out_dir=str(turning_data / "auto"), **TINY))
    assert json.loads((run_dir / "config.json").read_text())["stabilize"] == "on"
    note = json.loads((run_dir / "model" / "metrics.json").read_text())["chosen_from_data"]["stabilize"]
    assert note["stabilize"] is True and note["median_pan"] >= 0.005 and note["clips"] == 8
    assert load_model(run_dir / "model").config.stabilize is True
    specs = [json.loads(p.read_text()) for p in (run_dir / "cache" / "clips").glob("*/spec.json")]
    assert [s.get("stabilize") for s in specs] == [1]  # the views it trained on were stabilized
    assert "stabilized" in (run_dir / "model" / "README.md").read_text()
    out = evaluate(EvaluateConfig(data=str(turning_data / "data"), model_dir=str(run_dir / "model"),
                                  out_dir=str(turning_data / "eval"), workers=0, progress=False))
    assert (out / "predictions.csv").read_text().count("\n") == 9  # every clip scored, through the stabilizer


@pytest.mark.slow
def test_the_users_choice_stands_and_is_not_measured(turning_data, monkeypatch):
    from vidlstm.training import auto

    monkeypatch.setattr(auto, "auto_stabilize", lambda *a, **k: pytest.fail("measured although the user chose"))
    run_dir = train.run(TrainConfig(data=str(turning_data / "data"), out_dir=str(turning_data / "off"),
                                    stabilize="off", **TINY))
    assert json.loads((run_dir / "config.json").read_text())["stabilize"] == "off"
    assert "stabilize" not in json.loads((run_dir / "model" / "metrics.json").read_text())["chosen_from_data"]
    assert not [p for p in (run_dir / "cache" / "clips").glob("*/spec.json") if "stabilize" in p.read_text()]
