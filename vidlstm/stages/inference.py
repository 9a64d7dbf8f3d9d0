"""Model inference shared by classify, predict and the Python API: batched forward passes and per-file records."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vidlstm.batch.events import failure_reason
from vidlstm.checkpoint import load_model
from vidlstm.data.clips import Clip, load_clip
from vidlstm.data.transforms import frames_to_tensor
from vidlstm.defaults import default_model_dir
from vidlstm.errors import UsageError, VidlstmError


@dataclass
class ClipScores:
    """What the model says about one clip."""

    probs: np.ndarray  # (C,) calibrated class probabilities
    attention: np.ndarray  # (T,) attention weight of each sampled frame
    step_probs: np.ndarray  # (T, C) per-time-step probabilities


class Predictor:
    """A loaded model ready for inference: eval mode, channels_last on CPU, inference_mode forward passes."""

    def __init__(self, model, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        if self.device.type == "cpu":
            # measured: channels_last makes CPU convolutions several times faster
            self.model = self.model.to(memory_format=torch.channels_last)
        self.config = model.config
        self.labels = list(model.config.labels)

    @classmethod
    def from_dir(cls, model_dir=None, device: str | None = None) -> "Predictor":
        model_dir = Path(model_dir) if model_dir else default_model_dir()
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(load_model(model_dir, device="cpu"), device=device)

    def fold_batch_norm(self) -> bool:
        """Fold the backbone's batch norms into its convolutions: same outputs (float rounding), fewer passes.

        Measured: resnet18 at 112 px on one CPU thread, 45 -> 51 frames/s. Tracing costs ~0.2 s, so batch
        runs call this and one-clip classify does not. False (model unchanged) if the backbone cannot be traced.
        """
        from torch.fx.experimental.optimization import fuse

        try:
            fused = fuse(self.model.backbone)  # a traced copy; needs eval mode, which the Predictor keeps
        except Exception:  # noqa: BLE001 - any tracing failure just means no folding for this backbone
            return False
        self.model.backbone = fused.to(memory_format=torch.channels_last)
        return True

    def load_clip(self, path, backends=None, threads: int = 0, offset_fraction: float | None = None,
                  exact_frames: bool = False) -> Clip:
        """The clip the model sees; keyframe-snapped sampling unless ``exact_frames`` (or an ``offset_fraction``)."""
        return load_clip(path, self.config.num_frames, self.config.image_size, backends=backends,
                         threads=threads, offset_fraction=offset_fraction, keyframe_snap=not exact_frames)

    @torch.inference_mode()
    def score_frames(self, frames: list[np.ndarray]) -> list[ClipScores]:
        """Score a batch of clips, each (T, H, W, 3) uint8 with the same T; one forward pass."""
        x = torch.stack([frames_to_tensor(f) for f in frames]).to(self.device)  # (B, T, 3, H, W)
        with self._autocast():
            out = self.model(x)
        return self._scores(out)

    @torch.inference_mode()
    def encode_chunk(self, frames: np.ndarray, prev_frame: torch.Tensor | None = None):
        """Backbone features of consecutive frames (t, H, W, 3) uint8 -> ((t, D) features, last frame).

        Pass the returned last frame as ``prev_frame`` of the next chunk: frame differences (and so the
        features) then come out as if the whole video had been encoded at once, in bounded memory.
        """
        x = frames_to_tensor(frames).unsqueeze(0).to(self.device)  # (1, t, 3, H, W)
        with self._autocast():
            feats = self.model.encode_frames(x, prev_frame=prev_frame)  # (1, t, D)
        return feats[0].float(), x[:, -1]  # (t, D), (1, 3, H, W)

    @torch.inference_mode()
    def score_features(self, feats: torch.Tensor) -> ClipScores:
        """The temporal model and heads over one video's whole feature sequence (T, D)."""
        with self._autocast():
            out = self.model.forward_features(feats.unsqueeze(0))  # feats: (1, T, D)
        return self._scores(out)[0]

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.float16, enabled=self.device.type == "cuda")

    def _scores(self, out) -> list[ClipScores]:
        temperature = float(getattr(self.config, "temperature", 1.0) or 1.0)
        probs = torch.softmax(out.logits.float() / temperature, dim=-1).cpu().numpy()  # (B, C)
        step = torch.softmax(out.step_logits.float() / temperature, dim=-1).cpu().numpy()  # (B, T, C)
        attn = out.attention.float().cpu().numpy()  # (B, T)
        return [ClipScores(probs[i], attn[i], step[i]) for i in range(len(probs))]

    def top_k(self, probs: np.ndarray, k: int) -> list[dict]:
        order = np.argsort(-probs, kind="stable")[: max(1, k)]
        return [{"label": self.labels[i], "score": round(float(probs[i]), 6)} for i in order]

    def record(self, path, clip: Clip, scores: ClipScores, top_k: int, seconds: float) -> dict:
        """The per-file prediction record (JSON-serialisable), shared by classify and predict."""
        record = self.make_record(path, probs=scores.probs, indices=clip.indices, info=clip.info,
                                  backend=clip.backend, top_k=top_k, seconds=seconds)
        if record["status"] == "ok":
            record["sampling"] = clip.sampling  # "keyframes" or "exact": which frame of each segment was used
        return record

    def make_record(self, path, *, probs: np.ndarray, indices: np.ndarray, info, backend: str, top_k: int,
                    seconds: float) -> dict:
        """A record from class probabilities and the frames they came from (a clip or a whole timeline)."""
        if not np.isfinite(probs).all():  # a record's score is always a number JSON can carry
            return error_record(path, "the model gave non-finite scores (NaN or infinity)", seconds)
        top = self.top_k(probs, top_k)
        fps = info.fps if info.fps and info.fps > 0 else 25.0
        ts = np.asarray(indices, dtype=np.float64) / fps  # seconds of each frame used
        return {
            "path": str(path),
            "status": "ok",
            "label": top[0]["label"],
            "score": top[0]["score"],
            "top_k": top,
            "frames": int(len(indices)),
            "decoder": backend,
            "seconds": round(seconds, 4),
            "duration_covered": round(float(ts[-1] - ts[0]), 3) if len(ts) else 0.0,
            "duration": round(float(info.duration), 3),
        }


def error_record(path, err: BaseException | str, seconds: float) -> dict:
    """The record of a file that could not be classified: the reason, one line."""
    reason = err if isinstance(err, str) else failure_reason(err)
    return {"path": str(path), "status": "error", "label": None, "score": None, "top_k": [],
            "frames": 0, "decoder": None, "seconds": round(seconds, 4), "error": reason}


UNKNOWN_LABEL = "unknown"


def make_annotator(predictor: Predictor, min_score: float = 0.0, explain_dir=None):
    """``annotate(record, clip, scores)`` for the batch engine: 'unknown' below ``min_score`` (its top-k still
    says what the model saw) and, with ``explain_dir``, an explanation (attention JSON + PNG strip) written there."""
    if not 0.0 <= min_score <= 1.0:
        raise UsageError(f"--min-score must be in [0, 1] (got {min_score})")
    out_dir = None
    if explain_dir is not None:
        from vidlstm.explain import explain_clip, prepare_explain_dir

        out_dir = prepare_explain_dir(explain_dir)

    def annotate(record: dict, clip: Clip, scores: ClipScores) -> None:
        if record["status"] != "ok":
            return
        if record["score"] < min_score:
            record["label"] = UNKNOWN_LABEL
        if out_dir is not None:
            try:
                record.update(explain_clip(record["path"], clip, scores, predictor.labels, out_dir))
            except OSError as err:  # a full disk or a read-only --explain folder: one line, the records so far stay
                raise VidlstmError(f"{out_dir}: cannot write the explanation of {record['path']} "
                                   f"({err.strerror or err})") from None

    annotate.needs_frames = out_dir is not None  # the batch engine keeps timeline frames only then
    return annotate


def classify_paths(predictor: Predictor, paths, top_k: int = 5, backends=None, min_score: float = 0.0,
                   explain_dir=None, workers: int = 1, exact_frames: bool = False, early=None):
    """Yield one record per path, in order; a file that fails yields an error record and the rest go on.

    The batch engine of `vidlstm predict` with one clip per forward pass, so records come out in the order
    of ``paths``. By default one worker process decodes: a decoder that aborts (decord does, with
    std::bad_alloc, on some damaged AVIs) or hangs then costs that file, not the run. ``workers=0``
    decodes in this process, ~0.5 s sooner to start, without that guard. A record whose best score
    is below ``min_score`` is labelled "unknown" (its top-k still says what the model saw); with
    ``explain_dir``, each ok record also gets an explanation (attention JSON + PNG strip) written there.
    Each segment contributes its keyframe nearest the centre unless ``exact_frames`` (the centre frame).
    ``early``: a vidlstm.batch.early.EarlyDecoding started on ``paths`` before the model loaded; the engine
    closes it once it runs, and the caller closes it if this raises first (vidlstm classify does, in ``finally``).
    """
    # Imported here: the engine builds on this module (Predictor, error_record).
    from vidlstm.batch.engine import EngineOptions, predict_records

    if top_k < 1:
        raise UsageError(f"--top-k must be >= 1 (got {top_k})")
    if workers < 0:
        raise UsageError(f"--workers must be >= 0 (got {workers})")
    annotate = make_annotator(predictor, min_score, explain_dir)

    paths = [str(p) for p in paths]
    # At most one worker: more would not help one clip per forward pass, only finish files out of order.
    options = EngineOptions(top_k=top_k, batch_size=1, workers=min(workers, 1),
                            backends=tuple(backends) if backends else None, exact_frames=exact_frames)
    yield from _in_given_order(predict_records(predictor, paths, options, annotate=annotate, early=early), paths)


def _in_given_order(records, paths: list[str]):
    """Yield ``records`` in the order of ``paths``, each as soon as the ones before it are out.

    Even one worker can report a file's failure in the same poll as the clip ahead of it, and the engine
    yields failures at once but clips after their forward pass.
    """
    waiting: dict[str, list[dict]] = {}
    next_index = 0
    for record in records:
        waiting.setdefault(record["path"], []).append(record)
        while next_index < len(paths) and waiting.get(paths[next_index]):
            yield waiting[paths[next_index]].pop(0)
            next_index += 1
