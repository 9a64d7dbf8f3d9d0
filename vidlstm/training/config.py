"""TrainConfig: every setting of a training or fine-tuning run; the resolved copy is saved as RUN_DIR/config.json."""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from vidlstm.errors import UsageError
from vidlstm.limits import MAX_CLIP_BYTES, MODEL_INT_RANGES, clip_size_error, int_range_error

from vidlstm.defaults import BACKBONE_MODES, CLIP_HEADS, INPUT_MODES, default_backbone_mode
MONITORS = ("last", "val_acc", "val_loss")
STABILIZE_CHOICES = ("auto", "on", "off")


STATE_FILE = Path("last") / "train_state.pt"
"""Where in its run folder a run saves its training state after every epoch (what --resume continues)."""
RESUME_FREE = ("out_dir", "resume", "time_budget", "cache_dir", "model_out", "replace_model", "device", "amp",
               "workers", "decode_workers", "progress")
"""Settings a resumed run may be given anew: where it writes and how it runs, not what it trains. (The epoch plan
and its time budget are part of the saved state; ``auto`` gives its last candidate what is left of the budget.)"""


OPTION_NAMES = {"num_frames": "--frames", "data": "DATA", "init_from": "--from"}
"""The command-line names of the fields whose option is not --FIELD-NAME."""


def option_name(field: str) -> str:
    """How the command line names TrainConfig ``field``: errors speak of what the user typed, not of the field."""
    return OPTION_NAMES.get(field, f"--{field.replace('_', '-')}")


def check_model_sizes(**sizes) -> None:
    """The model config's bounds (MODEL_INT_RANGES, MAX_CLIP_BYTES) on the sizes given (None: not given), checked
    before any decoding and said in the options' words: ModelConfig names its fields (num_frames, not --frames)."""
    for name, value in sizes.items():
        problem = value is not None and int_range_error(name, value)
        if problem:
            raise UsageError(option_name(name) + problem[len(name):])
    frames, size = sizes.get("num_frames"), sizes.get("image_size")
    if frames and size and clip_size_error(frames, size):
        raise UsageError(f"--frames {frames} at --image-size {size}: {frames * size ** 2 * 3 / 2 ** 20:.0f} MB per "
                         f"decoded clip, above {MAX_CLIP_BYTES >> 20} MB; lower either")


@dataclass
class TrainConfig:
    """Defaults suit what users bring: a few dozen clips per class, a CPU, minutes (see benchmarks/RESULTS.md)."""

    data: str
    """A folder per class or a CSV manifest ``path,label[,group]``."""
    out_dir: str
    """The run folder. One backbone: model/, last/, metrics.csv, config.json, split.json, curves.png, cache/;
    auto (train's default): candidates/ (one such folder per candidate), choice.json, the kept model/ and its
    split.json."""
    init_from: str | None = None
    """Fine-tuning: a model folder to start from (same labels: continue; new labels: new heads)."""
    backbone: str = "auto"
    """"auto" (the default): train a frozen ImageNet efficientnet_lite0 read out by a logistic regression on its
    features' statistics (of the frames and of the differences between them, side by side), and vidnet from
    scratch, and keep the one the data favours (vidlstm/stages/families.py);
    fine-tuning keeps its model's kind; --val-fraction 0 and torchrun runs train vidnet alone. Or a registered
    backbone: vidnet is our small CNN that trains from scratch on a CPU (motion, paths), the others are ImageNet
    networks (convnext_tiny, efficientnet_b0, efficientnet_lite0, mobilenet_v3_large, mobilenet_v3_small,
    regnet_y_400mf, resnet18, resnet34, resnet50)."""
    pretrained: bool = False
    """Start the backbone from ImageNet weights: efficientnet_lite0's install with vidlstm; torchvision's come
    from torch hub's cache, else a download, or --weights-file."""
    weights_file: str | None = None
    """Local ImageNet weights file for a pretrained torchvision backbone."""
    train_backbone: str | None = None
    """"frozen" (cached features, seconds per epoch), "last" or "all"; None: frozen when the backbone is
    pretrained or fine-tuned from a model, else all (random features are not features)."""
    input_mode: str | None = None
    """"rgb", "rgb+diff" (frame differences as extra channels: motion, cheap, strong from scratch), "diff"
    (the differences alone) or "rgb,diff" (the frames and the differences in two passes, features side by side:
    auto's read-out); None: rgb+diff, or what --search chooses."""
    search: bool = False
    """Choose the input mode by data: with --input-mode unset and >= 40 training clips, cross-validate
    rgb+diff and rgb briefly on the training clips (2 folds, group-aware, ~30% of the time budget) and keep
    rgb+diff unless rgb gets >= 2 more clips right; RUN_DIR/search.json records it. Off by default: on
    fight and pushfit its 30% of the budget cost more than its choice gained (benchmarks/RESULTS.md)."""
    num_frames: int | None = None
    """Frames sampled per clip (segment sampling, TSN-style: a random frame per segment when training);
    None: from the data, half the frames of a typical (median) clip, within [4, 16] (8 were too few for a
    path traced in the air; see vidlstm/training/auto.py)."""
    image_size: int | None = None
    """Frames are resized to image_size x image_size; None: 48 for vidnet (16 frames at 48 px cost what 9
    cost at 64 px; its keypoints read a 12x12 map), 112 for ImageNet backbones, whose features need it (auto's
    read-out candidate: 224)."""
    stabilize: str = "auto"
    """Undo a moving camera's pan in every clip, in training and whenever the model is used: "on", "off", or
    "auto" (the default): on where the training clips' views move (the median clip's estimated pan at least
    0.5% of the frame; a head-mounted camera's turns), off for still cameras (vidlstm/training/auto.py).
    Fine-tuning keeps its model's."""
    test_views: int | None = None
    """Clips of each video the trained model scores and averages in predict, classify and evaluate (each shifted
    inside the segments; decoded together). None: 3 for vidnet on the frame differences alone (a motion or a path,
    where the views' samples differ in what they catch), else 1 (training/model_setup.py). Fine-tuning keeps its
    model's."""
    keypoint_stage: int = 2
    """vidnet: the stage whose map the soft-argmax keypoints read (2: stride 4, a 12x12 map at 48 px;
    4: stride 16, 3x3, as models before it)."""
    centred_keypoints: bool = True
    """vidnet: also feed the BiLSTM each keypoint relative to its clip mean (the path, wherever filmed)."""
    clip_head: str = "lstm"
    """Clip logits from "lstm" (the attention-pooled BiLSTM), "lstm+stats" (plus a linear read-out of each
    clip's feature statistics over time: mean, spread, mean change between frames) or "stats" (the read-out
    alone). The statistics need a frozen backbone (--pretrained), whose features they are standardised on once."""
    hidden_size: int = 128
    """LSTM hidden size per direction."""
    dropout: float = 0.3
    """Dropout in the temporal model and before the classifiers."""
    epochs: int | None = None
    """Epochs; the cosine schedule spans the run that will happen. None: from the data, 24 000 clip
    presentations (150 epochs of 160 clips), within [30, 300], cut to fit ``time_budget``."""
    time_budget: float = 480.0
    """Wall-clock seconds for the whole run, decoding included (0: none). Epochs are timed as they run;
    when the planned ones would not fit, the plan shrinks and the learning-rate schedule is re-aimed at
    the new end. The default keeps a ~200-clip run under 10 minutes on 2 CPU cores."""
    batch_size: int = 8
    """Clips per optimizer step (per process under DDP)."""
    lr: float = 2e-3
    """Peak AdamW learning rate (reached after warm-up, then cosine decay per step)."""
    weight_decay: float = 0.05
    """AdamW weight decay."""
    warmup_epochs: float = 2.0
    """Linear warm-up length in epochs (fractions allowed)."""
    label_smoothing: float = 0.1
    """Cross-entropy label smoothing."""
    step_loss_weight: float = 0.5
    """Weight of the per-time-step loss of the bidirectional head."""
    causal_loss_weight: float = 0.5
    """Weight of the per-time-step loss of the causal (streaming) head."""
    class_weights: bool = True
    """Weight classes by n / (k * count) so rare classes count as much as common ones."""
    grad_clip: float = 1.0
    """Gradient-norm clipping threshold (inf: none)."""
    val_fraction: float = 0.2
    """Share of clips held out for validation (0: none; then no early stopping or calibration)."""
    patience: int = 0
    """Epochs without validation improvement before stopping, with --monitor val_acc or val_loss (0: never stop
    early, the default: on a few dozen validation clips "no improvement" is noise, and a budget-sized run is
    still learning)."""
    monitor: str = "last"
    """Which epoch's model is kept: "last" (the default: the weight average at the end of the schedule,
    chosen by no validation clip, so calibration on them is out-of-sample), "val_acc" (ties broken by
    val_loss) or "val_loss" (the best epoch on the validation clips; also what early stopping watches)."""
    ema_decay: float = 0.998
    """Keep an exponential moving average of the weights (per step) as the model (0: the raw weights)."""
    views: int = 6
    """Temporal views cached per video: the centre sampling + (views - 1) random-offset samplings. End to
    end, each segment of a training clip takes its frame from a random view, every epoch afresh."""
    augment: bool = True
    """Random resized crop and colour jitter per clip (end-to-end modes)."""
    hflip: bool = False
    """Also flip horizontally (only when left/right does not change the label)."""
    mixup: float = 0.0
    """Mixup: blend each training batch with a shuffled copy of itself, weight ~ Beta(mixup, mixup), and the
    loss alike (0: off, the default; see benchmarks/RESULTS.md)."""
    cache_dir: str | None = None
    """Clip and feature cache; None: RUN_DIR/cache."""
    model_out: str | None = None
    """Where the best model folder goes: a new or empty folder, or a model (--replace-model); None: RUN_DIR/model."""
    replace_model: bool = False
    """Let --model-out replace the model folder it names (never the one --from starts from)."""
    seed: int = 0
    """Seeds the split, initialisation, data order and augmentation."""
    device: str | None = None
    """cpu, cuda, cuda:1 ...; None: cuda when available."""
    amp: bool = True
    """Mixed precision on CUDA (ignored on CPU)."""
    workers: int = 0
    """DataLoader worker processes (0: load in the training process; best on 2 cores)."""
    decode_workers: int = 1
    """Worker processes decoding videos into the cache; a decoder that crashes or hangs on a damaged file
    costs that file only (skipped, listed in metrics.json). 0: decode in the training process, without
    that protection."""
    resume: bool = False
    """Continue from RUN_DIR/last/train_state.pt."""
    progress: bool = True
    """Show tqdm progress bars."""

    def __post_init__(self):
        if self.backbone == "auto" and (self.init_from or self.val_fraction == 0):
            # Fine-tuning keeps its model's backbone; without validation clips nothing would judge vidnet.
            self.backbone = "vidnet"
        if self.image_size is None and self.backbone != "auto":  # auto: each candidate's own
            self.image_size = 48 if self.backbone == "vidnet" else 112
        if self.input_mode is not None and self.input_mode not in INPUT_MODES:
            raise UsageError(f"--input-mode must be one of {', '.join(INPUT_MODES)} (got {self.input_mode!r})")
        if self.stabilize not in STABILIZE_CHOICES:
            raise UsageError(f"--stabilize must be one of {', '.join(STABILIZE_CHOICES)} (got {self.stabilize!r})")
        if self.train_backbone is not None and self.train_backbone not in BACKBONE_MODES:
            raise UsageError(f"--train-backbone must be one of {', '.join(BACKBONE_MODES)} (got {self.train_backbone!r})")
        if self.monitor not in MONITORS:
            raise UsageError(f"--monitor must be one of {', '.join(MONITORS)} (got {self.monitor!r})")
        for name in ("epochs", "batch_size", "views", "keypoint_stage"):
            if getattr(self, name) is not None and int(getattr(self, name)) < 1:
                raise UsageError(f"{option_name(name)} must be >= 1 (got {getattr(self, name)})")
        check_model_sizes(num_frames=self.num_frames, image_size=self.image_size, hidden_size=self.hidden_size)
        if self.decode_workers < 0:
            raise UsageError(f"--decode-workers must be >= 0 (got {self.decode_workers})")
        if self.test_views is not None and int_range_error("test_views", self.test_views):
            raise UsageError(f"--test-views must be an integer from 1 to {MODEL_INT_RANGES['test_views'][1]} "
                             f"(got {self.test_views!r})")
        if Path(self.out_dir).exists() and not Path(self.out_dir).is_dir():
            raise UsageError(f"{self.out_dir}: a file, not a run folder; name a folder for -o")
        if self.model_out:  # recorded as an absolute path: a resume from another folder finds the same one
            self.model_out = os.path.abspath(self.model_out)
        if self.cache_dir and Path(self.cache_dir).exists() and not Path(self.cache_dir).is_dir():
            raise UsageError(f"{self.cache_dir}: a file, not a folder; name a folder for --cache")
        if not 0 <= self.seed < 2 ** 32:
            raise UsageError(f"--seed must be from 0 to 2**32 - 1 (got {self.seed})")
        if not 0 <= self.val_fraction < 1:
            raise UsageError(f"--val-fraction must be in [0, 1) (got {self.val_fraction})")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError(f"--lr must be a positive number (got {self.lr})")
        for name in ("weight_decay", "warmup_epochs", "step_loss_weight", "causal_loss_weight"):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise UsageError(f"--{name.replace('_', '-')} must be a number >= 0 (got {getattr(self, name)})")
        if not self.grad_clip > 0:  # 0 would scale every gradient to nothing; inf: no clipping
            raise UsageError(f"--grad-clip must be a positive number, or inf for none (got {self.grad_clip})")
        if not 0 <= self.label_smoothing < 1:  # 1 would train every class to the same score
            raise UsageError(f"--label-smoothing must be in [0, 1) (got {self.label_smoothing})")
        if not (self.time_budget >= 0 and math.isfinite(self.time_budget)):
            raise UsageError(f"--time-budget must be a number of seconds >= 0 (got {self.time_budget})")
        if not 0 <= self.ema_decay < 1:
            raise UsageError(f"--ema-decay must be in [0, 1) (got {self.ema_decay})")
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 0:
            raise UsageError(f"--patience must be a whole number of epochs >= 0 (0: no early stopping; got "
                             f"{self.patience!r})")
        if self.patience and self.monitor == "last":
            raise UsageError("--patience needs --monitor val_acc or val_loss (early stopping watches it)")
        if not (self.mixup >= 0 and math.isfinite(self.mixup)):
            raise UsageError(f"--mixup must be a number >= 0 (got {self.mixup})")
        if self.clip_head not in CLIP_HEADS:
            raise UsageError(f"--clip-head must be one of {', '.join(CLIP_HEADS)} (got {self.clip_head!r})")
        if self.backbone == "auto":
            self._check_auto()
        if self.clip_head != "lstm" and self.backbone_mode() != "frozen":
            raise UsageError(f"--clip-head {self.clip_head} needs a frozen backbone (--pretrained, or --train-backbone "
                             f"frozen): the statistics are standardised once on the training clips' features")
        if not 0 <= self.dropout < 1:
            raise UsageError(f"--dropout must be in [0, 1) (got {self.dropout})")

    def _check_auto(self) -> None:
        """Settings that belong to one family are an error with ``backbone="auto"``."""
        named = [flag for flag, set_ in (("--pretrained", self.pretrained), ("--weights-file", self.weights_file),
                                         ("--train-backbone", self.train_backbone),
                                         ("--clip-head", self.clip_head != "lstm")) if set_]
        if named:
            raise UsageError(f"{named[0]} applies to one backbone: name it with --backbone (the default, auto, "
                             f"chooses between a pretrained efficientnet_lite0 and vidnet itself)")

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir)

    @property
    def state_path(self) -> Path:
        """Where the run saves its training state after every epoch (what --resume continues)."""
        return self.run_dir / STATE_FILE

    @property
    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else self.run_dir / "cache"

    @property
    def resolved_model_dir(self) -> Path:
        return Path(self.model_out) if self.model_out else self.run_dir / "model"

    def backbone_mode(self) -> str:
        if self.train_backbone:
            return self.train_backbone
        return default_backbone_mode(self.pretrained, fine_tuning=bool(self.init_from))

    def to_dict(self) -> dict:
        data = asdict(self)
        data["train_backbone"] = self.backbone_mode()  # the resolved value, not "auto"
        # DATA and --from as given, and where they were: a resume from another working directory names the same
        # folder under another relative path (resume_conflicts compares the folders).
        data["resolved"] = {name: os.path.realpath(getattr(self, name)) if getattr(self, name) else None
                            for name in ("data", "init_from")}
        return data

    def check_resumed_settings(self) -> None:
        """A resuming config that gives settings other than the run's own (``resume_conflicts``): a UsageError."""
        conflicts = self.resume_conflicts() if self.resume else []
        if conflicts:
            raise UsageError(f"{self.run_dir}: the run was started with {'; '.join(conflicts)}; --resume continues "
                             f"it as it was started: give the run's own settings (or leave those options out), or "
                             f"train into another -o")

    def resume_conflicts(self) -> list[str]:
        """Settings this (resuming) config gives that differ from those the interrupted run saved in
        RUN_DIR/config.json, as "--flag SAVED (this command: GIVEN)"; [] where none or nothing was saved.

        A resumed run continues the run as it was started: its saved weights, optimiser, epoch plan and cached views
        fit those settings alone (another --hidden-size ended in a state-dict traceback, another --frames silently
        changed the clips mid-run, another --epochs was silently ignored). Settings left unset or at their default
        are not compared (the saved run may have resolved them from the data), nor those that only say how to run.
        """
        try:
            saved = json.loads((self.run_dir / "config.json").read_text())
        except (OSError, ValueError):
            return []
        if not isinstance(saved, dict):
            return []
        conflicts = []
        for item in fields(self):
            name, given = item.name, getattr(self, item.name)
            if name in RESUME_FREE or name not in saved or given is None or given == item.default:
                continue
            before = saved[name]
            if name in ("data", "init_from"):  # one folder under two spellings is the same
                where = saved.get("resolved") if isinstance(saved.get("resolved"), dict) else {}
                at = where.get(name) if isinstance(where.get(name), str) else before
                same = before is not None and Path(str(at)).resolve() == Path(str(given)).resolve()
                if Path(str(before)).resolve() != Path(str(at)).resolve():
                    before = at  # given from another working directory: named where it is, not as it read there
            else:
                same = before == given or (isinstance(given, tuple) and list(given) == before)
            if not same:
                conflicts.append(f"{option_name(name)} {before} (this command: {given})")
                if name == "init_from":  # fine-tuning takes its backbone, frames, size ... from that model
                    return conflicts[-1:]
        return conflicts

    def save(self, path) -> Path:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return Path(path)
