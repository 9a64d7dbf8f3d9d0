"""Argument helpers shared by several commands (model folder, device, positive integers)."""
from __future__ import annotations

import argparse
import os

from vidlstm.defaults import MAX_THREADS


def whole_number(what: str, low: int, high: int | None = None, bounds: str | None = None):
    """An argparse type: an integer from ``low`` (to ``high``), refused as "expected WHAT" or "must be BOUNDS"."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {bounds or f'>= {low}'}, got {value}")
        return value
    return parse


positive_int = whole_number("a positive integer", 1)
threads = whole_number("a whole number", 0, MAX_THREADS, bounds=f"from 0 (one per available core) to {MAX_THREADS}")
"""A thread count: 0 (the default: one per available core) up to ``defaults.MAX_THREADS``."""
seed = whole_number("an integer", 0, 2 ** 32 - 1, bounds="from 0 to 2**32 - 1")
"""A random seed: an integer from 0 to 2**32 - 1 (what numpy's generators take)."""


def add_sampling_argument(parser: argparse.ArgumentParser, timeline: bool = False) -> None:
    """--exact-frames: turn off keyframe-snapped sampling (inference only; training never snaps)."""
    parser.add_argument("--exact-frames", action="store_true",
                        help="use each segment's centre frame, not the frame cheapest to decode (default: "
                             "keyframe-aware, several times less decoding, except for a statistics read-out model, "
                             "which takes the centres it was fitted on; JSON records say which in 'sampling'"
                             + (", except --timeline ones, which read every frame at the timeline's rate)"
                                if timeline else ")"))


def new_data_folder(path, force: bool = False, has_force: bool = True, writer: str = "vidlstm synth") -> int:
    """Make ``path`` ready for a synthetic data set: new, empty, or an earlier one (``data.synth.earlier_set``: its
    marker and the manifest.csv it wrote, and every file in the folder listed), whose clips are removed first, so a
    smaller set leaves none behind; how many: the result. Anything else is the user's (a folder per class with a
    manifest.csv of their own clips is what `train` takes, and was once taken for an earlier set and deleted, also
    where its clips were named as synth names them), which clip by clip overwriting would have mixed with the new
    set: a UsageError, unless ``force``, which writes beside the user's files and still removes an earlier set's
    clips (left there, they joined the new set's class folders). The error offers --force only where the command has
    one (``has_force``). `vidlstm demo` (``writer``) replaces only a set it wrote: one `vidlstm synth` wrote may have
    trained a model, and `demo --keep` into it replaced its clips without a word."""
    from vidlstm.data.synth import MARKER, WRITERS, earlier_set
    from vidlstm.errors import UsageError

    if not os.path.exists(path):
        return 0
    if not os.path.isdir(path):
        raise UsageError(f"{path}: a file, not a folder; name a new folder for the clips")
    files = {os.path.relpath(os.path.join(top, name), path) for top, _, names in os.walk(path) for name in names}
    replaces = WRITERS if writer == WRITERS[0] else (writer,)
    listed = earlier_set(path, replaces)
    others = [] if listed is not None else [w for w in WRITERS if w not in replaces and earlier_set(path, (w,))]
    if others and files:
        raise UsageError(f"{path}: holds a data set `{others[0]}` wrote ({MARKER}), which `{writer}` does not replace; "
                         f"name a new or empty folder for the clips")
    if not force and (listed is None or not files <= listed | {"manifest.csv", MARKER}):
        if files:
            offer = " (or pass --force to write into it)" if has_force else ""
            raise UsageError(f"{path}: holds files of its own; name a new folder for the clips{offer}")
    for name in ("manifest.csv", MARKER):
        if listed is None and name in files:  # even with --force: the set's own would replace it
            raise UsageError(f"{path}: holds a {name} of its own, which the synthetic set's would replace; name a "
                             f"new folder for the clips")
    earlier = (listed or set()) & files
    for name in earlier:  # an earlier synthetic set: replaced whole
        os.unlink(os.path.join(path, name))
    return len(earlier)


def model_folder(text: str) -> str:
    """An argparse type for a model folder: ``default`` names the shipped default model (``named_model_dir``)."""
    from vidlstm.defaults import named_model_dir

    if not text.strip():  # "" was the shipped model (--model ''), silently
        raise argparse.ArgumentTypeError("an empty path: name a model folder, or `default` for the shipped model")
    return named_model_dir(text)


def add_model_arguments(parser: argparse.ArgumentParser, threads_default: str = "one per available core") -> None:
    parser.add_argument("--model", metavar="DIR", default=None, type=model_folder,
                        help="model folder; left out or `default`: the shipped default model ($VIDLSTM_MODEL where "
                             "set; `default` names ./default instead where that is a model folder)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--threads", type=threads, default=0, help=f"torch CPU threads (default: {threads_default})")
