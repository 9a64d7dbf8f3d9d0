"""Deterministic, disjoint slices of a file list for many machines (`--shard I/N`, or RANK/WORLD_SIZE under torchrun)."""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from vidlstm.errors import UsageError


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based): the files whose stable key hash falls into this slot."""

    index: int
    count: int

    def __post_init__(self):
        if self.count < 1 or not 0 <= self.index < self.count:
            raise UsageError(f"shard {self.index}/{self.count}: expected 0 <= I < N")

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``"I/N"`` -> Shard(I, N)."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
        if not match:
            raise UsageError(f"--shard {text!r}: expected I/N, e.g. 0/4 (shard I of N, 0-based)")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def from_env(cls, environ=None) -> "Shard | None":
        """The shard of this process under torchrun (RANK, WORLD_SIZE), or None outside it and in a torchrun of one
        process (WORLD_SIZE=1), which splits nothing: it writes the output itself, as training takes it unsharded."""
        environ = os.environ if environ is None else environ
        if "WORLD_SIZE" not in environ:
            return None
        try:
            shard = cls(int(environ.get("RANK", "0")), int(environ["WORLD_SIZE"]))
        except ValueError:
            raise UsageError(f"RANK={environ.get('RANK')!r} WORLD_SIZE={environ['WORLD_SIZE']!r}: "
                             f"not integers") from None
        return shard if shard.count > 1 else None

    def contains(self, key: str) -> bool:
        # A content hash of the key (not Python's salted hash(), not the list position) so every machine
        # agrees on the split, and adding files later never moves the others to another shard. The key's
        # bytes: a name that is not UTF-8 is held as surrogate escapes.
        digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count == self.index

    def part_path(self, out) -> Path:
        """``preds.jsonl`` -> ``preds.part1-of-4.jsonl``: each shard writes its own file, `vidlstm merge` joins them."""
        out = Path(out)
        return out.with_name(f"{out.stem}.part{self.index}-of-{self.count}{out.suffix}")


PART_NAME = re.compile(r"\.part(\d+)-of-(\d+)$")


def part_of(path) -> tuple[int, int] | None:
    """(I, N) for a part file name made by :meth:`Shard.part_path`, else None."""
    match = PART_NAME.search(Path(path).stem)
    return (int(match.group(1)), int(match.group(2))) if match else None


def select_shard(files, shard: Shard | None) -> list:
    """The files of ``shard`` (all of them when ``shard`` is None or 1 of 1), in the given order."""
    if shard is None or shard.count == 1:
        return list(files)
    return [f for f in files if shard.contains(f.key)]


def resolve_shard(shard_text: str | None, environ=None) -> Shard | None:
    """``--shard`` if given, else torchrun's RANK/WORLD_SIZE; both at once is ambiguous and refused."""
    from_env = Shard.from_env(environ)
    if shard_text:
        if from_env is not None:
            raise UsageError("--shard given under torchrun (WORLD_SIZE is set): use one or the other")
        return Shard.parse(shard_text)
    return from_env
