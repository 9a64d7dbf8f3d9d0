"""Per-record additions a run asks for: 'unknown' below a minimum score, and an explanation per clip."""
from __future__ import annotations

import errno
import os

from vidlstm.errors import UsageError, VidlstmError
from vidlstm.inference.records import error_record

UNKNOWN_LABEL = "unknown"
ONE_FILES = (errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENAMETOOLONG)
"""Reasons an explanation cannot be written that concern its file alone (every other stops the run)."""


def make_annotator(predictor, min_score: float = 0.0, explain_dir=None):
    """``annotate(record, clip, scores)`` for the batch engine: 'unknown' below ``min_score`` (its top-k still
    says what the model saw) and, with ``explain_dir``, an explanation (attention JSON + PNG strip) written there."""
    if not 0.0 <= min_score <= 1.0:
        raise UsageError(f"--min-score must be in [0, 1] (got {min_score})")
    out_dir = None
    if explain_dir is not None:
        from vidlstm.explain import explain_clip, prepare_explain_dir

        out_dir = prepare_explain_dir(explain_dir)

    def annotate(record: dict, clip, scores) -> None:
        if record["status"] != "ok":
            return
        if record["score"] < min_score:
            record["label"] = UNKNOWN_LABEL
        if out_dir is not None:
            try:
                record.update(explain_clip(record["path"], clip, scores, predictor.labels, out_dir))
            except OSError as err:
                if err.errno in ONE_FILES:  # its name taken by a folder, say: this file's error, the others run on
                    where = os.path.basename(err.filename) if err.filename else out_dir
                    failed = error_record(record["path"], f"its explanation cannot be written ({where} in {out_dir}: "
                                                          f"{err.strerror or err})", record.get("seconds", 0.0))
                    record.clear()
                    record.update(failed)
                    return
                # A full disk or a read-only --explain folder: one line, the records so far stay
                raise VidlstmError(f"{out_dir}: cannot write the explanation of {record['path']} "
                                   f"({err.strerror or err})") from None

    annotate.needs_frames = out_dir is not None  # the batch engine keeps timeline frames only then
    return annotate
