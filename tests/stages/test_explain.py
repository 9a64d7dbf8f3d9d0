"""--explain: per-frame attention JSON (fields, lengths, timestamps), the PNG strip, names, and classify --explain."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vidlstm.checkpoint import save_model
from vidlstm.cli import main
from vidlstm.explain import STRIP_SIZE_PX, TOP_CLASSES, explain_clip, explanation_stem
from vidlstm.models import LRCN, ModelConfig
from vidlstm.inference import Predictor

LABELS = ["left", "right", "still", "wave"]
NUM_FRAMES = 8
FPS = 25.0


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=LABELS, image_size=32, num_frames=NUM_FRAMES, proj_dim=16, hidden_size=12))
    return save_model(tmp_path_factory.mktemp("model"), model)


@pytest.fixture(scope="module")
def predictor(model_dir):
    return Predictor.from_dir(model_dir, device="cpu")


def test_explanation_json_has_every_sampled_frame_with_time_and_attention(predictor, make_video, tmp_path):
    video = make_video("clip.mp4", num_frames=24, fps=FPS)
    clip = predictor.load_clip(video)
    scores = predictor.score_frames([clip.frames])[0]

    added = explain_clip(video, clip, scores, predictor.labels, tmp_path / "explain")

    json_path = Path(added["explanation"])
    assert set(added) == {"explanation"} and json_path.parent == tmp_path / "explain"
    data = json.loads(json_path.read_text())
    frames = data["frames"]
    assert data["path"] == str(video) and len(frames) == NUM_FRAMES
    assert [f["position"] for f in frames] == list(range(NUM_FRAMES))
    assert [f["frame_index"] for f in frames] == clip.indices.tolist()
    times = np.array([f["timestamp"] for f in frames])
    assert np.all(np.diff(times) > 0), "timestamps must increase"
    np.testing.assert_allclose(times, clip.indices / FPS, atol=1e-4)
    attention = np.array([f["attention"] for f in frames])
    np.testing.assert_allclose(attention, scores.attention, atol=1e-5)
    assert attention.sum() == pytest.approx(1.0, abs=1e-4)
    # The top classes, best first, each with one probability per sampled frame.
    top = [entry["label"] for entry in data["top_classes"]]
    expected_top = [LABELS[i] for i in np.argsort(-scores.probs, kind="stable")[:TOP_CLASSES]]
    assert top == expected_top and data["label"] == top[0]
    assert data["score"] == pytest.approx(float(scores.probs.max()), abs=1e-5)
    for t, frame in enumerate(frames):
        assert list(frame["step_probs"]) == top
        for label, p in frame["step_probs"].items():
            assert p == pytest.approx(float(scores.step_probs[t, LABELS.index(label)]), abs=1e-5)
    # top_frames: positions by attention, highest first.
    assert data["top_frames"][0] == int(np.argmax(scores.attention))
    assert attention[data["top_frames"]].tolist() == sorted(attention[data["top_frames"]], reverse=True)


def test_strip_png_has_the_fixed_size_and_is_named_in_the_json(predictor, make_video, tmp_path):
    video = make_video("clip.mp4", num_frames=24)
    clip = predictor.load_clip(video)
    scores = predictor.score_frames([clip.frames])[0]
    out = tmp_path / "explain"
    json_path = Path(explain_clip(video, clip, scores, predictor.labels, out)["explanation"])

    png = out / json.loads(json_path.read_text())["strip"]
    assert png.name == json_path.with_suffix(".png").name
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size == STRIP_SIZE_PX == (1200, 600)
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert pixels.std() > 10  # thumbnails and a plot, not an empty canvas
    assert sorted(p.name for p in out.iterdir()) == sorted([json_path.name, png.name])  # no temp files left


def test_names_that_are_not_utf8_or_hold_tabs_are_explained(predictor, make_video, tmp_path, recwarn):
    import os

    made = make_video("clip.mp4", num_frames=24)
    clip = predictor.load_clip(made)
    scores = predictor.score_frames([clip.frames])[0]
    for name in (os.fsdecode(b"lat\xe9in.mp4"), "tab\there.mp4"):
        video = made.parent / name  # the name matters, not the file
        json_path = Path(explain_clip(video, clip, scores, predictor.labels, tmp_path / "x")["explanation"])
        assert json.loads(json_path.read_text())["path"] == str(video)
        assert (tmp_path / "x" / json_path.with_suffix(".png").name).is_file()
    assert not [w for w in recwarn if "Glyph" in str(w.message)]  # a tab is no glyph: shown as U+FFFD


def test_explanation_names_are_readable_and_collision_safe(tmp_path):
    a, b = tmp_path / "cam1" / "clip.mp4", tmp_path / "cam2" / "clip.mp4"
    assert explanation_stem(a) != explanation_stem(b)
    assert explanation_stem(a).startswith("clip-") and explanation_stem(b).startswith("clip-")
    assert explanation_stem(a) == explanation_stem(tmp_path / "cam1" / ".." / "cam1" / "clip.mp4")
    odd = explanation_stem(tmp_path / "<script>x y&z.mp4")
    assert all(c.isalnum() or c in "._-" for c in odd) and "script" in odd


def test_classify_explain_writes_one_explanation_per_decoded_video(model_dir, make_video, tmp_path, capsys):
    first = make_video("a/clip.mp4", num_frames=24)
    second = make_video("b/clip.mp4", num_frames=24, seed=1)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    out = tmp_path / "explain"

    code = main(["classify", str(first), str(broken), str(second), "--model", str(model_dir), "--device", "cpu",
                 "--explain", str(out), "--json"])

    assert code == 1  # the broken file fails, the others still get explained
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["status"] for r in records] == ["ok", "error", "ok"]
    assert "explanation" not in records[1]
    explained = [Path(r["explanation"]) for r in (records[0], records[2])]
    assert explained[0] != explained[1] and all(p.is_file() for p in explained)
    assert [json.loads(p.read_text())["path"] for p in explained] == [str(first), str(second)]
    assert len(list(out.glob("*.json"))) == 2 and len(list(out.glob("*.png"))) == 2

    # classify --json output is a predictions JSONL: the report embeds both strips.
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main(["report", str(preds), "-o", str(tmp_path / "report.html")]) == 0
    page = (tmp_path / "report.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == 2
    assert "2 of 2 classified file(s) have an explanation" in page


def test_classify_explain_into_a_file_is_a_usage_error(model_dir, make_video, tmp_path, capsys):
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")
    code = main(["classify", str(make_video()), "--model", str(model_dir), "--device", "cpu",
                 "--explain", str(blocker / "sub")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--explain folder" in err[0] and str(blocker / "sub") in err[0]


def test_labels_in_a_script_the_font_lacks_are_drawn_without_a_warning(predictor, make_video, tmp_path, recwarn):
    """A model with labels such as 猫 and 犬 printed matplotlib's "Glyph ... missing from font" warnings for every
    file, -q or not."""
    made = make_video("clip.mp4", num_frames=24)
    clip = predictor.load_clip(made)
    scores = predictor.score_frames([clip.frames])[0]
    labels = ["猫", "犬", "鳥"][: len(predictor.labels)] + list(predictor.labels[3:])
    json_path = Path(explain_clip(made, clip, scores, labels, tmp_path / "x")["explanation"])
    assert json_path.with_suffix(".png").is_file()
    assert not [w for w in recwarn if "Glyph" in str(w.message)]
