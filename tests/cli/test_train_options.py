"""`train` / `finetune` options come from TrainConfig's fields: every field a flag, help from its docstring."""
from __future__ import annotations

import argparse
import dataclasses

import pytest

from vidlstm.cli.config_options import field_docs
from vidlstm.cli.train import ARCHITECTURE_FIELDS, add_training_arguments, config_from_args
from vidlstm.training.config import TrainConfig


def parser(finetune=False):
    p = argparse.ArgumentParser(prog="vidlstm train")
    add_training_arguments(p, finetune=finetune)
    return p


def test_every_field_has_a_flag_and_defaults_match_the_dataclass():
    args = parser().parse_args(["data/", "-o", "run/"])
    config = config_from_args(args)
    reference = TrainConfig(data="data/", out_dir="run/")
    assert dataclasses.asdict(config) == dataclasses.asdict(reference)
    missing = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("data", "init_from")
               and not hasattr(args, f.name)]
    assert missing == []


def test_renamed_and_negated_flags_keep_their_names():
    args = parser().parse_args(["d", "-o", "r", "--frames", "12", "--no-class-weights", "--no-augment", "--hflip",
                                "--cache", "c", "--time-budget", "60", "--monitor", "val_acc", "--patience", "5",
                                "--no-centred-keypoints", "--keypoint-stage", "4"])
    config = config_from_args(args)
    assert (config.num_frames, config.class_weights, config.augment, config.hflip, config.cache_dir) == \
        (12, False, False, True, "c")
    assert (config.time_budget, config.monitor, config.patience) == (60.0, "val_acc", 5)
    assert (config.centred_keypoints, config.keypoint_stage) == (False, 4)


def test_help_is_the_field_docstring(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert " ".join(field_docs(TrainConfig)["time_budget"].split()[:8]) in out
    assert "(default 480.0)" in out


def test_finetune_takes_no_architecture_flags(capsys):
    args = parser(finetune=True).parse_args(["d", "-o", "r"])
    assert not any(hasattr(args, name) for name in ARCHITECTURE_FIELDS)
    with pytest.raises(SystemExit):
        parser(finetune=True).parse_args(["d", "-o", "r", "--frames", "8"])
    assert "unrecognized arguments: --frames 8" in capsys.readouterr().err


def test_bad_values_are_one_line_usage_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(["d", "-o", "r", "--epochs", "0"])
    assert exit_info.value.code == 2
    assert "argument --epochs: must be >= 1, got 0" in capsys.readouterr().err
    from vidlstm.errors import UsageError

    with pytest.raises(UsageError, match="--time-budget must be a number of seconds >= 0"):
        config_from_args(parser().parse_args(["d", "-o", "r", "--time-budget", "-1"]))
    with pytest.raises(UsageError, match="--patience needs --monitor val_acc or val_loss"):
        config_from_args(parser().parse_args(["d", "-o", "r", "--patience", "3"]))
    for flags in (["--patience", "-1", "--monitor", "val_acc"], ["--patience", "-1"]):  # accepted, or blamed --monitor
        with pytest.raises(UsageError, match=r"--patience must be a whole number of epochs >= 0 \(0: no early "
                                             r"stopping; got -1\)"):
            config_from_args(parser().parse_args(["d", "-o", "r", *flags]))
    with pytest.raises(SystemExit):
        parser().parse_args(["d", "-o", "r", "--stabilize", "maybe"])
    assert "argument --stabilize: invalid choice: 'maybe'" in capsys.readouterr().err
    with pytest.raises(UsageError, match=r"--stabilize must be one of auto, on, off \(got 'yes'\)"):
        config_from_args(parser().parse_args(["d", "-o", "r"]), stabilize="yes")



@pytest.mark.parametrize("flag, value, said", [
    ("--lr", "nan", "--lr must be a positive number (got nan)"),
    ("--weight-decay", "nan", "--weight-decay must be a number >= 0 (got nan)"),
    ("--warmup-epochs", "-1", "--warmup-epochs must be a number >= 0 (got -1.0)"),
    ("--label-smoothing", "1", "--label-smoothing must be in [0, 1) (got 1.0)"),
    ("--step-loss-weight", "inf", "--step-loss-weight must be a number >= 0 (got inf)"),
    ("--grad-clip", "0", "--grad-clip must be a positive number, or inf for none (got 0.0)"),
])
def test_training_values_that_cannot_train_are_refused_before_any_decoding(flag, value, said):
    """--lr nan was a traceback from the optimizer; --weight-decay nan trained the whole budget into a model of NaNs
    that left the run folder unusable; --label-smoothing 1 and --warmup-epochs -1 were taken."""
    import re

    from vidlstm.errors import UsageError

    with pytest.raises(UsageError, match=re.escape(said)):
        config_from_args(parser().parse_args(["d", "-o", "r", flag, value]))


def test_building_every_command_line_imports_no_torch():
    """`vidlstm --help` and classify's early decode worker start before torch is imported: the options
    built from TrainConfig must not pull it in."""
    import subprocess
    import sys

    code = "import sys; from vidlstm.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("kept", ["pretrained", "scratch"])
def test_an_auto_run_summary_gives_the_whole_run_time_and_the_kept_model_in_its_own_terms(tmp_path, capsys, kept):
    import json

    from vidlstm.cli.train import print_summary

    model_dir = tmp_path / "run" / "model"
    model_dir.mkdir(parents=True)
    candidates = {"pretrained": {"accuracy": 0.874, "estimate": "out-of-fold (5 folds)", "backbone": "efficientnet_lite0"},
                  "scratch": {"accuracy": 0.833, "estimate": "validation", "backbone": "vidnet"}}
    (tmp_path / "run" / "choice.json").write_text(json.dumps(
        {"model_dir": str(model_dir), "candidates": candidates, "chosen": kept, "seconds": 467.6}))
    metrics = {"epochs_run": 40 if kept == "pretrained" else 150, "train_seconds": 30.3, "best_epoch": 40}
    if kept == "pretrained":
        metrics["readout"] = {"c": 0.01}
    else:
        metrics.update(best_epoch=150, val_accuracy=0.8333, val_ece=0.05)
    (model_dir / "metrics.json").write_text(json.dumps(metrics))
    print_summary(tmp_path / "run")
    lines = capsys.readouterr().out.splitlines()
    backbone = candidates[kept]["backbone"]
    assert lines[0] == (f"kept the {kept} model ({backbone}); estimated accuracy: pretrained 0.874 (out-of-fold "
                        "(5 folds)), scratch 0.833 (validation)")
    if kept == "pretrained":
        assert lines[1] == f"trained 2 candidates in 468 s; model in {model_dir}"
    else:
        assert lines[1] == (f"trained 2 candidates in 468 s, the kept one 150 epochs: val accuracy 0.833, ECE 0.050, "
                            f"best epoch 150; model in {model_dir}")


@pytest.mark.parametrize("epochs, said", [(1, "trained 1 epoch (3 s)"), (2, "trained 2 epochs (3 s)")])
def test_one_epoch_is_an_epoch(tmp_path, capsys, epochs, said):
    import json

    from vidlstm.cli.train import print_summary

    (tmp_path / "run" / "model").mkdir(parents=True)
    (tmp_path / "run" / "config.json").write_text(json.dumps({"model_out": None}))
    (tmp_path / "run" / "model" / "metrics.json").write_text(json.dumps(
        {"epochs_run": epochs, "train_seconds": 3.2, "best_epoch": epochs, "val_accuracy": None}))
    print_summary(tmp_path / "run")
    assert capsys.readouterr().out.startswith(said + ": ")


def test_a_terminated_training_run_says_to_continue_it_with_resume(tmp_path, monkeypatch, capsys):
    """Re-running "the same command" without --resume is refused ("already holds a training run")."""
    from vidlstm.cli import Terminated, main
    from vidlstm.stages import train

    def terminated(config, *args, **kwargs):
        raise Terminated()

    monkeypatch.setattr(train, "run", terminated)
    (tmp_path / "data").mkdir()
    (tmp_path / "run" / "last").mkdir(parents=True)
    (tmp_path / "run" / "last" / "train_state.pt").write_bytes(b"saved")
    assert main(["train", str(tmp_path / "data"), "-o", str(tmp_path / "run")]) == 143
    assert "terminated (SIGTERM); run the same command with --resume to continue" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "finetune"])
def test_a_run_stopped_before_it_saved_a_state_is_not_told_to_resume(tmp_path, monkeypatch, capsys, command):
    """Ctrl-C while the clips were still being decoded said "--resume", which was then refused: "no resume state"."""
    import importlib

    from vidlstm.cli import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module(f"vidlstm.cli.{command}"), "run", interrupted)
    (tmp_path / "run" / "candidates" / "pretrained").mkdir(parents=True)  # an auto run's first candidate, unsaved
    argv = [command, str(tmp_path), "-o", str(tmp_path / "run")] + (["--from", "default"] if command == "finetune"
                                                                    else [])
    assert main(argv) == 130
    assert capsys.readouterr().err.strip() == (f"vidlstm {command}: interrupted; nothing was saved to resume from, so "
                                               f"run the same command again to start over")
    (tmp_path / "run" / "candidates" / "pretrained" / "last").mkdir()
    (tmp_path / "run" / "candidates" / "pretrained" / "last" / "train_state.pt").write_bytes(b"saved")
    assert main(argv) == 130
    assert "interrupted; run the same command with --resume to continue" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "extract"])
@pytest.mark.parametrize("flags, said", [
    (["--frames", "2000"], "--frames must be from 1 to 1024 (got 2000)"),
    (["--image-size", "4"], "--image-size must be from 32 to 1024 (got 4)"),
    (["--frames", "1024", "--image-size", "1024"],
     "--frames 1024 at --image-size 1024: 3072 MB per decoded clip, above 256 MB; lower either"),
])
def test_sizes_out_of_range_name_the_option_typed(tmp_path, capsys, command, flags, said):
    """--frames 2000 said "num_frames must be from 1 to 1024", the model config's field, not the option."""
    from vidlstm.cli import main

    (tmp_path / "data" / "a").mkdir(parents=True)
    where = ["-o", str(tmp_path / "run")] if command == "train" else ["--cache", str(tmp_path / "cache")]
    assert main([command, str(tmp_path / "data"), *where, *flags]) == 2
    assert capsys.readouterr().err == f"vidlstm {command}: error: {said}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_file_given_for_the_cache_folder_is_a_usage_error(tmp_path):
    """--cache FILE was "FILE: File exists" with exit 1, for train after decoding had started."""
    from vidlstm.errors import UsageError

    (tmp_path / "cf").write_text("x")
    with pytest.raises(UsageError, match="cf: a file, not a folder; name a folder for --cache"):
        config_from_args(parser().parse_args(["d", "-o", str(tmp_path / "r"), "--cache", str(tmp_path / "cf")]))


def test_a_run_or_cache_folder_inside_the_data_folder_is_refused(tmp_path):
    """-o DATA/run was made, then read as a class folder with no videos, failing this run and every later one."""
    from vidlstm.errors import UsageError
    from vidlstm.stages import train
    from vidlstm.stages.extract import ExtractConfig, run as extract

    (tmp_path / "data" / "left").mkdir(parents=True)
    for flags in (["-o", str(tmp_path / "data" / "run")], ["-o", str(tmp_path / "r"), "--cache",
                                                          str(tmp_path / "data" / "left" / "cache")],
                  ["-o", str(tmp_path / "data")], ["-o", str(tmp_path / "r"), "--cache", str(tmp_path / "data")],
                  ["-o", str(tmp_path / "r"), "--model-out", str(tmp_path / "data" / "m")]):
        for backbone in ("auto", "vidnet"):
            config = config_from_args(parser().parse_args([str(tmp_path / "data"), *flags, "--backbone", backbone]))
            with pytest.raises(UsageError, match="is inside DATA .*where it would be read as a class folder"):
                train.run(config)
    with pytest.raises(UsageError, match="--cache is inside DATA"):
        extract(ExtractConfig(data=str(tmp_path / "data"), cache_dir=str(tmp_path / "data" / "cache")))
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["left"]


@pytest.mark.parametrize("init, advice", [(None, "more clips per class, or a longer --time-budget, may help"),
                                          ("weights/default", "its frozen backbone, made for other clips, may not "
                                                              "describe these: `vidlstm train DATA` chooses")])
def test_a_model_at_chance_on_validation_is_warned_about(tmp_path, capsys, init, advice):
    """`finetune --from default` on real clips ended at 0.500 of 2 classes with nothing said."""
    import json

    from vidlstm.cli.train import print_summary

    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model_out": None}))
    metrics = {"epochs_run": 300, "train_seconds": 22.0, "best_epoch": 300, "val_accuracy": 0.5, "val_ece": 0.43,
               "train_class_counts": {"correct": 16, "wrong": 16}, **({"init": init} if init else {})}
    (run / "model" / "metrics.json").write_text(json.dumps(metrics))
    print_summary(run)
    err = capsys.readouterr().err
    assert err.startswith("warning: validation accuracy 0.500 is no better than chance (2 classes): the model does "
                          "not tell the classes apart; ") and advice in err
    (run / "model" / "metrics.json").write_text(json.dumps({**metrics, "val_accuracy": 0.625}))
    print_summary(run)
    assert capsys.readouterr().err == ""
    # A kept read-out has no validation clips: its out-of-fold estimate is what is judged.
    readout = {k: v for k, v in metrics.items() if k not in ("val_accuracy", "val_ece")}
    (run / "model" / "metrics.json").write_text(json.dumps({**readout, "readout": {"cv_accuracy": 0.5}}))
    print_summary(run)
    assert capsys.readouterr().err.startswith("warning: out-of-fold accuracy 0.500 is no better than chance")
