"""`vidlstm info`: the model card's fields (labels, backbone, sampling, metrics, parameters, size), text and JSON."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vidlstm.checkpoint import save_model
from vidlstm.cli import main
from vidlstm.models import LRCN, ModelConfig


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=["wave", "clap"], backbone="vidnet", image_size=48, num_frames=6,
                             proj_dim=16, hidden_size=24, temperature=1.25))
    folder = save_model(tmp_path_factory.mktemp("model"), model,
                        metrics={"val_accuracy": 0.875, "epochs_run": 4, "val_ece": 0.0312})
    return folder, model


def test_info_json_fields(trained_dir, capsys):
    folder, model = trained_dir
    assert main(["info", str(folder), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["labels"] == ["wave", "clap"] and info["num_classes"] == 2
    assert info["backbone"] == {"name": "vidnet", "pretrained": False, "feature_dim": model.feature_dim, "keypoints": 8}
    assert info["input_mode"] == "rgb+diff"
    assert info["sampling"] == {"frames": 6, "method": "segment", "image_size": 48, "stabilize": False, "test_views": 1}
    assert info["temperature"] == 1.25
    assert info["temporal"]["hidden_size"] == 24 and info["temporal"]["causal_head"] is True
    assert info["temporal"]["clip_head"] == "lstm"
    params = info["parameters"]
    assert params["backbone"] == sum(p.numel() for p in model.backbone.parameters())
    assert params["causal_head"] == sum(p.numel() for p in model.causal.parameters())
    assert params["total"] == sum(p.numel() for p in model.parameters())
    assert params["backbone"] + params["temporal"] + params["causal_head"] == params["total"]
    assert info["size_bytes"]["weights"] == (folder / "model.safetensors").stat().st_size
    assert info["size_bytes"]["total"] == sum(p.stat().st_size for p in folder.iterdir())
    assert info["metrics"] == {"val_accuracy": 0.875, "epochs_run": 4, "val_ece": 0.0312}


def test_info_text_card(trained_dir, capsys):
    folder, model = trained_dir
    assert main(["info", str(folder)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["labels"].endswith("2: wave, clap")
    assert "vidnet (trained from scratch, 8 keypoints)" in lines["backbone"]
    assert "6 frames (segment), 48x48 px" in lines["sampling"]
    assert f"{sum(p.numel() for p in model.parameters()):,}" in lines["parameters"]
    assert lines["temperature"].split()[-1] == "1.25"
    assert lines["clip"].endswith("clip logits  the attention-pooled BiLSTM")
    assert lines["val_accuracy"].split()[-1] == "0.875"
    assert "MB" in lines["size"] or "KB" in lines["size"]


def test_a_two_stream_model_says_what_its_backbone_sees(tmp_path, capsys):
    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=["wave", "clap"], backbone="vidnet", image_size=32, num_frames=4,
                             input_mode="rgb,diff", proj_dim=16, hidden_size=8))
    folder = save_model(tmp_path / "model", model)
    assert main(["info", str(folder), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["input_mode"] == "rgb,diff" and info["backbone"]["feature_dim"] == model.feature_dim
    assert model.feature_dim == 2 * LRCN(ModelConfig(labels=["a", "b"], image_size=32, num_frames=4)).feature_dim
    assert main(["info", str(folder)]) == 0
    shown = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("input mode"))
    assert shown.endswith("rgb,diff (the frames and their differences in two passes, features side by side)")
    assert "input mode `rgb,diff` (the frames and their differences in two passes" in (folder / "README.md").read_text()


def test_info_without_metrics_and_bad_folders(tiny_model_dir, tmp_path, capsys):
    assert main(["info", str(tiny_model_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"] is None
    assert main(["info", str(tiny_model_dir)]) == 0
    assert "none (no metrics.json)" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no such model folder" in err
    (tmp_path / "empty").mkdir()
    assert main(["info", str(tmp_path / "empty")]) == 2
    assert "missing config.json" in capsys.readouterr().err


@pytest.mark.parametrize("text, reason", [("{not json", "not valid JSON (Expecting property name enclosed in double "
                                                        "quotes: line 1 column 2 (char 1))"),
                                          ("[1]", "a JSON object was expected, got list")])
def test_a_corrupt_metrics_json_leaves_the_card_shown_and_warns(tmp_path, capsys, text, reason):
    """The whole card was refused (exit 2) for a metrics.json that evaluate and classify never read."""
    broken = save_model(tmp_path / "broken", LRCN(ModelConfig(labels=["a", "b"], image_size=32, proj_dim=8,
                                                               hidden_size=8)))
    (broken / "metrics.json").write_text(text)
    warning = (f"vidlstm info: warning: {broken / 'metrics.json'}: {reason}; the card is shown without its "
               f"metrics")

    assert main(["info", str(broken)]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [warning]
    assert "labels" in out and "a, b" in out and "unreadable (metrics.json: see the warning)" in out
    assert main(["info", str(broken), "--json"]) == 0
    out, err = capsys.readouterr()
    info = json.loads(out)
    assert info["labels"] == ["a", "b"] and info["metrics"] is None
    assert info["metrics_unreadable"] == f"{broken / 'metrics.json'}: {reason}" and err.splitlines() == [warning]


def test_a_model_saved_before_its_run_finished_says_so_in_info_and_when_loaded(tiny_model_dir, tmp_path, capsys,
                                                                                caplog):
    """An interrupted run leaves a loadable model/ whose metrics.json is the epoch's, "finished": false."""
    import logging
    import shutil

    from vidlstm.inference import Predictor

    partial = Path(shutil.copytree(tiny_model_dir, tmp_path / "partial"))
    (partial / "metrics.json").write_text(json.dumps({"epoch": 4, "val_loss": 0.9, "val_acc": 0.5, "finished": False}))
    assert main(["info", str(partial)]) == 0
    assert "saved at epoch 4 before its training run finished" in capsys.readouterr().out
    with caplog.at_level(logging.WARNING, logger="vidlstm"):
        Predictor.from_dir(partial)
        Predictor.from_dir(tiny_model_dir)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [f"{partial}: a model saved at epoch 4 before its training run finished (interrupted, or still "
                      f"training): its scores are not calibrated; continue the run with --resume"]


def test_info_says_which_candidate_an_auto_run_kept_and_why(tmp_path, capsys):
    """The clause that kept the model was in the card's README but only inside a JSON blob in `vidlstm info`."""
    model = LRCN(ModelConfig(labels=["a", "b"], backbone="vidnet", image_size=32, num_frames=4))
    family = {"rule": "r", "chosen": "pretrained", "clause": "the highest estimate",
              "scores": {"pretrained": 0.9, "scratch": 0.8}}
    folder = save_model(tmp_path / "m", model, {"chosen_from_data": {"family": family}})
    assert main(["info", str(folder)]) == 0
    kept = [line for line in capsys.readouterr().out.splitlines() if line.startswith("kept")]
    assert kept == ["kept         the pretrained candidate of `train --backbone auto`: the highest estimate"]


def test_info_of_an_export_shows_its_card(trained_dir, tmp_path, capsys, monkeypatch):
    """`vidlstm info OUT` on what `vidlstm export -o OUT` wrote said only "not a vidlstm model folder (missing
    config.json)"."""
    from vidlstm.defaults import VERSION
    from vidlstm.stages import export

    folder, model = trained_dir
    monkeypatch.setattr(export, "save_onnx", lambda part, path: path.write_bytes(f"graph {part.name}".encode()))
    monkeypatch.setattr(export, "verify_part", lambda part, path, fmt: 2.5e-7)
    out = tmp_path / "out"
    assert main(["export", "--model", str(folder), "-o", str(out), "--threads", "1"]) == 0
    capsys.readouterr()
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    card = json.loads((out / "export.json").read_text())
    assert info == {"path": str(out), "export_card": str(out / "export.json"), **card,
                    "files": {"encoder.onnx": 13, "temporal.onnx": 14, "stream.onnx": 12}}
    assert info["format"] == "onnx" and info["source_model"] == str(folder.resolve())

    assert main(["info", str(out)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["export"] == f"export       {out} (onnx, written by vidlstm {VERSION})"
    assert lines["from"] == f"from model   {folder.resolve()}"
    assert lines["labels"] == "labels       2: wave, clap"
    assert lines["temperature"] == "temperature  1.25"
    dim = model.feature_dim
    assert lines["encoder"] == (f"encoder      encoder.onnx (13 B): frames (batch, time, 3, 48, 48) float32, "
                                f"prev_frame (batch, 3, 48, 48) float32 -> features (batch, time, {dim}) float32")
    assert lines["temporal"].startswith(f"temporal     temporal.onnx (14 B): features (batch, time, {dim}) float32, "
                                        f"lengths (batch) int64 -> logits (batch, 2) float32, ")
    assert lines["verified"] == "verified     largest difference from PyTorch 2.5e-07 (encoder), 2.5e-07 (temporal), " \
                                "2.5e-07 (stream)"

    # `-o m.onnx` writes m.json beside its parts: info takes that card; a part gone is said.
    assert main(["export", "--model", str(folder), "-o", str(tmp_path / "m.onnx"), "--no-verify"]) == 0
    (tmp_path / "m.stream.onnx").unlink()
    capsys.readouterr()
    assert main(["info", str(tmp_path / "m.json")]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["stream"].startswith("stream       m.stream.onnx (missing): features")
    assert lines["verified"] == "verified     not checked (--no-verify)"
    (tmp_path / "notes.json").write_text('{"mine": 1}')
    assert main(["info", str(tmp_path / "notes.json")]) == 2
    assert capsys.readouterr().err.strip() == (f"vidlstm info: error: {tmp_path / 'notes.json'}: no export card of "
                                               f"vidlstm's (a JSON object with a format and the files of its parts), "
                                               f"nor a model folder")


def test_a_command_given_an_export_folder_for_its_model_is_told_what_it_is(trained_dir, tmp_path, capsys,
                                                                          monkeypatch):
    """`classify --model OUT` (what `vidlstm export -o OUT` wrote) said only "missing config.json": it now says the
    folder is an export and points at `vidlstm info`, which names the model it came from."""
    from vidlstm.stages import export

    folder, _ = trained_dir
    monkeypatch.setattr(export, "save_onnx", lambda part, path: path.write_bytes(f"graph {part.name}".encode()))
    out = tmp_path / "out"
    assert main(["export", "--model", str(folder), "-o", str(out), "--no-verify"]) == 0
    capsys.readouterr()
    assert main(["classify", str(tmp_path / "clip.mp4"), "--model", str(out)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"vidlstm classify: error: {out}: not a vidlstm model folder (missing config.json); a folder vidlstm export "
        f"wrote (its graphs run in ONNX Runtime or torch): give the model folder it came from (`vidlstm info {out}` "
        f"names it)")
