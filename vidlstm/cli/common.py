"""Argument helpers shared by several commands (model folder, device, positive integers)."""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def threads(text: str) -> int:
    """A thread count: 0 (the default: one per available core) or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0: one per available core), got {value}")
    return value


def seed(text: str) -> int:
    """A random seed: an integer from 0 to 2**32 - 1 (what numpy's generators take)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value < 2 ** 32:
        raise argparse.ArgumentTypeError(f"must be from 0 to 2**32 - 1, got {value}")
    return value


def add_sampling_argument(parser: argparse.ArgumentParser) -> None:
    """--exact-frames: turn off keyframe-snapped sampling (inference only; training never snaps)."""
    parser.add_argument("--exact-frames", action="store_true",
                        help="use each segment's centre frame, not the frame cheapest to decode (default: "
                             "keyframe-aware, several times less decoding; JSON records say which in 'sampling')")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="DIR", default=None,
                        help="model folder (default: the shipped default model in weights/default)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--threads", type=threads, default=0,
                        help="torch CPU threads (default: one per available core)")
