"""The evaluate stage: metrics agree with the per-file predictions it writes; broken files cost only themselves."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vidlstm.checkpoint import save_model
from vidlstm.data.synth import SynthConfig, generate_dataset
from vidlstm.errors import UsageError
from vidlstm.models import LRCN, ModelConfig
from vidlstm.data.clips import view_offsets
from vidlstm.stages.evaluate import EvaluateConfig, run


@pytest.fixture(scope="module")
def data_and_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    data = generate_dataset(root / "data", SynthConfig(per_class=2, size=32, min_frames=6, max_frames=8, seed=5),
                            classes=("left", "right", "up"))
    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=["left", "right", "up", "down"], num_frames=4, image_size=32))
    return data, save_model(root / "model", model)


def read_predictions(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_outputs_and_metrics_match_the_predictions(data_and_model, tmp_path):
    data, model_dir = data_and_model
    out = run(EvaluateConfig(data=str(data), model_dir=str(model_dir), out_dir=str(tmp_path / "ev"), clips=2,
                             top_k=2, progress=False))
    assert sorted(p.name for p in out.iterdir()) == [
        "classification_report.txt", "confusion_matrix.png", "metrics.json", "predictions.csv"]
    metrics = json.loads((out / "metrics.json").read_text())
    rows = read_predictions(out / "predictions.csv")
    assert len(rows) == metrics["n"] == 6 and metrics["failed"] == 0
    assert metrics["accuracy"] == pytest.approx(np.mean([int(r["correct"]) for r in rows]))
    tops = [json.loads(r["top_k"]) for r in rows]
    top2 = np.mean([r["label"] in [t["label"] for t in top] for r, top in zip(rows, tops)])
    assert metrics["top2_accuracy"] == pytest.approx(top2)
    assert all(len(top) == 2 and r["predicted"] == top[0]["label"] and top[0]["score"] >= top[1]["score"]
               for r, top in zip(rows, tops))
    report = (out / "classification_report.txt").read_text()
    for label in ("left", "right", "up", "down"):
        assert label in report
    assert metrics["clips_per_video"] == 2 and 0.0 <= metrics["ece"] <= 1.0


def test_a_broken_file_is_reported_and_the_rest_evaluated(data_and_model, tmp_path, caplog):
    import logging

    caplog.set_level(logging.WARNING, logger="vidlstm")
    data, model_dir = data_and_model
    manifest = tmp_path / "m.csv"
    (tmp_path / "broken.mp4").write_bytes(b"this is not a video")
    rows = [f"{data / 'left' / 'left_000.mp4'},left", f"{data / 'up' / 'up_000.mp4'},up", "broken.mp4,up"]
    manifest.write_text("path,label\n" + "\n".join(rows) + "\n")
    out = run(EvaluateConfig(data=str(manifest), model_dir=str(model_dir), out_dir=str(tmp_path / "ev"),
                             progress=False))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 2 and metrics["failed"] == 1
    broken = [r for r in read_predictions(out / "predictions.csv") if r["status"] == "error"]
    assert [r["path"] for r in broken] == ["broken.mp4"] and broken[0]["error"]
    named = [r.getMessage() for r in caplog.records if "broken.mp4" in r.getMessage()]
    assert named == [f"{tmp_path / 'broken.mp4'}: {broken[0]['error']}"]  # on stderr too, with its reason


def test_entries_named_like_videos_that_are_no_files_count_as_failed(data_and_model, tmp_path, caplog):
    """A FIFO or a dangling link named clip.mp4 in a class folder was left out without a word (rc 0, failed 0),
    where train warns of it: each is named, listed as an error row and counted as failed."""
    import logging
    import os
    import shutil

    caplog.set_level(logging.WARNING, logger="vidlstm")
    data, model_dir = data_and_model
    copy = tmp_path / "mixed"
    shutil.copytree(data, copy)
    os.mkfifo(copy / "left" / "fifo.mp4")
    (copy / "up" / "dangling.mp4").symlink_to(tmp_path / "nonexistent.mp4")
    out = run(EvaluateConfig(data=str(copy), model_dir=str(model_dir), out_dir=str(tmp_path / "ev"), workers=0,
                             progress=False))
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["n"], metrics["failed"]) == (6, 2)
    errors = {r["path"]: (r["label"], r["error"]) for r in read_predictions(out / "predictions.csv")
              if r["status"] == "error"}
    assert errors == {"left/fifo.mp4": ("left", "a FIFO (named pipe), not a file"),
                      "up/dangling.mp4": ("up", f"a symbolic link to no file ({tmp_path / 'nonexistent.mp4'} does "
                                                f"not exist)")}
    said = [r.getMessage() for r in caplog.records if "fifo.mp4" in r.getMessage() or "dangling" in r.getMessage()]
    assert said == [f"{copy / 'left' / 'fifo.mp4'}: a FIFO (named pipe), not a file",
                    f"{copy / 'up' / 'dangling.mp4'}: {errors['up/dangling.mp4'][1]}"]


def test_labels_unknown_to_the_model_are_a_usage_error(data_and_model, tmp_path):
    data, _ = data_and_model
    torch.manual_seed(0)
    other = save_model(tmp_path / "m", LRCN(ModelConfig(labels=["left", "right"], num_frames=4, image_size=32)))
    with pytest.raises(UsageError, match="label.s. up are not known to the model"):
        run(EvaluateConfig(data=str(data), model_dir=str(other), out_dir=str(tmp_path / "ev"), progress=False))


def test_clips_are_bounded_as_a_models_test_views(data_and_model, tmp_path):
    """--clips 100000 decoded every view of a video at once: memory grew without end and no word was said."""
    data, model_dir = data_and_model
    for clips in (0, 9, 100000):
        with pytest.raises(UsageError, match=f"^--clips must be an integer from 1 to 8, as a model's test views "
                                             f"\\(got {clips}\\)$"):
            EvaluateConfig(data=str(data), model_dir=str(model_dir), clips=clips)
    torch.manual_seed(0)  # 8 views of 256 frames at 256 px are 400 MB a video, above a clip's limit
    large = save_model(tmp_path / "large", LRCN(ModelConfig(labels=["left", "right", "up"], num_frames=256,
                                                            image_size=256)))
    with pytest.raises(UsageError, match=r"^--clips 8: num_frames x image_size\^2 x 3 = .* x clips 8; give fewer"):
        run(EvaluateConfig(data=str(data), model_dir=str(large), out_dir=str(tmp_path / "ev"), clips=8,
                           progress=False))
    assert not (tmp_path / "ev").exists()


def test_an_empty_subset_of_a_split_says_why(data_and_model, tmp_path):
    data, model_dir = data_and_model
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": [p.relative_to(data).as_posix() for p in sorted(data.rglob("*.mp4"))],
                                 "val": []}))
    with pytest.raises(UsageError, match="split.json: its val subset is empty .*judged out-of-fold"):
        run(EvaluateConfig(data=str(data), model_dir=str(model_dir), out_dir=str(tmp_path / "ev"), progress=False,
                           split_file=str(split)))


def test_the_report_leaves_out_classes_neither_in_the_data_nor_predicted(data_and_model, tmp_path):
    data, model_dir = data_and_model
    out = run(EvaluateConfig(data=str(data), model_dir=str(model_dir), out_dir=str(tmp_path / "ev"), progress=False))
    report = (out / "classification_report.txt").read_text()
    predicted = {r["predicted"] for r in read_predictions(out / "predictions.csv")}
    rows = {line.split()[0] for line in report.splitlines()[2:] if line.strip() and line.split()[0] in
            ("left", "right", "up", "down")}
    assert rows == {"left", "right", "up"} | predicted
    assert ("down" in rows) != ("not in the data and never predicted (left out above): down" in report)


def test_the_report_prints_support_as_whole_numbers():
    """Where every prediction was wrong (evaluate on a subset of the classes), sklearn's report printed the support as
    0.0 and 2.0; otherwise the report is laid out as sklearn lays it out."""
    from sklearn.metrics import classification_report

    from vidlstm.stages.evaluate import _report_text

    report = _report_text(np.array([1, 1, 2, 2]), np.array([0, 0, 3, 3]), [0, 1, 2, 3],
                          ["grow", "left", "right", "shrink"])
    assert [line.split()[-1] for line in report.splitlines()[2:] if line.strip()] == ["0", "2", "2", "0", "4", "4", "4"]
    assert "    accuracy                           0.00         4\n" in report
    truth, pred = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0])
    names = ["left", "a much longer class name", "up"]
    assert _report_text(truth, pred, [0, 1, 2], names) == classification_report(truth, pred, labels=[0, 1, 2],
                                                                                 target_names=names, zero_division=0)


def test_clip_offsets_spread_views_inside_each_segment():
    assert view_offsets(1) == [None]
    assert view_offsets(4) == [0.125, 0.375, 0.625, 0.875]


@pytest.mark.slow
def test_a_crashing_or_hanging_decoder_costs_only_its_file(data_and_model, tmp_path):
    import shutil

    from batch.fault_decoders import faulty_real_decode

    data, model_dir = data_and_model
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    first = sorted((copy / "left").iterdir())[0]
    first.rename(first.with_name("crash.mp4"))
    second = sorted((copy / "right").iterdir())[0]
    second.rename(second.with_name("hang.mp4"))
    out = run(EvaluateConfig(data=str(copy), model_dir=str(model_dir), out_dir=str(tmp_path / "ev"), clips=2,
                             progress=False, timeout=2.0), decode_fn=faulty_real_decode)
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["n"], metrics["failed"]) == (4, 2)
    errors = {row["path"]: row["error"] for row in read_predictions(out / "predictions.csv") if row["status"] == "error"}
    assert errors == {"left/crash.mp4": "decoder crashed (signal 11, SIGSEGV)", "right/hang.mp4": "timed out after 2 s"}


def test_the_output_folder_is_never_a_model_or_run_folder_or_a_file(data_and_model, tmp_path):
    """-o MODEL_DIR replaced the model's training metrics (its card and `info` then showed the evaluation's); a file
    for -o was an OS error with exit 1."""
    data, model_dir = data_and_model
    before = (model_dir / "metrics.json").read_bytes() if (model_dir / "metrics.json").exists() else None
    with pytest.raises(UsageError, match="a model or training run folder; write the evaluation to another -o"):
        run(EvaluateConfig(data=str(data), model_dir=str(model_dir), out_dir=str(model_dir)))
    after = (model_dir / "metrics.json").read_bytes() if (model_dir / "metrics.json").exists() else None
    assert after == before
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(UsageError, match="a_file: not a folder"):
        run(EvaluateConfig(data=str(data), model_dir=str(model_dir), out_dir=str(tmp_path / "a_file")))
    for run_like in ("auto_run", "auto_run/candidates"):  # an auto run keeps no config.json of its own
        (tmp_path / "auto_run" / "candidates" / "scratch" / "last").mkdir(parents=True, exist_ok=True)
        (tmp_path / "auto_run" / "choice.json").write_text("{}")
        with pytest.raises(UsageError, match="a model or training run folder"):
            run(EvaluateConfig(data=str(data), model_dir=str(model_dir), out_dir=str(tmp_path / run_like)))
    with pytest.raises(UsageError, match="-o is inside DATA"):  # read as a class folder by every later run
        run(EvaluateConfig(data=str(data), model_dir=str(model_dir), out_dir=str(data / "ev")))
    assert not (data / "ev").exists()
    workspace = tmp_path / "ws"  # a folder that holds runs is no run: -o there (e.g. -o .) is fine
    (workspace / "some_run" / "last").mkdir(parents=True)
    run(EvaluateConfig(data=str(data), model_dir=str(model_dir), out_dir=str(workspace), progress=False))
    assert (workspace / "metrics.json").is_file()



def test_a_users_own_files_in_the_output_folder_are_never_overwritten(data_and_model, tmp_path):
    """-o into a folder of the user's replaced their own predictions.csv or metrics.json without a word; a re-run
    into an earlier evaluation's folder (finished, or stopped before its metrics.json) still replaces it."""
    data, model_dir = data_and_model
    for name, text in (("metrics.json", '{"accuracy": 0.9}'), ("predictions.csv", "path,label\na.mp4,left\n"),
                       ("confusion_matrix.png", "mine")):
        mine = tmp_path / name.replace(".", "_")
        mine.mkdir()
        (mine / name).write_text(text)
        with pytest.raises(UsageError, match=f"^{mine}: holds a {name} that no earlier evaluation wrote; write the "
                                             f"evaluation to another -o"):
            run(EvaluateConfig(data=str(data), model_dir=str(model_dir), out_dir=str(mine), progress=False))
        assert [p.name for p in mine.iterdir()] == [name] and (mine / name).read_text() == text
    out = run(EvaluateConfig(data=str(data), model_dir=str(model_dir), out_dir=str(tmp_path / "ev"), progress=False,
                             top_k=2))
    run(EvaluateConfig(data=str(data), model_dir=str(model_dir), out_dir=str(out), progress=False, top_k=3))
    assert json.loads((out / "metrics.json").read_text())["top_k"] == 3
    (out / "metrics.json").unlink()  # stopped before its last file: known by its predictions.csv
    run(EvaluateConfig(data=str(data), model_dir=str(model_dir), out_dir=str(out), progress=False, top_k=2))
    assert json.loads((out / "metrics.json").read_text())["top_k"] == 2


@pytest.mark.parametrize("layout", ["one backbone", "auto"])
def test_evaluating_clips_the_model_trained_on_says_the_accuracy_is_in_sample(data_and_model, tmp_path, caplog,
                                                                             layout):
    """A read-out that auto kept trains on every clip; `vidlstm evaluate DATA` on the same folder printed 0.9945
    with nothing to say it was in-sample (the report even suggested that command)."""
    import shutil

    from vidlstm.training.config import TrainConfig

    data, model_dir = data_and_model
    run_dir = tmp_path / "run"
    shutil.copytree(model_dir, run_dir / "model")
    names = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.mp4"))
    (run_dir / "split.json").write_text(json.dumps({"train": names[:4], "val": names[4:]}))
    settings = TrainConfig(data=str(data), out_dir=str(run_dir))
    if layout == "auto":  # the kept candidate's settings, whose split RUN/split.json is
        (run_dir / "candidates" / "pretrained").mkdir(parents=True)
        settings.save(run_dir / "candidates" / "pretrained" / "config.json")
        (run_dir / "choice.json").write_text(json.dumps({"chosen": "pretrained"}))
    else:
        settings.save(run_dir / "config.json")
    out = run(EvaluateConfig(data=str(data), model_dir=str(run_dir / "model"), out_dir=str(tmp_path / "ev"),
                             workers=0, progress=False))
    said = [r.getMessage() for r in caplog.records if "in-sample" in r.getMessage()]
    assert said == [f"4 of the 6 clips evaluated trained this model ({run_dir / 'split.json'}): the accuracy is "
                    f"in-sample, not what new clips would get; evaluate clips it never saw (or its run's --split ... "
                    f"--subset val)"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["in_sample_clips"] == 4
    assert saved["subset"] == "all" and saved["config"]["subset"] is None  # it read "val" with no split given
    caplog.clear()
    out = run(EvaluateConfig(data=str(data), model_dir=str(run_dir / "model"), out_dir=str(tmp_path / "ev2"),
                             split_file=str(run_dir / "split.json"), subset="val", workers=0, progress=False))
    assert "in_sample_clips" not in json.loads((out / "metrics.json").read_text())
    assert not [r for r in caplog.records if "in-sample" in r.getMessage()]
    # Copies of training clips under other names are in-sample too, where the split holds their content (train
    # records it); a held-out clip copied is not.
    from vidlstm.data.cache import sha256_file

    split = json.loads((run_dir / "split.json").read_text())
    split["train_content"] = sorted([(data / n).stat().st_size, sha256_file(data / n)] for n in names[:4])
    (run_dir / "split.json").write_text(json.dumps(split))
    copies = tmp_path / "new_clips"
    for k, name in enumerate((names[0], names[3], names[5])):
        (copies / Path(name).parent).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data / name, copies / Path(name).parent / f"renamed_{k}.mp4")
    out = run(EvaluateConfig(data=str(copies), model_dir=str(run_dir / "model"), out_dir=str(tmp_path / "ev3"),
                             workers=0, progress=False))
    assert json.loads((out / "metrics.json").read_text())["in_sample_clips"] == 2


def test_predictions_csv_top_k_is_unambiguous_for_any_label(tmp_path):
    """`top_k` was `label:score label:score`, which a label holding a space or a colon broke."""
    from vidlstm.data.datasets import LabelledVideos, VideoItem
    from vidlstm.stages.evaluate import _write_predictions

    labels = ["push up", "sit:stand"]
    data = LabelledVideos([VideoItem(tmp_path / "push up" / "a.mp4", "push up")], labels, tmp_path)
    data.items.append(VideoItem(tmp_path / "push up" / "broken.mp4", "push up"))
    _write_predictions(tmp_path / "p.csv", data, np.array([0, 0]), np.array([[0.25, 0.75], [0.0, 0.0]]),
                       [None, "empty file (0 bytes)"], labels, 2)
    row, broken = read_predictions(tmp_path / "p.csv")
    assert (json.loads(broken["top_k"]), broken["status"], broken["error"]) == ([], "error", "empty file (0 bytes)")
    assert json.loads(row["top_k"]) == [{"label": "sit:stand", "score": 0.75}, {"label": "push up", "score": 0.25}]
    assert (row["predicted"], row["correct"]) == ("sit:stand", "0")
