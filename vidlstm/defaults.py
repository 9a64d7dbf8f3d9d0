"""Where the shipped default model lives, process-wide runtime defaults (threads), and torch-free constants."""
from __future__ import annotations

import json
import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent

VERSION = "0.1.0"
"""The package version (also pyproject.toml's); ``vidlstm.__version__``."""

BACKBONE_MODES = ("frozen", "last", "all")
"""Which backbone weights train: none (cached features), its last stage(s), or all. Torch-free, so the CLI
can offer the choices without importing the model code."""


def default_backbone_mode(pretrained: bool, fine_tuning: bool = False) -> str:
    """"frozen" for a pretrained or fine-tuned backbone (cacheable features), "all" from scratch: random
    features are not features. The one rule behind TrainConfig.backbone_mode and models.default_backbone_mode."""
    return "frozen" if (pretrained or fine_tuning) else "all"


CLIP_HEADS = ("lstm", "lstm+stats", "stats")
"""Where clip logits come from: the attention-pooled BiLSTM, plus or instead of a linear read-out of the
clip's feature statistics over time (models.temporal.ClipStatistics; frozen backbones)."""

INPUT_MODES = {"rgb": 3, "rgb+diff": 6, "diff": 3, "rgb,diff": 3}  # input mode -> channels the backbone sees (torch-free: the CLI lists them)
DIFF_CHANNEL = {"rgb": None, "rgb+diff": 3, "diff": 0, "rgb,diff": 0}
"""Input mode -> the channel where the frame differences start in the backbone's input (None: no differences).
"diff" shows the backbone only the change from the previous sampled frame: ImageNet filters read such motion
images well (a frozen Lite0 on them scored fight 0.839 against 0.793 on the frames; benchmarks/RESULTS.md).
"rgb,diff" passes the frames and their differences through the backbone separately (FEATURE_STREAMS)."""
FEATURE_STREAMS = {"rgb,diff": 2}
"""Input modes whose backbone sees the frames and, in a second pass, their differences (each 3 channels), the two
features of a frame side by side (2 x the backbone's); other modes: one pass. One read-out of both descriptions beat
choosing between a read-out of each (benchmarks/RESULTS.md, session 23)."""
INPUT_MODE_WORDS = {"rgb,diff": "the frames and their differences in two passes, features side by side"}
"""What the backbone sees, in words, for input modes whose name does not say it (the model card, `vidlstm info`)."""

CLIP_HEAD_WORDS = {"lstm": "the attention-pooled BiLSTM",
                   "lstm+stats": "the BiLSTM plus a linear read-out of its frame features' statistics over time "
                                 "(mean, spread, change)",
                   "stats": "a linear read-out of its frame features' statistics over time (mean, spread, change)"}
"""Where a clip's label comes from, in words, per ``clip_head`` (the model card, `vidlstm info`)."""


def snaps_to_keyframes(clip_head) -> bool:
    """``ModelConfig.snaps_to_keyframes`` from a config's ``clip_head`` alone (torch-free: the early decode worker
    reads config.json before the model loads)."""
    return clip_head != "stats"


def label_list(labels) -> str:
    """Labels as one line: comma-separated, or as a JSON list where a label holds a comma (it would read as two)."""
    labels = [str(label) for label in labels]
    return json.dumps(labels, ensure_ascii=False) if any("," in label for label in labels) else ", ".join(labels)


def backbone_source(pretrained: bool, metrics: dict | None) -> str:
    """Where the backbone's weights came from, in words (the model card, `vidlstm info`): a fine-tuned model names
    the model it started from (its metrics' ``init``), whatever that one's backbone started from."""
    init = (metrics or {}).get("init")
    if isinstance(init, str) and init not in ("scratch", "imagenet"):
        return f"fine-tuned from {init}"
    return "ImageNet-pretrained" if pretrained else "trained from scratch"


def named_model_dir(text: str) -> str:
    """A model folder as a user names it: ``default`` is the shipped default model (wherever vidlstm is installed),
    unless a model folder of that name is here; any other name as it is."""
    if text == "default" and not os.path.isfile(os.path.join(text, "config.json")):
        return str(default_model_dir())
    return text


def candidates_trained(trained: int, total: int) -> str:
    """'2 candidates', or '1 of 2 candidates' where some of `train --backbone auto`'s were not trained."""
    return f"{trained} candidates" if trained == total else f"{trained} of {total} candidates"


def shipped_places(in_checkout: str, in_wheel: str) -> tuple[Path, Path]:
    """Where something that comes with vidlstm lies, in the order to look: ``in_checkout`` beside the package in a
    source checkout, ``in_wheel`` inside the package in an installed wheel (pyproject's force-include)."""
    return _PACKAGE_DIR.parent / in_checkout, _PACKAGE_DIR / in_wheel


MODEL_ENV = "VIDLSTM_MODEL"
"""The environment variable naming the model that replaces the shipped one wherever no model is named."""


def default_model_dir() -> Path:
    """The shipped default model: ``weights/default`` in a source checkout, ``vidlstm/_weights`` in a wheel."""
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env)
    for candidate in shipped_places("weights/default", "_weights/default"):
        if (candidate / "config.json").is_file():
            return candidate
    return _PACKAGE_DIR.parent / "weights" / "default"


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


MAX_THREADS = 1024
"""The most torch threads asked for that are set (torch.set_num_threads(100000) ended the process with a SIGSEGV)."""


def configure_torch_threads(threads: int | None = None) -> int:
    """Use one intra-op thread per available core (never more: two busy threads per core oversubscribe)."""
    import torch

    from vidlstm.errors import UsageError

    if threads is None or threads <= 0:
        threads = available_cores()
    if threads > MAX_THREADS:
        raise UsageError(f"--threads must be at most {MAX_THREADS} (got {threads})")
    torch.set_num_threads(threads)
    return threads


def usable_device(device, cpu_choice: str = "--device cpu"):
    """``device`` as a torch.device this machine can run on; a UsageError naming it and why where it cannot (a
    misspelt name, CUDA asked for where there is none, a GPU index past the last), before any model is moved.
    ``cpu_choice``: how the caller's user asks for the CPU instead, as the advice spells it (the command line's
    option; the Python API's ``device="cpu"``)."""
    import torch

    from vidlstm.errors import UsageError

    try:
        checked = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UsageError(f"device {device!r}: not a device name (cpu, cuda, cuda:1, mps ...)") from None
    if checked.type == "cpu":
        return checked
    backend = getattr(torch, checked.type, None) if checked.type != "mps" else torch.backends.mps
    if backend is None or not hasattr(backend, "is_available"):
        raise UsageError(f"device {device!r}: vidlstm runs on cpu, cuda or mps")
    if not backend.is_available():
        raise UsageError(f"device {device!r}: no {checked.type} device is available here (torch "
                         f"{torch.__version__}); use {cpu_choice}")
    count = getattr(backend, "device_count", lambda: 1)()
    if checked.index is not None and checked.index >= count:
        raise UsageError(f"device {device!r}: this machine has {count} {checked.type} device(s), numbered from 0")
    return checked
