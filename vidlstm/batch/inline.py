"""Decode in the calling process with the decode pool's interface (`--workers 0`, and `vidlstm classify`)."""
from __future__ import annotations

import collections
import time

from vidlstm.batch.decode import DecodeRequest, decode_request
from vidlstm.batch.events import Failed, Finished, Piece
from vidlstm.errors import failure_reason


class InlineDecoder:
    """The same interface as DecodePool, decoding in this process one piece per ``poll`` (``--workers 0``).

    No worker start-up cost, which is what a one-file `vidlstm classify` wants; but no isolation either:
    a decoder crash takes the process with it and a hang is not timed out.
    """

    replaced = 0

    def __init__(self, decode_fn=decode_request):
        self.decode_fn = decode_fn
        self._pending: collections.deque[DecodeRequest] = collections.deque()
        self._current = None  # (request, iterator over its pieces)
        self._started = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._current = None

    def submit(self, requests) -> None:
        self._pending.extend(requests)

    @property
    def unfinished(self) -> int:
        return len(self._pending) + (self._current is not None)

    def poll(self, block: bool) -> list:
        if self._current is None:
            if not self._pending:
                return []
            request = self._pending.popleft()
            self._current = (request, iter(self.decode_fn(request)))
            self._started = time.monotonic()
        request, pieces = self._current
        try:
            value = next(pieces)
        except StopIteration:
            self._current = None
            return [Finished(request)]
        except Exception as err:  # the file's failure, not the run's
            self._current = None
            return [Failed(request, failure_reason(err), time.monotonic() - self._started)]
        return [Piece(request, value)]
