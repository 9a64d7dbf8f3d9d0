"""Decode the training views of videos in worker processes (crash and hang isolation) or in this process.

Training decodes every video of the data set once into the clip/feature cache. A decoder that aborts or
segfaults on a damaged file (decord does, on some byte-flipped AVIs) must cost that file, never the run,
so by default the views are decoded in one worker process of ``vidlstm.batch.pool.DecodePool``: a dead or
hung worker is replaced and its file reported failed with a one-line reason. ``workers=0`` decodes in the
training process instead (no start-up cost, no isolation), through the pool's in-process twin.

Torch-free on purpose: worker processes import this module to find ``decode_training_views``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from vidlstm.batch.events import Failed, Finished, Piece
from vidlstm.batch.inline import InlineDecoder
from vidlstm.batch.pool import DecodePool
from vidlstm.data.views import decode_views

# Seconds a decode worker may go without delivering a file's views before it is killed and the file
# failed. Generous: a long video's views on a loaded 2-core machine take seconds, a hang takes forever.
DECODE_TIMEOUT = 120.0


@dataclass(frozen=True)
class ViewsRequest:
    """One video to decode into its cached views (see ``vidlstm.data.views.decode_views``)."""

    task_id: int  # the item's index in the data set, so results arriving in any order find their item
    path: str
    sha: str  # content hash: seeds the random-offset views, so a file always gets the same views
    num_frames: int
    image_size: int
    views: int
    threads: int = 1  # decoder threads; 1 in workers so workers plus the CNN never oversubscribe the cores
    stabilize: bool = False  # undo the camera's pan in each view (the model was or will be trained so)


def decode_training_views(request: ViewsRequest) -> Iterator[np.ndarray]:
    """Yield the (V, T, S, S, 3) uint8 views of ``request``; errors propagate and fail the file only."""
    yield decode_views(request.path, request.sha, request.num_frames, request.image_size, request.views,
                       threads=request.threads, stabilize=request.stabilize)


def decoded_views(requests: list[ViewsRequest], workers: int, timeout: float = DECODE_TIMEOUT,
                  decode_fn=decode_training_views) -> Iterator[tuple[ViewsRequest, np.ndarray | None, str | None]]:
    """Yield ``(request, views or None, failure reason or None)`` once per request, in completion order.

    ``workers`` >= 1: that many decode processes (a crash or a ``timeout``-second hang fails one file);
    0: decode here, in request order. ``decode_fn`` must be a module-level function (workers import it).
    """
    if workers < 0:
        raise ValueError(f"decode workers must be >= 0, got {workers}")
    source = InlineDecoder(decode_fn) if workers == 0 else DecodePool(workers, timeout, decode_fn)
    delivered: set[int] = set()
    with source:
        source.submit(requests)
        while source.unfinished:
            for event in source.poll(block=True):
                request = event.request
                if isinstance(event, Piece) and request.task_id not in delivered:
                    delivered.add(request.task_id)
                    yield request, event.value, None
                elif isinstance(event, Failed) and request.task_id not in delivered:
                    # (A worker that died after sending the views has already delivered what counts.)
                    yield request, None, event.reason
                elif isinstance(event, Finished) and request.task_id not in delivered:
                    yield request, None, "the decoder returned no frames"
