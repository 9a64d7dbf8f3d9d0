"""The Python API: ``VideoClassifier.load(model_dir).predict("clip.mp4")`` -> [{"label", "score"}, ...].

It follows the Hugging Face ``video-classification`` pipeline: one input gives one list of
``{"label", "score"}`` (highest first, ``top_k=5``), a list of inputs gives a list of such lists in order.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vidlstm.defaults import named_model_dir, usable_device
from vidlstm.errors import UsageError, VideoDecodeError, VidlstmError
from vidlstm.inference import Predictor


class VideoClassifier:
    """Classify video files (or decoded frames) with a saved model, like the Hugging Face pipeline."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor

    @classmethod
    def load(cls, model_dir=None, device: str | None = None) -> "VideoClassifier":
        """Load a model folder (default: the shipped default model) onto ``device`` (default: cuda where available).

        A device this machine lacks is a UsageError that says so before the model is read, and its advice speaks of
        this argument (``device="cpu"``), not of the command line's --device.
        """
        if device:  # None and "": the default device, which is always there
            usable_device(device, cpu_choice='device="cpu"')
        if model_dir is not None:  # "" was the shipped model, bytes a TypeError; `default`, as --model default
            model_dir = named_model_dir(str(_path(model_dir, "model_dir")))
        return cls(Predictor.from_dir(model_dir, device=device))

    @property
    def labels(self) -> list[str]:
        return self.predictor.labels

    def predict(self, inputs, top_k: int = 5):
        """Scores, highest first: ``[{"label": str, "score": float}, ...]`` (the ``top_k`` best classes).

        ``inputs``: a video path, decoded frames (T, H, W, 3) uint8 RGB (a numpy array or a CPU tensor), sampled to
        the model's clip length and resized to its input size, or a list of these (a list of such lists comes
        back, in order). Raises VideoDecodeError (a VidlstmError) naming the file when a file cannot be read; use
        ``predict_many`` to get error records instead.
        """
        _check_count("top_k", top_k)
        if isinstance(inputs, (list, tuple)):
            items = [_frames_or_path(item) for item in inputs]
            files = [item for item in items if not isinstance(item, np.ndarray)]
            records = self.predict_many(files, top_k=top_k) if files else iter(())
            return [self._scores_of(self._frames_views(item), top_k) if isinstance(item, np.ndarray)
                    else self._top_k_of(next(records)) for item in items]
        item = _frames_or_path(inputs)
        if isinstance(item, np.ndarray):
            return self._scores_of(self._frames_views(item), top_k)
        _, views = self.predictor.load_views(item)  # decodes in this process: one file, no start-up cost
        return self._scores_of(views, top_k)

    __call__ = predict

    def predict_many(self, paths, top_k: int | None = None, workers: int = 1, batch_size: int = 4,
                     exact_frames: bool = False):
        """One record per path, in the order given (the fields of `vidlstm classify --json`); one path alone gives one
        record.

        Decodes in ``workers`` processes (0: in this process), so a decoder that crashes or hangs on a
        damaged file costs that file an error record (``status == "error"``, ``error`` says why) and never
        the caller's process; clips of different files share forward passes (``batch_size``).
        """
        from vidlstm.batch.engine import EngineOptions, predict_in_order

        if isinstance(paths, (str, bytes, Path)):  # not its characters, one by one
            paths = [paths]
        elif paths is None or isinstance(paths, np.ndarray) or not hasattr(paths, "__iter__"):
            raise UsageError(f"predict_many takes video paths (a list, or one path; got {type(paths).__name__}); "
                             f"frames arrays go to predict")
        if top_k is not None:
            _check_count("top_k", top_k)  # -1 gave one label, 0 all of them
        _check_count("workers", workers, minimum=0)
        _check_count("batch_size", batch_size)
        options = EngineOptions(top_k=top_k or len(self.labels), batch_size=batch_size, workers=workers,
                                exact_frames=exact_frames)
        yield from predict_in_order(self.predictor, [_path(p, "a path") for p in paths], options)

    def _scores_of(self, views: list[np.ndarray], top_k: int) -> list[dict]:
        scores = self.predictor.score_views([views])[0]
        return self.predictor.top_k(scores.probs, top_k)

    @staticmethod
    def _top_k_of(record: dict) -> list[dict]:
        if record["status"] != "ok":
            raise VideoDecodeError(record["path"], record.get("error") or "cannot be classified")
        return record["top_k"]

    def _frames_views(self, frames: np.ndarray) -> list[np.ndarray]:
        """Decoded frames (T, H, W, 3) uint8 -> the model's clips (num_frames, S, S, 3), resized: the segment centres,
        or each of its test views (data.clips.shifted_view_indices)."""
        import cv2

        from vidlstm.data.clips import shifted_view_indices

        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or 0 in frames.shape:
            empty = ", with T, H and W at least 1" if 0 in frames.shape else ""
            raise UsageError(f"frames must be a (T, H, W, 3) uint8 RGB array{empty} "
                             f"(got {frames.dtype} {frames.shape})")
        cfg = self.predictor.config
        size = (cfg.image_size, cfg.image_size)
        views = []
        for indices in shifted_view_indices(len(frames), cfg.num_frames, cfg.test_views):
            clip = frames[indices]  # (num_frames, H, W, 3)
            if clip.shape[1:3] != size:
                clip = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in clip])
            views.append(np.ascontiguousarray(clip))
        return views


def _frames_or_path(item) -> np.ndarray | Path:
    """One input of ``predict``: frames as a numpy array (a tensor's copied to one), or a file's path."""
    if isinstance(item, np.ndarray):
        return item
    if type(item).__module__.startswith("torch") and hasattr(item, "numpy"):
        return item.detach().cpu().numpy()
    return _path(item)


def _check_count(name: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise UsageError(f"{name} must be an integer >= {minimum} (got {value!r})")


def _path(item, what: str = "an input") -> Path:
    if isinstance(item, bytes):  # a name as the file system's bytes (os.listdir(b".")), as Python's own open takes it
        item = os.fsdecode(item)
    if isinstance(item, str) and not item.strip():
        raise UsageError(f"{what} is an empty path ({item!r}): give "
                         f"{'a folder' if what == 'model_dir' else 'a video file'}")
    try:
        return Path(item)
    except TypeError:
        kind = {"an input": "video path or a (T, H, W, 3) uint8 frames array",
                "a path": "video path (predict takes frames arrays)"}.get(what, "path")
        raise UsageError(f"{what} must be a {kind} (got {type(item).__name__})") from None


__all__ = ["VideoClassifier", "VidlstmError"]
