"""The Python API: ``VideoClassifier.load(model_dir).predict("clip.mp4")`` -> [{"label", "score"}, ...]."""
from __future__ import annotations

from pathlib import Path

from vidlstm.errors import VidlstmError
from vidlstm.inference import Predictor


class VideoClassifier:
    """Classify video files with a saved model, like the Hugging Face ``video-classification`` pipeline."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor

    @classmethod
    def load(cls, model_dir=None, device: str | None = None) -> "VideoClassifier":
        """Load a model folder (default: the shipped default model)."""
        return cls(Predictor.from_dir(model_dir, device=device))

    @property
    def labels(self) -> list[str]:
        return self.predictor.labels

    def predict(self, path, top_k: int | None = None) -> list[dict]:
        """Scores for one video, highest first: ``[{"label": str, "score": float}, ...]`` (all classes by default).

        Raises VideoDecodeError (a VidlstmError) when the file cannot be read.
        """
        clip = self.predictor.load_clip(Path(path))
        scores = self.predictor.score_frames([clip.frames])[0]
        return self.predictor.top_k(scores.probs, top_k or len(self.labels))

    __call__ = predict

    def predict_many(self, paths, top_k: int | None = None, workers: int = 1, batch_size: int = 4,
                     exact_frames: bool = False):
        """One record per path, in the order given (the fields of `vidlstm classify --json`).

        Decodes in ``workers`` processes (0: in this process), so a decoder that crashes or hangs on a
        damaged file costs that file an error record (``status == "error"``, ``error`` says why) and never
        the caller's process; clips of different files share forward passes (``batch_size``).
        """
        from vidlstm.batch.engine import EngineOptions, predict_in_order

        options = EngineOptions(top_k=top_k or len(self.labels), batch_size=batch_size, workers=workers,
                                exact_frames=exact_frames)
        yield from predict_in_order(self.predictor, paths, options)


__all__ = ["VideoClassifier", "VidlstmError"]
