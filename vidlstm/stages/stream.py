"""The stream stage: classify a video file, webcam or RTSP/HTTP stream as frames arrive.

Frames are read in order (vidlstm.io.stream: files through the decoder chain, cameras and URLs with
OpenCV), subsampled to a fixed rate and encoded chunk by chunk (``encode_frames`` with the previous
chunk's last frame, so frame differences run on across chunks). What labels them is the model's own clip
read-out where it can stream:
- a model whose clip logits come from the BiLSTM (``clip_head`` "lstm" or "lstm+stats") streams through its
  causal head, ``LRCN.stream_step``, which carries the LSTM's (h, c) from chunk to chunk;
- a model whose clip logits are the statistics read-out alone (``clip_head = "stats"``, what
  ``train --backbone auto`` keeps when the pretrained family wins) is labelled by that read-out
  (``StatsReadout``, over ``LRCN.stats_stream``): each step by the statistics of the last ``num_frames``
  steps (a clip of the length it was trained on), the whole stream by running sums of every step. The
  overall label is then the one ``classify`` gives on the same frames, not an average of a weaker head's steps.
Either way the work per frame is the same at minute 1 and at hour 10, and nothing grows with the stream's length.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from vidlstm.errors import UsageError, VideoDecodeError
from vidlstm.inference import Predictor
from vidlstm.io.stream import StreamFrame, open_stream
from vidlstm.models import calibrated_softmax

__all__ = ["LabelTracker", "StatsReadout", "StepOutput", "StreamClassifier", "StreamConfig", "StreamFrame", "chunked",
           "stream_events", "stream_steps"]


@dataclass
class StreamConfig:
    """What `vidlstm stream` reads and how it classifies."""

    source: str  # a video file, a webcam index ("0") or a URL OpenCV opens (rtsp://, http://)
    model_dir: str | None = None  # None: the shipped default model
    chunk_frames: int = 8  # sampled frames per model call: latency vs. per-call overhead
    fps: float = 8.0  # frames per second fed to the model; 0 = every frame of the source
    smoothing: float = 1.0  # time constant (s) of the exponential moving average of probabilities; 0 = none
    max_seconds: float | None = None  # stop after this much stream time (live sources never end)
    device: str | None = None

    def __post_init__(self):
        if self.chunk_frames < 1:
            raise UsageError(f"--chunk-frames must be >= 1 (got {self.chunk_frames})")
        if not (math.isfinite(self.fps) and self.fps >= 0):
            raise UsageError(f"--fps must be a finite number >= 0 (got {self.fps})")
        if not (math.isfinite(self.smoothing) and self.smoothing >= 0):
            raise UsageError(f"--smoothing must be a finite number of seconds >= 0 (got {self.smoothing})")
        if self.max_seconds is not None and not self.max_seconds > 0:  # nan was ignored, -1 blamed the source
            raise UsageError(f"--max-seconds must be a number of seconds > 0 (got {self.max_seconds})")


@dataclass
class StepOutput:
    """The streaming read-out's output for one sampled frame."""

    index: int
    time: float
    logits: np.ndarray  # (C,) step logits (causal head, or the read-out of the window ending here)
    probs: np.ndarray  # (C,) calibrated probabilities of this step alone


# --- the model --------------------------------------------------------------------------------------

class StatsReadout:
    """The statistics read-out (``clip_head = "stats"``) over a stream, in fixed memory: the model's ``StatsStream``
    (the same module ``vidlstm export`` writes as such a model's stream graph) with its state carried from chunk
    to chunk.

    ``add`` gives each step the read-out of the last ``window`` steps' features (fewer at the start): a sliding
    clip as long as the ones the model was trained on. ``whole_logits`` is the read-out of every step so far,
    from running float64 sums (count, sum, sum of squares, summed absolute change), so it equals the read-out
    of the whole feature sequence in one pass, as ``classify`` computes it.
    """

    def __init__(self, model, window: int):
        self.stream = model.stats_stream()
        self.width = max(int(window), 1)
        self.state = None  # (window (1, W, D), filled (1,), total, squares, change (1, D) float64, count (1,))
        self.logits = None  # (C,) the whole stream's read-out after the last chunk

    def add(self, feats: torch.Tensor) -> torch.Tensor:
        """Per-step logits (t, C) for the next features (t, D)."""
        if self.state is None:
            self.state = self.stream.initial_state(1, self.width, feats.shape[-1], device=feats.device)
        step_logits, logits, *self.state = self.stream(feats[None].to(self.state[0].dtype), *self.state)
        self.logits = logits[0]
        return step_logits[0]  # (t, C)

    def whole_logits(self) -> torch.Tensor | None:
        """Read-out logits (C,) of every step so far; None before the first."""
        return self.logits


class StreamClassifier:
    """Feeds chunks of consecutive sampled frames through the encoder and the model's streaming read-out.

    That read-out is the causal head (state: the LSTM's (h, c), (num_layers, 1, hidden)) or, for a model
    whose clip logits are its statistics read-out, ``StatsReadout`` (state: a window of features and
    running sums). The last frame (1, 3, H, W) carries frame differences across chunks. Fixed sizes.
    """

    def __init__(self, predictor: Predictor):
        model = predictor.model
        self.readout = (StatsReadout(model, predictor.config.num_frames)
                        if predictor.config.clip_head == "stats" else None)
        if self.readout is None and model.causal is None:
            raise UsageError("this model has no causal head (config causal_head is false): it cannot stream")
        self.predictor = predictor
        self.state = None  # (h, c) after the last chunk (causal head)
        self.last_frame = None  # (1, 3, H, W) the last frame of the last chunk
        self.pan = predictor.stream_stabilizer()  # the camera's pan so far, where the model sees stabilized clips
        self.model_seconds = 0.0  # time spent in the model, for the per-frame cost in the summary

    @property
    def source(self) -> str:
        """What labels the steps, for the summary."""
        return "statistics read-out" if self.readout is not None else "causal head"

    @torch.inference_mode()
    def feed(self, frames: list[StreamFrame]) -> list[StepOutput]:
        start = time.perf_counter()
        pixels = np.stack([f.rgb for f in frames])  # (t, H, W, 3)
        feats, self.last_frame = self.predictor.encode_chunk(pixels, self.last_frame, self.pan)  # (t, D)
        if self.readout is not None:
            logits = self.readout.add(feats).float()  # (t, C)
        else:
            logits, self.state = self.predictor.model.stream_step(feats[None], self.state)  # (1, t, C)
            logits = logits[0].float()  # (t, C)
        probs = calibrated_softmax(logits, self.predictor.config.temperature).cpu().numpy()  # (t, C)
        logits = logits.cpu().numpy()
        self.model_seconds += time.perf_counter() - start
        return [StepOutput(f.index, f.time, logits[i], probs[i]) for i, f in enumerate(frames)]

    @torch.inference_mode()
    def whole_stream_probs(self) -> np.ndarray | None:
        """Calibrated probabilities (C,) of the whole stream where the read-out can give them, else None."""
        logits = self.readout.whole_logits() if self.readout is not None else None
        if logits is None:
            return None
        return calibrated_softmax(logits.float(), self.predictor.config.temperature).cpu().numpy()


def chunked(frames, size: int) -> Iterator[list[StreamFrame]]:
    """Consecutive lists of ``size`` frames; the last may be shorter."""
    chunk: list[StreamFrame] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- what to report -------------------------------------------------------------------------------

@dataclass
class LabelTracker:
    """Smooths step probabilities (EMA with time constant ``smoothing`` s) and notices when the top label changes.

    Keeps only running sums and the list of label segments (one entry per change), so its memory
    does not grow with the number of frames.
    """

    labels: list[str]
    smoothing: float = 1.0
    smoothed: np.ndarray | None = None
    last_time: float | None = None
    prob_sum: np.ndarray | None = None
    steps: int = 0
    segments: list[dict] = field(default_factory=list)  # {"label", "start", "end"}

    def update(self, t: float, probs: np.ndarray) -> dict | None:
        """Add one step; return a "label" event when the smoothed top label changes (and on the first step)."""
        if self.smoothed is None:
            self.smoothed, self.prob_sum = probs.astype(np.float64), np.zeros(len(probs))
        else:
            dt = max(t - self.last_time, 0.0)
            alpha = 1.0 if self.smoothing == 0 else 1.0 - math.exp(-dt / self.smoothing)
            self.smoothed = (1 - alpha) * self.smoothed + alpha * probs
        self.last_time = t
        self.prob_sum += probs
        self.steps += 1
        top = int(np.argmax(self.smoothed))
        label = self.labels[top]
        if self.segments:
            self.segments[-1]["end"] = round(t, 3)
            if self.segments[-1]["label"] == label:
                return None
        self.segments.append({"label": label, "start": round(t, 3), "end": round(t, 3)})
        return {"event": "label", "time": round(t, 3), "label": label, "score": round(float(self.smoothed[top]), 4)}

    def overall(self) -> tuple[str | None, float | None]:
        """The top label of the mean step probabilities over the whole stream."""
        if not self.steps:
            return None, None
        mean = self.prob_sum / self.steps
        top = int(np.argmax(mean))
        return self.labels[top], round(float(mean[top]), 4)


# --- the stage ------------------------------------------------------------------------------------

def stream_steps(frames, classifier: StreamClassifier, chunk_frames: int,
                 max_seconds: float | None = None, stopped: list | None = None) -> Iterator[StepOutput]:
    """Per-step outputs for an iterable of frames, fed to the model ``chunk_frames`` at a time; where
    ``max_seconds`` stopped them, ``stopped`` gets a True."""
    if max_seconds is not None:
        frames = _until(frames, max_seconds, [] if stopped is None else stopped)
    for chunk in chunked(frames, chunk_frames):
        yield from classifier.feed(chunk)


def _until(frames, max_seconds: float, stopped: list) -> Iterator[StreamFrame]:
    """Frames up to ``max_seconds``; stops reading the source there (a live one never ends by itself)."""
    for frame in frames:
        if frame.time > max_seconds:
            stopped.append(True)
            return
        yield frame


def stream_events(config: StreamConfig) -> Iterator[dict]:
    """Yield a {"event": "label", ...} dict whenever the smoothed top label changes, then one {"event": "end", ...}.

    Ctrl-C (or the command line's SIGTERM) ends the stream early; the summary still comes, with "interrupted": true.
    ``"stopped_by"`` says what ended it: "end_of_source", "max_seconds", "interrupt" or "terminate" (SIGTERM);
    ``"time"`` is the last classified frame's.
    """
    predictor = Predictor.from_dir(config.model_dir, device=config.device)
    classifier = StreamClassifier(predictor)  # refuses a model without a causal head before opening anything
    sampler = open_stream(config.source, predictor.config.image_size, config.fps)
    tracker = LabelTracker(predictor.labels, config.smoothing)
    signalled, stopped = None, []  # signalled: "interrupt" or "terminate", where a signal ended it
    try:
        for step in stream_steps(sampler, classifier, config.chunk_frames, config.max_seconds, stopped):
            event = tracker.update(step.time, step.probs)
            if event is not None:
                yield event
    except KeyboardInterrupt as err:  # Ctrl-C; the command line's SIGTERM is a subclass of it
        signalled = "interrupt" if type(err) is KeyboardInterrupt else "terminate"
    finally:
        sampler.close()
    if tracker.steps == 0:
        raise VideoDecodeError(config.source, "no frames could be read")
    label, score = tracker.overall()
    whole = classifier.whole_stream_probs()
    if whole is not None:  # the read-out of the whole stream: what classify says on these frames
        top = int(np.argmax(whole))
        label, score = predictor.labels[top], round(float(whole[top]), 4)
    yield {"event": "end", "time": tracker.last_time, "frames_read": sampler.frames_read,
           "frames_used": tracker.steps, "label": label, "score": score, "labelled_by": classifier.source,
           "ms_per_frame": round(1000 * classifier.model_seconds / tracker.steps, 3),
           "segments": tracker.segments, "interrupted": signalled is not None,
           "stopped_by": signalled or ("max_seconds" if stopped else "end_of_source")}
