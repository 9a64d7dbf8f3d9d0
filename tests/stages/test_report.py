"""`vidlstm report`: one self-contained HTML page from a run folder, an evaluate output or a predictions file."""
from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from vidlstm.batch.records import write_records
from vidlstm.cli import main
from vidlstm.data.clips import Clip
from vidlstm.explain import explain_clip
from vidlstm.io import VideoInfo
from vidlstm.inference import ClipScores
from vidlstm.stages.report import ReportConfig, run
from vidlstm.training.config import TrainConfig
from vidlstm.training.logs import MetricsLog
from vidlstm.training.plots import plot_confusion_matrix, plot_training_curves

EVALUATE_HEADER = ["path", "label", "predicted", "score", "correct", "top_k", "status", "error"]
EPOCHS = [
    {"epoch": 0, "train_loss": 1.2345, "train_acc": 0.5, "val_loss": 1.1111, "val_acc": 0.625, "lr": 0.002, "seconds": 1.5},
    {"epoch": 1, "train_loss": 0.6789, "train_acc": 0.875, "val_loss": 0.7777, "val_acc": 0.8125, "lr": 0.001,
     "seconds": 1.25},
]


def top_k(*pairs):
    """A predictions.csv `top_k` cell: a JSON list of {label, score}."""
    return json.dumps([{"label": label, "score": score} for label, score in pairs])


# Evaluate rows: left 1/2 right, right 2/2 right -> precision left 1, right 2/3; recall left 0.5, right 1.
EVAL_ROWS = [
    ["left/l1.mp4", "left", "left", "0.910000", "1", top_k(("left", 0.91), ("right", 0.09)), "ok", ""],
    ["left/l2.mp4", "left", "right", "0.550000", "0", top_k(("right", 0.55), ("left", 0.45)), "ok", ""],
    ["right/r1.mp4", "right", "right", "0.870000", "1", top_k(("right", 0.87), ("left", 0.13)), "ok", ""],
    ["right/r2.mp4", "right", "right", "0.770000", "1", top_k(("right", 0.77), ("left", 0.23)), "ok", ""],
    ["right/r3.mp4", "right", "", "", "", "", "error", "cannot decode (moov atom not found)"],
]


def write_evaluation(folder):
    """An evaluate output folder in the format `vidlstm evaluate` writes."""
    folder.mkdir(parents=True)
    with open(folder / "predictions.csv", "w", newline="") as f:
        csv.writer(f).writerows([EVALUATE_HEADER, *EVAL_ROWS])
    metrics = {"n": 4, "top_k": 2, "accuracy": 0.75, "top2_accuracy": 1.0, "mean_class_accuracy": 0.75,
               "ece": 0.1234, "failed": 1, "clips_per_video": 1, "model": "run/model", "data": "clips",
               "subset": "all", "config": {"data": "clips", "top_k": 2}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "classification_report.txt").write_text("              precision    recall\n        left       1.00      0.50\n")
    plot_confusion_matrix(np.array([[1, 1], [0, 2]]), ["left", "right"], folder / "confusion_matrix.png")
    return folder


def write_run(root, with_evaluation=True):
    """A training run folder as `vidlstm train` leaves it (written with the training code's own writers)."""
    root.mkdir(parents=True)
    TrainConfig(data="clips", out_dir=str(root)).save(root / "config.json")
    log = MetricsLog(root / "metrics.csv")
    for row in EPOCHS:
        log.append(row)
    plot_training_curves(EPOCHS, root / "curves.png")
    (root / "model").mkdir()
    (root / "model" / "labels.json").write_text(json.dumps(["left", "right"]))
    (root / "model" / "metrics.json").write_text(json.dumps({
        "epochs_run": 2, "best_epoch": 2, "val_accuracy": 0.8125, "val_ece": 0.0421, "temperature": 1.37,
        "train_class_counts": {"left": 12, "right": 7}, "skipped_files": []}))
    (root / "split.json").write_text(json.dumps({"seed": 0, "val_fraction": 0.2, "labels": ["left", "right"],
                                                 "train": [f"t{i}" for i in range(19)], "val": ["v1", "v2"]}))
    if with_evaluation:
        write_evaluation(root / "evaluation")
    return root


def write_explanation(video_path, out_dir, labels=("left", "right", "wave"), steps=6):
    """A real explanation (JSON + PNG) of a made-up clip and scores: no model needed."""
    rng = np.random.default_rng(0)
    info = VideoInfo(str(video_path), 60, 30.0, 2.0, 32, 32, 0, "h264", "test")
    clip = Clip(frames=rng.integers(0, 256, (steps, 32, 32, 3), dtype=np.uint8), indices=np.arange(steps) * 10,
                info=info, backend="test")
    attention = np.exp(rng.normal(size=steps))
    step_probs = rng.dirichlet(np.ones(len(labels)), size=steps)  # (T, C)
    scores = ClipScores(probs=step_probs.mean(0), attention=attention / attention.sum(), step_probs=step_probs)
    return explain_clip(video_path, clip, scores, list(labels), out_dir)


def assert_self_contained(page: str, images: int) -> None:
    """Every image is an embedded PNG, every link an anchor; nothing is fetched, nothing runs."""
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == images
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(href.startswith("#") for href in re.findall(r'href="([^"]*)"', page))
    lowered = page.lower()
    assert "<script" not in lowered and "<link" not in lowered and "http://" not in lowered
    assert "https://" not in lowered and "@import" not in lowered


def cell(value: str) -> str:
    return f'<td class="num">{value}</td>'


def test_report_of_a_run_folder_has_metrics_curves_confusion_and_per_class(tmp_path):
    run_dir = write_run(tmp_path / "run")

    page = run(ReportConfig(source=str(run_dir), output=str(tmp_path / "report.html"))).read_text()

    assert_self_contained(page, images=2)  # curves.png and confusion_matrix.png
    for number in ("1.2345", "0.6789", "0.8125", "0.0421", "1.3700"):  # epochs table and model metrics
        assert cell(number) in page
    assert "<td>left</td>" in page and "<td>right</td>" in page
    assert cell("12") in page and cell("7") in page  # training clips per class
    assert "19 training and 2 validation clips" in page
    # Per-class results computed from the evaluation's predictions: precision 1 / 0.6667, recall 0.5 / 1.
    per_class = page[page.index('id="eval0-classes"'):page.index('id="eval0-files"')]
    assert cell("0.6667") in per_class and cell("0.5000") in per_class
    assert "<b>5</b> files" in page and "<b>4</b> ok" in page and "<b>1</b> error" in page
    assert "cannot decode (moov atom not found)" in page
    assert "absent:" not in page


def test_the_split_line_says_how_many_clips_the_model_saw_where_some_did_not_decode(tmp_path):
    """split.json lists every clip it sent each way, so with undecodable files skipped the report's split counts
    differed from the model's train_clips and val_clips with no word why."""
    run_dir = write_run(tmp_path / "run", with_evaluation=False)
    metrics = json.loads((run_dir / "model" / "metrics.json").read_text())
    (run_dir / "model" / "metrics.json").write_text(json.dumps({**metrics, "train_clips": 18, "val_clips": 2,
                                                                 "skipped_files": ["clips/left/t3.mp4"]}))
    page = run(ReportConfig(source=str(run_dir), output=str(tmp_path / "report.html"))).read_text()
    assert ("19 training and 2 validation clips (seed 0, validation fraction 0.2); 1 of them could not be decoded, "
            "so 18 clips trained the model and 2 validated it") in page
    (run_dir / "model" / "metrics.json").write_text(json.dumps({**metrics, "train_clips": 18, "val_clips": 2,
                                                                 "skipped_files": ["a.mp4", "empty.mp4"]}))
    page = run(ReportConfig(source=str(run_dir), output=str(tmp_path / "report.html"))).read_text()
    assert ("1 of them could not be decoded, so 18 clips trained the model and 2 validated it (2 files skipped in "
            "all: the others before the split, empty ones and the like)") in page
    (run_dir / "model" / "metrics.json").write_text(json.dumps({**metrics, "train_clips": 19, "val_clips": 2}))
    page = run(ReportConfig(source=str(run_dir), output=str(tmp_path / "report.html"))).read_text()
    assert "validation fraction 0.2)</p>" in page and "could not be decoded" not in page


def test_report_of_an_auto_run_shows_the_kept_familys_history(tmp_path):
    """`train` by default (--backbone auto) keeps one candidate's run in RUN_DIR/candidates/FAMILY."""
    root = tmp_path / "run"
    write_run(root / "candidates" / "scratch", with_evaluation=False)
    (root / "candidates" / "pretrained").mkdir()  # the other family: not shown
    (root / "choice.json").write_text(json.dumps({
        "chosen": "scratch", "rule": "the highest accuracy estimate", "clause": "the highest estimate",
        "candidates": {"pretrained": {"backbone": "efficientnet_lite0", "accuracy": 0.75, "estimate": "out-of-fold",
                                      "clips": 21, "run_seconds": 12.5},
                       "scratch": {"backbone": "vidnet", "accuracy": 0.8125, "estimate": "validation", "clips": 2,
                                   "run_seconds": 30.0}}}))
    (root / "candidates" / "scratch" / "model").rename(root / "model")  # RUN_DIR/model: the kept model
    metrics = json.loads((root / "model" / "metrics.json").read_text())
    (root / "model" / "metrics.json").write_text(json.dumps(dict(metrics, readout={"cv_accuracy": 0.75, "folds": 5})))
    write_evaluation(root / "evaluation")

    page = run(ReportConfig(source=str(root), output=str(tmp_path / "report.html"))).read_text()

    assert_self_contained(page, images=2)
    assert cell("1.2345") in page and cell("0.8125") in page
    assert "19 training and 2 validation clips" in page
    assert "absent:" not in page
    # What auto tried and kept, and a nested metric under its own name.
    assert "<td>scratch (kept)</td>" in page and "<td>efficientnet_lite0</td>" in page
    assert "rule: the highest accuracy" in page and "kept by: the highest estimate" in page
    assert "readout.cv_accuracy" in page and "item(s)" not in page.split("readout.cv_accuracy")[1][:200]



def test_report_of_an_auto_run_whose_model_went_to_model_out(tmp_path):
    """A finished auto run trained with --model-out has no RUN/model: it was reported as "an auto run that has not
    chosen its model yet", and the advice given (--resume) was then refused."""
    root = tmp_path / "run"
    write_run(root / "candidates" / "scratch", with_evaluation=False)
    (root / "candidates" / "scratch" / "model").rename(tmp_path / "kept")
    (root / "choice.json").write_text(json.dumps({
        "chosen": "scratch", "rule": "the highest accuracy estimate", "model_dir": str(tmp_path / "kept"),
        "candidates": {"scratch": {"backbone": "vidnet", "accuracy": 0.8125, "estimate": "validation", "clips": 2,
                                   "run_seconds": 30.0}}}))
    page = run(ReportConfig(source=str(root), output=str(tmp_path / "report.html"))).read_text()
    assert cell("1.2345") in page and cell("0.8125") in page and "<td>scratch (kept)</td>" in page
    assert "the trained model folder" not in page


def test_report_of_an_incomplete_run_says_what_is_absent(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    log = MetricsLog(run_dir / "metrics.csv")
    log.append(EPOCHS[0])

    page = run(ReportConfig(source=str(run_dir), output=str(tmp_path / "r.html"))).read_text()

    assert_self_contained(page, images=0)
    assert cell("1.2345") in page
    for missing in ("curves.png (training curves)", "config.json (training settings)",
                    "model/ (the trained model folder)", "an evaluation (confusion matrix, per-class results)"):
        assert f"absent: {missing}" in page


def prediction_records(tmp_path):
    videos = tmp_path / "videos"
    return [
        {"path": str(videos / "a.mp4"), "status": "ok", "label": "left", "score": 0.91,
         "top_k": [{"label": "left", "score": 0.91}], "frames": 8, "decoder": "decord", "seconds": 0.2},
        {"path": str(videos / "b&<b>bold</b>.mp4"), "status": "ok", "label": "left", "score": 0.64,
         "top_k": [{"label": "left", "score": 0.64}], "frames": 8, "decoder": "pyav", "seconds": 0.3},
        {"path": str(videos / "c.mp4"), "status": "ok", "label": "right", "score": 0.55,
         "top_k": [{"label": "right", "score": 0.55}], "frames": 8, "decoder": "decord", "seconds": 0.2},
        {"path": str(videos / "<script>alert(1)</script>.mp4"), "status": "error", "label": None, "score": None,
         "top_k": [], "frames": 0, "decoder": None, "seconds": 0.1, "error": "cannot decode (a & b < c)"},
    ]


def assert_prediction_report(page: str, records: list[dict]) -> None:
    assert "<b>4</b> files" in page and "<b>3</b> ok" in page and "<b>1</b> error" in page
    labels = page[page.index('id="labels"'):page.index('id="files"')]
    assert re.search(r"<td>left</td><td class=\"num\">2</td><td>66\.7%</td>", labels)
    assert re.search(r"<td>right</td><td class=\"num\">1</td><td>33\.3%</td>", labels)
    for value in ("0.9100", "0.6400", "0.5500"):
        assert cell(value) in page
    # Strings from files are text, never markup.
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;.mp4" in page
    assert "<b>bold</b>" not in page and "b&amp;&lt;b&gt;bold&lt;/b&gt;.mp4" in page
    assert "cannot decode (a &amp; b &lt; c)" in page
    assert "1 of 3 classified file(s) have an explanation" in page
    assert f"{records[0]['path']}: " in page  # the strip's caption names its video


def test_report_of_predictions_jsonl_with_explanations_beside_it(tmp_path):
    records = prediction_records(tmp_path)
    records[0].update(write_explanation(records[0]["path"], tmp_path / "explanations"))
    source = write_records(tmp_path / "preds.jsonl", records)

    page = run(ReportConfig(source=str(source), output=str(tmp_path / "report.html"))).read_text()

    assert_self_contained(page, images=1)  # the one explanation strip
    assert_prediction_report(page, records)


def test_report_of_predictions_csv_finds_explanations_by_video_path(tmp_path):
    records = prediction_records(tmp_path)
    write_explanation(records[0]["path"], tmp_path / "elsewhere")  # CSV records do not carry the JSON's name
    source = write_records(tmp_path / "preds.csv", records)

    code = main(["report", str(source), "-o", str(tmp_path / "report.html"),
                 "--explanations", str(tmp_path / "elsewhere")])

    page = (tmp_path / "report.html").read_text()
    assert code == 0
    assert_self_contained(page, images=1)
    assert_prediction_report(page, records)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_file_name_that_is_not_utf8_is_shown_with_a_replacement_character(tmp_path, suffix):
    """predict keeps such a name (its bytes in a CSV, surrogate escapes in JSONL) so that a resume finds it; the
    report must read both and write a page that is UTF-8."""
    import os

    records = prediction_records(tmp_path)
    records[0]["path"] = os.fsdecode(os.fsencode(str(tmp_path)) + b"/lat\xe9in.mov")
    source = write_records(tmp_path / f"preds{suffix}", records)
    out = tmp_path / "report.html"
    assert main(["report", str(source), "-o", str(out)]) == 0
    assert "lat\ufffdin.mov" in out.read_bytes().decode("utf-8")


def test_report_of_an_evaluate_predictions_csv(tmp_path):
    folder = write_evaluation(tmp_path / "ev")
    (folder / "confusion_matrix.png").unlink()

    page = run(ReportConfig(source=str(folder / "predictions.csv"), output=str(tmp_path / "r.html"))).read_text()

    assert_self_contained(page, images=0)
    assert "absent: confusion_matrix.png (confusion matrix)" in page
    assert cell("0.7500") in page and cell("0.1234") in page  # accuracy and ECE from metrics.json
    assert re.search(r"<td>right</td><td class=\"num\">3</td><td>60\.0%</td>", page)  # true labels: 3 of 5
    assert "no explanation found" in page


def test_explanation_strip_shows_dollar_signs_literally(tmp_path):
    # Two "$" in a file name or label would make matplotlib parse TeX and fail on "\\x".
    added = write_explanation(tmp_path / "$\\frac{a$ b.mp4", tmp_path / "ex", labels=("a$b$", "$\\x$", "c"))
    data = json.loads(Path(added["explanation"]).read_text())
    assert (tmp_path / "ex" / data["strip"]).stat().st_size > 10_000
    assert data["path"].endswith("$\\frac{a$ b.mp4") and data["strip"].startswith("frac_a_b-")


@pytest.mark.parametrize("problem", ["missing source", "foreign csv", "missing output folder", "empty folder"])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, problem):
    source, output = tmp_path / "preds.jsonl", tmp_path / "report.html"
    write_records(source, prediction_records(tmp_path))
    if problem == "missing source":
        source = tmp_path / "nope.jsonl"
    elif problem == "foreign csv":
        source = tmp_path / "other.csv"
        source.write_text("name,size\nx,1\n")
    elif problem == "missing output folder":
        output = tmp_path / "no" / "report.html"
    else:
        source = tmp_path / "empty"
        source.mkdir()

    code = main(["report", str(source), "-o", str(output)])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("vidlstm report: error: ")
    assert str(output.parent if problem == "missing output folder" else source) in err[0]
    assert not output.exists()


def test_the_predictions_are_never_the_reports_output(tmp_path, capsys):
    source = tmp_path / "preds.jsonl"
    write_records(source, prediction_records(tmp_path))
    before = source.read_bytes()
    (tmp_path / "model").mkdir()
    for output in (source, tmp_path / "report.csv", tmp_path / "model" / "config.json", tmp_path / ".preds.jsonl.lock"):
        assert main(["report", str(source), "-o", str(output)]) == 2
        assert "the report is an HTML page; name an .html file for -o" in capsys.readouterr().err
    assert source.read_bytes() == before and not (tmp_path / "report.csv").exists()


def test_a_hand_edited_explanation_that_is_not_a_file_name_is_ignored(tmp_path):
    source = tmp_path / "preds.jsonl"
    source.write_text(json.dumps({"path": "f.mp4", "status": "ok", "label": "y", "score": 0.3,
                                  "explanation": {"x": 1}}) + "\n")
    assert main(["report", str(source), "-o", str(tmp_path / "r.html")]) == 0
    assert "f.mp4" in (tmp_path / "r.html").read_text()


@pytest.mark.slow
def test_report_of_a_real_evaluate_output(tmp_path):
    """The formats assumed above are the ones the evaluate stage really writes."""
    import torch

    from vidlstm.checkpoint import save_model
    from vidlstm.data.synth import SynthConfig, generate_dataset
    from vidlstm.models import LRCN, ModelConfig
    from vidlstm.stages.evaluate import EvaluateConfig, run as evaluate

    data = generate_dataset(tmp_path / "data", SynthConfig(per_class=2, size=32, min_frames=6, max_frames=8, seed=5),
                            classes=("left", "right"))
    torch.manual_seed(0)
    model_dir = save_model(tmp_path / "model", LRCN(ModelConfig(labels=["left", "right"], num_frames=4, image_size=32)))
    out = evaluate(EvaluateConfig(data=str(data), model_dir=str(model_dir), out_dir=str(tmp_path / "run" / "eval"),
                                  progress=False))

    page = run(ReportConfig(source=str(out), output=str(tmp_path / "report.html"))).read_text()

    assert_self_contained(page, images=1)  # the confusion matrix
    metrics = json.loads((out / "metrics.json").read_text())
    assert cell(f"{metrics['accuracy']:.4f}") in page and cell(f"{metrics['ece']:.4f}") in page
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and all(f"<td class=\"path\">{r['path']}</td>" in page for r in rows)
    assert "<b>4</b> ok" in page and "absent:" not in page


def test_an_auto_run_that_has_not_chosen_yet_says_how_to_go_on(tmp_path, capsys):
    """An auto run interrupted while its candidates trained was "neither a training run folder nor an evaluate
    output"."""
    run = tmp_path / "run"
    (run / "candidates" / "pretrained").mkdir(parents=True)  # interrupted while decoding: nothing to report
    assert main(["report", str(run), "-o", str(tmp_path / "r.html")]) == 2
    assert "resume it with the same train command and --resume); no candidate has trained yet" in \
        capsys.readouterr().err
    (run / "candidates" / "scratch" / "model").mkdir(parents=True)
    assert main(["report", str(run), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert "a --backbone auto run that has not chosen its model yet (where it was interrupted, resume it with the " \
           "same train command and --resume)" in err and str(run / "candidates" / "scratch") in err \
           and "pretrained" not in err


def test_a_run_that_stopped_before_its_first_epoch_is_refused_not_reported_as_absent(tmp_path, capsys):
    """A one-backbone run that failed on its data left an empty last/: `report` wrote a page of "absent" parts and
    exited 0."""
    run = tmp_path / "run"
    (run / "last").mkdir(parents=True)
    assert main(["report", str(run), "-o", str(tmp_path / "r.html")]) == 2
    assert ("run: a training run with no epoch to report (no metrics.csv, model/ or saved state): it stopped before "
            "training, on an error or interrupted") in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
    # An auto run whose one candidate stopped so names no candidate to report on (it named one `report` refused).
    (tmp_path / "auto" / "candidates" / "pretrained" / "last").mkdir(parents=True)
    assert main(["report", str(tmp_path / "auto"), "-o", str(tmp_path / "r.html")]) == 2
    assert "no candidate has trained yet" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
@pytest.mark.parametrize("content", ["empty", "cut off"])
def test_a_predictions_file_without_a_complete_record_is_refused_in_one_line(tmp_path, capsys, suffix, content):
    """An empty .jsonl (or one holding only what a kill left of its first record) gave a page of "no records" with
    exit 0 while an empty .csv was refused: both are refused, the cut-off one said to be cut off."""
    source, output = tmp_path / f"preds{suffix}", tmp_path / "report.html"
    write_records(source, prediction_records(tmp_path))
    whole = source.read_bytes()
    first_end = whole.index(b"\n", whole.index(b"\n") + 1 if suffix == ".csv" else 0) + 1
    source.write_bytes(b"" if content == "empty" else whole[:first_end - 5])

    code = main(["report", str(source), "-o", str(output)])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not output.exists()
    assert err[0].startswith(f"vidlstm report: error: {source}: holds no complete vidlstm record: ")
    cut = len(source.read_bytes().rsplit(b"\n", 1)[-1])  # a CSV's header is a complete line
    assert ("it is empty" if content == "empty" else f"it is {cut} bytes of a record cut off") in err[0]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_record_cut_off_at_the_end_is_left_out_and_said(tmp_path, capsys, suffix):
    source, output = tmp_path / f"preds{suffix}", tmp_path / "report.html"
    write_records(source, prediction_records(tmp_path)[:3])
    source.write_bytes(source.read_bytes()[:-7])  # the third record cut off

    code = main(["report", str(source), "-o", str(output)])

    err = capsys.readouterr().err.strip().splitlines()
    cut = len(source.read_bytes().rsplit(b"\n", 2)[-1])
    assert code == 1 and len(err) == 1
    assert err[0].startswith(f"vidlstm report: warning: {source}: ends in a record cut off ({cut} bytes")
    page = output.read_text()
    assert "<b>2</b> files" in page and f"left out: a record cut off at the end of {source.name} ({cut} bytes)" in page


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_line_that_is_no_record_is_refused_with_advice_for_an_input(tmp_path, capsys, suffix):
    source = tmp_path / f"preds{suffix}"
    write_records(source, prediction_records(tmp_path))
    lines = source.read_text().splitlines(keepends=True)
    lines.insert(2, '{"a": 1}\n' if suffix == ".jsonl" else "x,y\n")
    source.write_text("".join(lines))

    assert main(["report", str(source), "-o", str(tmp_path / "report.html")]) == 2

    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"vidlstm report: error: {source}:3: ")
    assert "fix or remove that line" in err[0] and "output" not in err[0].replace("predict output", "")


@pytest.mark.parametrize("damage", ["header", "short row"])
@pytest.mark.parametrize("given", ["evaluate folder", "run folder"])
def test_an_evaluate_predictions_csv_that_is_not_evaluates_is_refused_naming_file_and_line(tmp_path, capsys, damage,
                                                                                          given):
    """A predictions.csv of other columns, or a row of too few cells, gave a page of "no decoded file with a
    prediction" beside metrics.json's n, exit 0 and no word of why."""
    root = write_run(tmp_path / "run") if given == "run folder" else write_evaluation(tmp_path / "evaluation")
    predictions = (root if given == "evaluate folder" else root / "evaluation") / "predictions.csv"
    if damage == "header":
        predictions.write_text("path,label,predicted\nx,y\n")
    else:
        lines = predictions.read_text().splitlines(keepends=True)
        lines[2] = "left/l2.mp4,left,right\n"
        predictions.write_text("".join(lines))
    output = tmp_path / "report.html"

    code = main(["report", str(root), "-o", str(output)])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not output.exists()
    if damage == "header":
        assert err[0].startswith(f"vidlstm report: error: {predictions}: header path,label,predicted is not vidlstm "
                                 f"evaluate's (path,label,predicted,score,correct,top_k,status,error)")
    else:
        assert err[0].startswith(f"vidlstm report: error: {predictions}:3: a row of 3 cells where the header has 8")


def test_a_linked_output_is_written_through_and_stays_a_link(tmp_path, capsys):
    """`-o link.html` replaced the link with a plain file; predict writes through a linked output, and so does report.
    A link to nothing, or to a file that is no page, is refused: the page never lands on someone's other data."""
    source = write_records(tmp_path / "preds.jsonl", prediction_records(tmp_path))
    (tmp_path / "pages").mkdir()
    target, link = tmp_path / "pages" / "latest.html", tmp_path / "link.html"
    target.write_text("an older page")
    link.symlink_to(target)

    assert main(["report", str(source), "-o", str(link)]) == 0

    assert link.is_symlink() and link.resolve() == target
    assert "<b>4</b> files" in target.read_text()
    other = tmp_path / "notes.txt"
    other.write_text("mine")
    for name, to, said in (("dangling.html", tmp_path / "gone.html", "a symbolic link to nothing"),
                           ("notes.html", other, f"a symbolic link to {other}, not an .html file")):
        (tmp_path / name).symlink_to(to)
        assert main(["report", str(source), "-o", str(tmp_path / name)]) == 2
        assert f"{tmp_path / name}: {said}" in capsys.readouterr().err
    assert other.read_text() == "mine" and not (tmp_path / "gone.html").exists()


def test_the_model_folder_of_a_run_is_refused_pointing_at_the_run(tmp_path, capsys):
    """`report run/model` made a page titled "training run / run folder: run/model" with none of the run in it."""
    root = write_run(tmp_path / "run")
    (root / "model" / "model.safetensors").write_bytes(b"weights")
    output = tmp_path / "report.html"

    assert main(["report", str(root / "model"), "-o", str(output)]) == 2

    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and not output.exists()
    assert err[0] == (f"vidlstm report: error: {root / 'model'}: is the model folder of the training run {root}; "
                      f"report on the run (`vidlstm report {root}`): its page holds this model's metrics beside the "
                      f"epochs, curves and evaluations")


def test_a_model_folder_on_its_own_is_reported_as_a_model(tmp_path, tiny_model_dir):
    import shutil

    model = Path(shutil.copytree(tiny_model_dir, tmp_path / "downloaded"))
    (model / "metrics.json").write_text(json.dumps({"val_accuracy": 0.8125, "val_ece": 0.0421}))

    page = run(ReportConfig(source=str(model), output=str(tmp_path / "r.html"))).read_text()

    assert f"<p>model folder: {model} ·" in page and f"<p class=\"note\">model folder: {model}</p>" in page
    assert "run folder" not in page and "training run" not in page
    assert cell("0.8125") in page and "3 classes: left, right, up" in page
    assert f"--model {model} -o EVAL` on clips the model did not train on and report on EVAL" in page
    assert not (model / "evaluation").exists()
