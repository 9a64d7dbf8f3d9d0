"""The merge stage: join the part files of a sharded `vidlstm predict` into one sorted, duplicate-free file."""
from __future__ import annotations

from dataclasses import dataclass

from vidlstm.batch.merge import MergeResult, merge_parts


@dataclass
class MergeConfig:
    """One `vidlstm merge` run."""

    parts: list[str]
    """Part files (JSONL or CSV), e.g. preds.part0-of-4.jsonl ... preds.part3-of-4.jsonl."""
    output: str
    """The merged file, .jsonl or .csv."""


def run(config: MergeConfig) -> MergeResult:
    return merge_parts(config.parts, config.output)
