"""A Ray actor that SIGKILLs itself in the middle of its first batch (once per marker file), for the Ray tests."""
from __future__ import annotations

import os
import signal

from vidlstm.batch.ray_engine import PredictActor


class ActorThatDiesOnce(PredictActor):
    marker: str | None = None  # set by the test; the class travels to Ray's workers by value, with it

    def __call__(self, batch):
        marker = self.marker
        if marker:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(batch)
