"""`vidlstm demo`: fresh synthetic clips through a model, a table and the accuracy line."""
from __future__ import annotations

import re

import pytest

from vidlstm.cli import main
from vidlstm.defaults import default_model_dir


def test_demo_prints_one_row_per_clip_and_the_accuracy(tiny_model_dir, capsys):
    assert main(["demo", "--model", str(tiny_model_dir), "--per-class", "2", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.rstrip().endswith((" ok", " WRONG"))]
    assert len(rows) == 6  # 2 clips x the tiny model's 3 labels
    match = re.search(r"accuracy: (\d+)/(\d+) = ([\d.]+)%", out)
    assert match and match.group(2) == "6"
    assert float(match.group(3)) == pytest.approx(100 * int(match.group(1)) / 6, abs=0.06)


@pytest.mark.slow
def test_shipped_default_model_classifies_fresh_synthetic_clips_at_97_percent(capsys):
    if not (default_model_dir() / "config.json").is_file():
        pytest.skip("no shipped default model in weights/default")
    # A seed the model never trained on (it trained on seed 7); 80 clips, 10 per class.
    assert main(["demo", "--per-class", "10", "--seed", "2024"]) == 0
    match = re.search(r"accuracy: (\d+)/(\d+)", capsys.readouterr().out)
    correct, total = int(match.group(1)), int(match.group(2))
    assert total == 80
    assert correct / total >= 0.975  # 80/80 for the shipped model (session 16); >= 78 keeps two clips' slack


def test_demo_draws_the_clips_that_synth_draws_with_the_same_seed(tmp_path):
    """`vidlstm demo --seed S` scores the clips `vidlstm synth --seed S` writes (not others drawn in label order)."""
    import csv

    import numpy as np
    import torch

    from vidlstm.checkpoint import save_model
    from vidlstm.data.synth import MOTION_CLASSES, SynthConfig, generate_dataset
    from vidlstm.data.clips import load_clip
    from vidlstm.models import LRCN, ModelConfig
    from vidlstm.stages.demo import DemoConfig, demo_classes, run

    assert demo_classes(sorted(MOTION_CLASSES)) == MOTION_CLASSES
    torch.manual_seed(0)
    labels = ["down", "left", "up"]  # sorted, as training saves them; synth's order is left, up, down
    model_dir = save_model(tmp_path / "model", LRCN(ModelConfig(labels=labels, backbone="vidnet", image_size=32,
                                                                num_frames=8)))
    records, _ = run(DemoConfig(model_dir=str(model_dir), per_class=2, seed=77, out_dir=str(tmp_path / "demo")))
    synth_dir = generate_dataset(tmp_path / "synth", SynthConfig(per_class=2, seed=77), classes=("left", "up", "down"))
    with open(synth_dir / "manifest.csv") as f:
        synth_rows = list(csv.DictReader(f))
    assert [rec["path"] for rec in records] == [row["path"] for row in synth_rows]
    for row in synth_rows:
        a = load_clip(tmp_path / "demo" / row["path"], 4, 32).frames
        b = load_clip(synth_dir / row["path"], 4, 32).frames
        assert np.array_equal(a, b), row["path"]


@pytest.mark.parametrize("command", [["demo", "--seed", "-5"], ["synth", "OUT", "--seed", "4294967296"]])
def test_a_seed_numpy_cannot_take_is_a_usage_error(command, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:  # argparse's usage error
        main([part.replace("OUT", str(tmp_path / "out")) for part in command])
    assert exited.value.code == 2
    assert "--seed: must be from 0 to 2**32 - 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_keeping_the_clips_in_a_file_is_one_line_naming_it(tiny_model_dir, tmp_path, capsys):
    """Where no stage has a sentence of its own, the file system's refusal is the path and the reason (exit 1)."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    assert main(["demo", "--model", str(tiny_model_dir), "--per-class", "1", "--keep", str(a_file)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"vidlstm demo: error: {a_file}: a file, not a folder; name a new folder for the clips"]


def test_a_model_of_other_labels_is_one_line_naming_what_demo_draws(tmp_path, capsys):
    """A model fine-tuned on push-up form ended the demo in a traceback: no synthetic clip is 'correct'."""
    from vidlstm.checkpoint import save_model
    from vidlstm.models import LRCN, ModelConfig

    model_dir = save_model(tmp_path / "model", LRCN(ModelConfig(labels=["correct", "wrong"], backbone="vidnet",
                                                                image_size=32, num_frames=4)))
    assert main(["demo", "--model", str(model_dir), "--per-class", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"vidlstm demo: error: {model_dir}: its labels (correct, wrong) are none of the synthetic motion "
                   f"classes the demo draws (left, right, up, down, grow, shrink, clockwise, anticlockwise); score it "
                   f"on labelled clips with `vidlstm evaluate DATA --model {model_dir}`"]


@pytest.mark.parametrize("files", [{"notes.txt": "mine"},  # and a user's data set, once deleted as an earlier demo's
                                   {"walk/a.mp4": "clip", "manifest.csv": "path,label\nwalk/a.mp4,walk\n"}])
def test_keeping_the_clips_in_a_folder_of_other_files_offers_no_option_demo_lacks(tiny_model_dir, tmp_path, capsys,
                                                                                  files):
    for name, text in files.items():
        (tmp_path / "mine" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "mine" / name).write_text(text)
    assert main(["demo", "--model", str(tiny_model_dir), "--per-class", "1", "--keep", str(tmp_path / "mine")]) == 2
    assert capsys.readouterr().err.strip() == (f"vidlstm demo: error: {tmp_path / 'mine'}: holds files of its own; "
                                               f"name a new folder for the clips")
    assert all((tmp_path / "mine" / name).read_text() == text for name, text in files.items())


def test_keep_replaces_an_earlier_demos_set_but_never_one_synth_wrote(tiny_model_dir, tmp_path, capsys):
    """`demo --keep DIR` replaced the clips of a set `vidlstm synth` wrote there (which may have trained a model)
    without a word, though its help said "a new or empty folder"; `synth` still replaces a demo's set."""
    import json

    from vidlstm.data.synth import MARKER

    small = ["--size", "32", "--min-frames", "4", "--max-frames", "4"]
    demo = ["demo", "--model", str(tiny_model_dir), "--per-class", "1", "--threads", "1", "--keep"]
    synth = tmp_path / "synth"
    assert main(["synth", str(synth), "--per-class", "2", *small]) == 0
    before = {p: p.read_bytes() for p in synth.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main([*demo, str(synth)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"vidlstm demo: error: {synth}: holds a data set `vidlstm synth` wrote ({MARKER}), which `vidlstm demo` "
        f"does not replace; name a new or empty folder for the clips")
    assert {p: p.read_bytes() for p in synth.rglob("*") if p.is_file()} == before
    kept = tmp_path / "kept"
    assert main([*demo, str(kept)]) == 0
    assert json.loads((kept / MARKER).read_text())["written_by"] == "vidlstm demo"
    assert main([*demo, str(kept), "--seed", "3"]) == 0  # its own earlier set: replaced
    assert json.loads((kept / MARKER).read_text())["seed"] == 3
    capsys.readouterr()
    assert main(["synth", str(kept), "--per-class", "1", *small]) == 0
    assert f"removed the earlier synthetic set in {kept} (3 clips)" in capsys.readouterr().out
    assert json.loads((kept / MARKER).read_text())["written_by"] == "vidlstm synth"


def test_a_models_own_training_clips_drawn_again_are_named_as_in_sample(tiny_model_dir, tmp_path, capsys, caplog):
    """`demo --model RUN/model --seed S` drew the clips byte for byte that `synth --seed S` wrote for the run and
    printed their accuracy without a word; evaluate on the same clips said they trained the model."""
    import json
    import shutil

    from vidlstm.data.cache import sha256_file
    from vidlstm.data.synth import SynthConfig, generate_dataset

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_model_dir, run_dir / "model")
    data = generate_dataset(tmp_path / "data", SynthConfig(per_class=2, seed=3), classes=("left", "right", "up"))
    clips = sorted(data.rglob("*.mp4"))[:4]  # 4 of the 6 trained it, as a run's split.json records them
    (run_dir / "split.json").write_text(json.dumps({
        "train": [p.relative_to(data).as_posix() for p in clips], "val": [],
        "train_content": [[p.stat().st_size, sha256_file(p)] for p in clips]}))
    demo = ["demo", "--model", str(run_dir / "model"), "--per-class", "2", "--threads", "1", "--seed"]
    assert main([*demo, "3"]) == 0
    assert [r.getMessage() for r in caplog.records if "in-sample" in r.getMessage()] == [
        f"4 of the 6 demo clips trained this model ({run_dir / 'split.json'}): the accuracy is in-sample, not what "
        f"new clips would get; another --seed draws clips it never trained on"]
    accuracy = [line for line in capsys.readouterr().out.splitlines() if line.startswith("accuracy:")]
    assert accuracy[0].endswith("% (in-sample: 4 of these clips trained the model; not what new clips get)")
    caplog.clear()
    assert main([*demo, "4"]) == 0  # other clips: nothing to say
    assert not [r for r in caplog.records if "in-sample" in r.getMessage()]
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("accuracy:")][0].endswith("%")


def test_the_shipped_models_training_seed_is_named_as_in_sample(caplog, tmp_path):
    """`vidlstm demo --seed 7` drew the shipped model's own training clips (a seed's clips are a prefix of a bigger
    set's) and called them clips it never saw."""
    import shutil
    import tomllib

    from vidlstm.stages.demo import SHIPPED_TRAINING_SEED, DemoConfig, run

    from pathlib import Path

    recipe = tomllib.loads((Path(__file__).resolve().parents[2] / "pipelines" / "default_model.toml").read_text())
    assert int(recipe["vars"]["synth_seed"]) == SHIPPED_TRAINING_SEED
    if not (default_model_dir() / "config.json").is_file():
        pytest.skip("no shipped default model in weights/default")
    run(DemoConfig(per_class=1, seed=SHIPPED_TRAINING_SEED))
    assert [r.getMessage() for r in caplog.records if "in-sample" in r.getMessage()] == [
        "--seed 7 draws the shipped model's own training clips (pipelines/default_model.toml): the accuracy is "
        "in-sample; any other seed draws clips it never trained on"]
    caplog.clear()
    copy = shutil.copytree(default_model_dir(), tmp_path / "copy")  # a copy of it is the same model
    run(DemoConfig(model_dir=str(copy), per_class=1, seed=SHIPPED_TRAINING_SEED))
    assert [r for r in caplog.records if "in-sample" in r.getMessage()]
    caplog.clear()
    run(DemoConfig(per_class=1, seed=8))
    assert not [r for r in caplog.records if "in-sample" in r.getMessage()]
