"""A loaded model ready for inference (Predictor): frames or features in, calibrated scores out."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidlstm.checkpoint import load_model, unfinished_note
from vidlstm.data.clips import Clip, load_clip, load_views
from vidlstm.data.stabilize import StreamStabilizer, stabilize
from vidlstm.data.transforms import frames_to_tensor
from vidlstm.defaults import default_model_dir, usable_device
from vidlstm.inference.records import build_record, top_k_labels
from vidlstm.logs import log as logger
from vidlstm.models.classifier import calibrated_softmax
from vidlstm.models.fold import fold_batch_norms
from vidlstm.models.temporal import leave_one_out_weights


@dataclass
class ClipScores:
    """What the model says about one clip."""

    probs: np.ndarray  # (C,) calibrated class probabilities
    attention: np.ndarray  # (T,) attention weight of each sampled frame (see ``weights``)
    step_probs: np.ndarray  # (T, C) per-time-step probabilities
    weights: str = "attention"  # what ``attention`` holds: "attention", or "leave-one-out" (a statistics read-out's)


class Predictor:
    """A loaded model ready for inference: eval mode, channels_last on CPU, inference_mode forward passes."""

    def __init__(self, model, device: str | torch.device = "cpu"):
        self.device = usable_device(device)
        self.model = model.to(self.device).eval()
        if self.device.type == "cpu":
            # measured: channels_last makes CPU convolutions several times faster
            self.model = self.model.to(memory_format=torch.channels_last)
        self.config = model.config
        self.labels = list(model.config.labels)
        self.pan_in_decoders: bool | None = None
        """Where a batch run undoes the pan of a model trained on stabilized clips: True in the decode workers, False
        here beside the model, None: ``decoders_stabilize``'s rule."""

    def decoders_stabilize(self) -> bool:
        """Whether batch runs (predict, classify, evaluate) should have the decode workers undo the camera's pan.

        Only models trained on stabilized clips need it. Off the CPU the model's process feeds the accelerator and
        its own CPU time per clip bounds the run: there the workers do it. On a CPU the decoders are what limits
        (decoding a clip costs 10-30 times stabilizing it), and the model's process has the slack: measured on 2 cores
        with cheap 3 s clips, stabilizing in the one decode worker made the run 12% slower, with two workers even,
        while it halved the model process's own time per file (benchmarks/bench_stabilize.py --predict).
        """
        if not self.config.stabilize:
            return False
        return self.device.type != "cpu" if self.pan_in_decoders is None else self.pan_in_decoders

    @classmethod
    def from_dir(cls, model_dir=None, device: str | None = None, fold: bool = True) -> "Predictor":
        """The model of ``model_dir`` (the shipped default if None); ``fold``: its batch norms folded where no
        tracing is needed (``fold_batch_norm(trace=False)``)."""
        model_dir = Path(model_dir) if model_dir else default_model_dir()
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        predictor = cls(load_model(model_dir, device="cpu"), device=device)
        unfinished = unfinished_note(model_dir)
        if unfinished:
            logger.warning(f"{model_dir}: a model {unfinished}")
        if fold:
            predictor.fold_batch_norm(trace=False)
        return predictor

    def fold_batch_norm(self, trace: bool = True) -> bool:
        """Fold the backbone's batch norms into its convolutions: same outputs (float rounding), fewer passes.

        Measured: EfficientNet-Lite0 at 224 px (a kept read-out's network), two threads, 47 -> 72 frames/s;
        resnet18 at 112 px on one thread, 45 -> 51 (models/fold.py). Where batch norms sit outside an
        nn.Sequential (resnet) folding them needs torch.fx tracing, ~0.2 s; ``trace=False`` (one-clip classify)
        leaves those. True if any batch norm was folded.
        """
        folded_any = False
        for model in (self.model, self.model.partner):
            if model is None:
                continue
            folded, count = fold_batch_norms(model.backbone, trace=trace)
            if count:
                model.backbone = folded.to(memory_format=torch.channels_last) if self.device.type == "cpu" else folded
                folded_any = True
        return folded_any

    def load_clip(self, path, backends=None, threads: int = 0, offset_fraction: float | None = None,
                  exact_frames: bool = False) -> Clip:
        """The clip the model sees; keyframe-snapped sampling unless ``exact_frames``, an ``offset_fraction``, or a
        model that is not to snap (``ModelConfig.snaps_to_keyframes``: a statistics read-out)."""
        return load_clip(path, self.config.num_frames, self.config.image_size, backends=backends,
                         threads=threads, offset_fraction=offset_fraction,
                         keyframe_snap=self.config.snaps_to_keyframes and not exact_frames)

    def load_views(self, path, backends=None, threads: int = 0) -> tuple[Clip, list[np.ndarray]]:
        """(the clip a record describes, the frames of every view ``score_views`` averages): one keyframe-snapped
        clip where the model scores one view, else its ``config.test_views`` views (data.clips.load_views)."""
        if self.config.test_views == 1:
            clip = self.load_clip(path, backends=backends, threads=threads)
            return clip, [clip.frames]
        return load_views(path, self.config.num_frames, self.config.image_size, self.config.test_views,
                          backends=backends, threads=threads)

    @torch.inference_mode()
    def score_frames(self, frames: list[np.ndarray], stabilized: bool = False) -> list[ClipScores]:
        """Score a batch of clips, each (T, H, W, 3) uint8 with the same T; one forward pass. A model trained on
        stabilized clips sees each clip stabilized (``config.stabilize``), here unless the decoder already did
        (``stabilized``: DecodeRequest.stabilize, in the decode workers)."""
        if self.config.stabilize and not stabilized:
            frames = [stabilize(f) for f in frames]
        x = torch.stack([frames_to_tensor(f) for f in frames]).to(self.device)  # (B, T, 3, H, W)
        with self._autocast():
            feats = self.model.encode_frames(x)  # (B, T, D)
            out = self.model.forward_features(feats)
            partner = self.model.partner_proba(x)  # (B, C), or None: the model has no partner
        scores = self._scores(out, feats)
        if partner is not None:  # the clip's label mixes both networks; its frame weights and steps are the model's
            mixed = self.model.with_partner(torch.from_numpy(np.stack([s.probs for s in scores])), partner.cpu())
            for s, probs in zip(scores, mixed.numpy()):
                s.probs = probs
        return scores

    def score_views(self, views: list[list[np.ndarray]], stabilized: bool = False) -> list[ClipScores]:
        """Score each video from its test-time views (``config.test_views`` clips, data.clips.load_views), all in
        one forward pass: the views' probabilities averaged; attention and per-step scores of the middle view,
        whose frames the record describes."""
        counts = [len(v) for v in views]
        flat = self.score_frames([frames for clip_views in views for frames in clip_views], stabilized=stabilized)
        out, start = [], 0
        for count in counts:
            mine = flat[start:start + count]
            middle = mine[count // 2]
            out.append(ClipScores(np.mean([s.probs for s in mine], axis=0) if count > 1 else middle.probs,
                                  middle.attention, middle.step_probs, middle.weights))
            start += count
        return out

    @torch.inference_mode()
    def encode_chunk(self, frames: np.ndarray, prev_frame: torch.Tensor | None = None,
                     pan: StreamStabilizer | None = None):
        """Backbone features of consecutive frames (t, H, W, 3) uint8 -> ((t, D) features, last frame).

        Pass the returned last frame as ``prev_frame`` of the next chunk: frame differences (and so the
        features) then come out as if the whole video had been encoded at once, in bounded memory. ``pan``
        (``stream_stabilizer()``, one per video) carries the camera's pan across chunks alike.
        """
        if pan is not None:
            frames = pan(frames)
        x = frames_to_tensor(frames).unsqueeze(0).to(self.device)  # (1, t, 3, H, W)
        with self._autocast():
            feats = self.model.encode_frames(x, prev_frame=prev_frame)  # (1, t, D)
        return feats[0].float(), x[:, -1]  # (t, D), (1, 3, H, W)

    def stream_stabilizer(self) -> StreamStabilizer | None:
        """A new ``encode_chunk(pan=...)`` state for one video, where the model sees stabilized clips; else None."""
        return StreamStabilizer() if self.config.stabilize else None

    @torch.inference_mode()
    def score_features(self, feats: torch.Tensor) -> ClipScores:
        """The temporal model and heads over one video's whole feature sequence (T, D)."""
        with self._autocast():
            out = self.model.forward_features(feats.unsqueeze(0))  # feats: (1, T, D)
        return self._scores(out, feats.unsqueeze(0))[0]

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.float16, enabled=self.device.type == "cuda")

    def _scores(self, out, feats: torch.Tensor) -> list[ClipScores]:
        temperature = self.config.temperature
        probs = calibrated_softmax(out.logits, temperature).cpu().numpy()  # (B, C)
        step = calibrated_softmax(out.step_logits, temperature).cpu().numpy()  # (B, T, C)
        weights = "attention"
        attention = out.attention
        if self.config.clip_head == "stats":  # the label is the read-out's: which frames it rests on
            model, weights = self.model, "leave-one-out"
            mask = torch.ones(feats.shape[:2], dtype=torch.bool, device=feats.device)
            attention = leave_one_out_weights(model.clip_stats, model.stats_classifier, feats.float(), mask,
                                              out.logits.float())
        attn = attention.float().cpu().numpy()  # (B, T)
        return [ClipScores(probs[i], attn[i], step[i], weights) for i in range(len(probs))]

    def top_k(self, probs: np.ndarray, k: int) -> list[dict]:
        return top_k_labels(probs, self.labels, k)

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
        return build_record(path, probs=probs, labels=self.labels, indices=indices, info=info, backend=backend,
                            top_k=top_k, seconds=seconds)
