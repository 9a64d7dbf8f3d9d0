"""`vidlstm train DATA -o RUN_DIR`: train a model on a folder per class or a CSV manifest (DDP under torchrun)."""
from __future__ import annotations

import argparse
import sys

from vidlstm.cli.common import threads
from vidlstm.cli.config_options import OptionSpec, add_config_options, config_kwargs

# Architecture fields: fine-tuning takes them from the model it starts from (--from).
ARCHITECTURE_FIELDS = ("backbone", "pretrained", "weights_file", "input_mode", "num_frames", "image_size",
                       "stabilize", "test_views", "keypoint_stage", "centred_keypoints", "clip_head", "hidden_size", "dropout")


def add_training_arguments(p: argparse.ArgumentParser, *, finetune: bool = False) -> None:
    """Options shared by `train` and `finetune`, one per TrainConfig field (help from its docstring)."""
    from vidlstm.defaults import CLIP_HEADS, INPUT_MODES
    from vidlstm.training.config import BACKBONE_MODES, MONITORS, STABILIZE_CHOICES, TrainConfig

    p.add_argument("data", metavar="DATA", help="a folder per class, or a CSV manifest path,label[,group]")
    specs = {
        "out_dir": OptionSpec(("-o", "--out"), metavar="RUN_DIR", required=True),
        "num_frames": OptionSpec(("--frames",), positive=True),
        "image_size": OptionSpec(positive=True),
        "hidden_size": OptionSpec(positive=True),
        "keypoint_stage": OptionSpec(choices=(1, 2, 3, 4)),
        "epochs": OptionSpec(positive=True),
        "batch_size": OptionSpec(positive=True),
        "views": OptionSpec(positive=True),
        "test_views": OptionSpec(positive=True),
        "input_mode": OptionSpec(choices=tuple(INPUT_MODES), metavar=" | ".join(INPUT_MODES)),  # "rgb,diff" is one
        "stabilize": OptionSpec(choices=STABILIZE_CHOICES),
        "clip_head": OptionSpec(choices=CLIP_HEADS),
        "train_backbone": OptionSpec(choices=BACKBONE_MODES),
        "monitor": OptionSpec(choices=MONITORS),
        "cache_dir": OptionSpec(("--cache",), metavar="DIR"),
        "model_out": OptionSpec(metavar="DIR"),
    }
    skip = ("data", "init_from") + (ARCHITECTURE_FIELDS + ("search",) if finetune else ())
    add_config_options(p, TrainConfig, skip=skip, specs=specs)
    p.add_argument("--threads", type=threads, default=0, help="torch CPU threads (default: one per core)")


def config_from_args(args, **extra):
    from vidlstm.errors import UsageError
    from vidlstm.training.config import TrainConfig

    try:
        return TrainConfig(**{**config_kwargs(args, TrainConfig), **extra})
    except (TypeError, ValueError) as err:
        raise UsageError(str(err)) from None


def print_summary(run_dir) -> None:
    import json
    import os
    from pathlib import Path

    from vidlstm.defaults import candidates_trained
    from vidlstm.training.distributed import launched_by_torchrun

    if launched_by_torchrun() and int(os.environ.get("RANK", "0")) != 0:
        return  # rank 0 reports for the whole run
    choice_path = Path(run_dir) / "choice.json"  # --backbone auto: the kept family's model
    choice = json.loads(choice_path.read_text()) if choice_path.is_file() else None
    if choice:
        model_dir = Path(choice["model_dir"])
        estimates = ", ".join(f"{family} {'-' if c.get('accuracy') is None else format(c['accuracy'], '.3f')} "
                              f"({'not trained' if c.get('skipped') else c.get('estimate', 'none')})"
                              for family, c in choice["candidates"].items())
        print(f"kept the {choice['chosen']} model ({choice['candidates'][choice['chosen']]['backbone']}); "
              f"estimated accuracy: {estimates}")
    else:
        config = json.loads((Path(run_dir) / "config.json").read_text())
        model_dir = Path(config["model_out"] or Path(run_dir) / "model")
    metrics = json.loads((model_dir / "metrics.json").read_text())
    acc = metrics.get("val_accuracy")
    shown = f"val accuracy {acc:.3f}, ECE {metrics['val_ece']:.3f}, " if acc is not None else ""
    trained = choice and candidates_trained(sum(not c.get("skipped") for c in choice["candidates"].values()),
                                            len(choice["candidates"]))
    if choice and metrics.get("readout"):  # a read-out's clip label is a logistic regression, not its epochs
        print(f"trained {trained} in {choice['seconds']:.0f} s; model in {model_dir}")
    elif choice:
        print(f"trained {trained} in {choice['seconds']:.0f} s, the kept one "
              f"{_epochs(metrics['epochs_run'])}: {shown}best epoch {metrics['best_epoch']}; model in {model_dir}")
    else:
        print(f"trained {_epochs(metrics['epochs_run'])} ({metrics['train_seconds']:.0f} s): {shown}"
              f"best epoch {metrics['best_epoch']}; model in {model_dir}")
    if metrics.get("skipped_files"):
        print(f"skipped {len(metrics['skipped_files'])} undecodable file(s), first: {metrics['skipped_files'][0]}")
    classes = len(metrics.get("train_class_counts") or {})
    readout = metrics.get("readout") if isinstance(metrics.get("readout"), dict) else {}
    judged, figure = (("validation", acc) if acc is not None else ("out-of-fold", readout.get("cv_accuracy")))
    if isinstance(figure, (int, float)) and classes > 1 and figure <= 1 / classes:  # said, not left to a reader
        advice = ("its frozen backbone, made for other clips, may not describe these: `vidlstm train DATA` chooses "
                  "a model by the data" if metrics.get("init") not in (None, "scratch", "imagenet") else
                  "more clips per class, or a longer --time-budget, may help")
        print(f"warning: {judged} accuracy {figure:.3f} is no better than chance ({classes} classes): the model does "
              f"not tell the classes apart; {advice}", file=sys.stderr)


def add_arguments(p):
    add_training_arguments(p)


def configure_threads(threads: int) -> None:
    """Like configure_torch_threads, but under torchrun the cores are shared by the local processes."""
    import os

    from vidlstm.defaults import available_cores, configure_torch_threads

    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if threads <= 0 and local > 1:
        threads = max(1, available_cores() // local)
    configure_torch_threads(threads)


def run(args) -> int:
    from vidlstm.stages import train

    configure_threads(args.threads)
    print_summary(train.run(config_from_args(args)))
    return 0


def _epochs(count) -> str:
    return f"{count} epoch{'' if count == 1 else 's'}"
