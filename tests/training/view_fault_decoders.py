"""Training-view decode functions for tests, importable by decode workers: they abort or hang on cue.

The cue is in the file name ("abort", "hang"); any other file gets the real training-view decoder.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from vidlstm.training.decode_jobs import decode_training_views


def faulty_training_views(request):
    name = Path(request.path).name
    if "abort" in name:
        os.abort()  # what decord's uncaught std::bad_alloc does to the process: SIGABRT
    if "hang" in name:
        time.sleep(3600)  # what a decoder deadlock looks like
    yield from decode_training_views(request)
