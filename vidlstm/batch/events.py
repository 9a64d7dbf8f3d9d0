"""What a decode source (worker pool or in-process decoder) reports about each file: pieces, the end, or a failure."""
from __future__ import annotations

from dataclasses import dataclass

from vidlstm.batch.decode import DecodeRequest


@dataclass
class Piece:
    """Part of a file's result (a DecodedClip, DecodedChunk or DecodedTimeline)."""

    request: DecodeRequest
    value: object


@dataclass
class Finished:
    """The file is done: every piece has been delivered."""

    request: DecodeRequest


@dataclass
class Failed:
    """The file could not be decoded; ``reason`` is one line for its error record."""

    request: DecodeRequest
    reason: str
    seconds: float = 0.0  # how long the file was being decoded before it failed

