"""Decode functions for pool tests, importable by worker processes: they crash, hang or fail on cue.

The cue is in the file name, so one run can mix healthy and faulty files. Healthy files get the real
decoder when the name ends in a video suffix that exists, else a small fake piece (the path itself).
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from vidlstm.errors import VideoDecodeError


def _fault(path: str) -> None:
    name = Path(path).name
    if "crash" in name:
        os.kill(os.getpid(), signal.SIGSEGV)  # what a decord segfault looks like to the pool
    if "hang" in name:
        time.sleep(3600)  # what a decoder deadlock looks like
    if "exit" in name:
        os._exit(3)
    if "abort" in name:  # what decord's std::bad_alloc looks like: native text on fd 2, then SIGABRT
        os.write(2, b"terminate called after throwing an instance of 'std::bad_alloc'\n")
        os.abort()
    if "broken" in name:
        raise VideoDecodeError(path, "cannot decode (test: broken on purpose)")


def fake_decode(request):
    """No real decoding: one piece per file, the request's path, after the faults above."""
    _fault(request.path)
    yield f"piece:{Path(request.path).name}"


def faulty_real_decode(request):
    """The real decoder, after the faults above."""
    from vidlstm.batch.decode import decode_request

    _fault(request.path)
    yield from decode_request(request)


def empty_decode(request):
    """A decoder that finishes without delivering anything."""
    return iter(())
