"""vidlstm: CNN-LSTM video classification (decode -> per-frame CNN features -> BiLSTM + attention)."""
from __future__ import annotations

from vidlstm.defaults import VERSION as __version__

__all__ = ["VideoClassifier", "__version__"]


def __getattr__(name):
    # Lazy so that `import vidlstm` (and the CLI's start-up) does not pay for torch until needed.
    if name == "VideoClassifier":
        from vidlstm.api import VideoClassifier

        return VideoClassifier
    raise AttributeError(name)
