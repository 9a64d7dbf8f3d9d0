"""The inference engine of classify and predict: decoders feed clips, the CNN scores them in batches across videos."""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from vidlstm.batch.decode import (DecodedChunk, DecodedClip, DecodedTimeline, DecodeRequest, build_requests,
                                  decode_request)
from vidlstm.batch.events import Failed, Finished, Piece
from vidlstm.batch.inline import InlineDecoder
from vidlstm.batch.pool import DecodePool
from vidlstm.batch.timeline import steps_to_segments
from vidlstm.data.clips import Clip
from vidlstm.inference import Predictor, error_record, in_given_order

THUMBNAIL_SIZE = 64  # px: timeline frames kept for an --explain strip (bounded memory at any length)


@dataclass
class EngineOptions:
    """How files flow through decoding and the model."""

    top_k: int = 5
    """Labels per record."""
    batch_size: int = 4
    """Clips per forward pass (clips of different videos are batched together)."""
    workers: int = 1
    """Decode processes; 0 decodes in this process (no start-up cost, but no crash or hang isolation)."""
    timeout: float = 60.0
    """Seconds a decoder may go without delivering anything before it is killed and its file failed."""
    timeline_fps: float | None = None
    """Sample the whole video at this rate and add labelled segments (None: one clip per file)."""
    chunk_frames: int = 64
    """Timeline frames decoded and encoded at a time: bounds memory for any video length."""
    backends: tuple[str, ...] | None = None
    """Decoder backends to try, in order (None: vidlstm.io's default chain)."""
    exact_frames: bool = False
    """Take each segment's centre frame; False (default): the frame that makes the clip cheapest to decode."""


@dataclass
class EngineStats:
    """Where the time went: the CNN (main process) versus waiting for decoders."""

    frames_encoded: int = 0
    cnn_seconds: float = 0.0
    wait_seconds: float = 0.0
    decode_cpu_seconds: float = 0.0  # CPU time the decoders spent (a thread's, so it ignores other load)
    workers_replaced: int = 0


@dataclass
class _Timeline:
    """Features of one video's timeline so far, and the last frame for continuous frame differences."""

    feats: list
    prev_frame: object = None
    thumbnails: list | None = None  # small copies of the frames, kept only for an explanation (--explain)
    pan: object = None  # the camera's pan so far (Predictor.stream_stabilizer), where the decoder left it to us


def predict_records(predictor: Predictor, paths, options: EngineOptions, decode_fn=decode_request,
                    stats: EngineStats | None = None, annotate=None, early=None, source=None) -> Iterator[dict]:
    """Yield one record per path as files complete (in order when ``workers == 0``); failures become error records.

    ``annotate(record, clip, scores)``, if given, may add to each ok clip record before it is yielded
    (classify uses it for --min-score and --explain, which need the frames and scores records do not keep).
    ``early`` (vidlstm.batch.early.EarlyDecoding): a pool already decoding ``paths``, started before the
    model loaded; used when its requests are the ones built here (same sampling), else closed.
    ``source``: a started decode source (a DecodePool) to use and leave open, so a long-lived caller (a Ray
    actor) keeps one decode worker across calls instead of starting one per call.
    """
    stats = stats if stats is not None else EngineStats()
    config = predictor.config
    requests = build_requests(list(paths), config.num_frames, config.image_size, workers=options.workers,
                              timeline_fps=options.timeline_fps, chunk_frames=options.chunk_frames,
                              backends=options.backends, exact_frames=options.exact_frames,
                              stabilize=predictor.decoders_stabilize(), views=config.test_views,
                              snap=config.snaps_to_keyframes)
    keep_open = source is not None
    if keep_open:
        submitted = False
        if early is not None:
            early.close()
    elif early is not None and early.requests == requests and decode_fn is decode_request:
        source, submitted = early.source, True  # already decoding these paths since before the model loaded
    else:
        if early is not None:
            early.close()  # it samples differently from this model: start afresh
        source, submitted = (InlineDecoder(decode_fn) if options.workers == 0
                             else DecodePool(options.workers, options.timeout, decode_fn)), False
    batch: list[tuple[DecodeRequest, DecodedClip]] = []
    timelines: dict[int, _Timeline] = {}
    delivered: set[int] = set()  # files whose clip or timeline arrived; any other that finishes gets an error
    keep = bool(getattr(annotate, "needs_frames", False))  # an explanation's strip shows timeline frames
    with contextlib.nullcontext(source) if keep_open else source:
        if not submitted:
            source.submit(requests)
        while source.unfinished or batch:
            start = time.perf_counter()
            events = source.poll(block=not batch)
            if not batch:
                stats.wait_seconds += time.perf_counter() - start
            for event in events:
                request = event.request
                if isinstance(event, Failed):
                    timelines.pop(request.task_id, None)
                    yield error_record(request.path, event.reason, event.seconds)
                elif isinstance(event, Piece) and isinstance(event.value, DecodedClip):
                    stats.decode_cpu_seconds += event.value.cpu_seconds
                    delivered.add(request.task_id)
                    batch.append((request, event.value))
                elif isinstance(event, Piece) and isinstance(event.value, DecodedChunk):
                    timeline = timelines.get(request.task_id)
                    if timeline is None:  # the video's first chunk
                        timeline = timelines[request.task_id] = _Timeline(
                            [], thumbnails=[] if keep else None,
                            pan=None if event.value.stabilized else predictor.stream_stabilizer())
                    _encode_chunk(predictor, timeline, event.value, stats)
                elif isinstance(event, Piece) and isinstance(event.value, DecodedTimeline):
                    stats.decode_cpu_seconds += event.value.cpu_seconds
                    delivered.add(request.task_id)
                    yield _timeline_record(predictor, request, timelines.pop(request.task_id, None), event.value,
                                           options.top_k, annotate)
                elif isinstance(event, Finished) and request.task_id not in delivered:
                    timelines.pop(request.task_id, None)
                    yield error_record(request.path, "the decoder returned no frames", 0.0)
            # Score a full batch; score a partial one rather than sit idle while decoders work.
            if batch and (len(batch) >= options.batch_size or not events or not source.unfinished):
                yield from _score_batch(predictor, batch, options.top_k, stats, annotate)
                batch = []
    stats.workers_replaced = source.replaced


def predict_in_order(predictor: Predictor, paths, options: EngineOptions, annotate=None, early=None) -> Iterator[dict]:
    """``predict_records`` with the records in the order of ``paths`` (classify and the Python API)."""
    paths = [str(p) for p in paths]
    yield from in_given_order(predict_records(predictor, paths, options, annotate=annotate, early=early), paths)


def _score_batch(predictor: Predictor, batch, top_k: int, stats: EngineStats, annotate=None):
    start = time.perf_counter()
    views = [decoded.views or [decoded.clip.frames] for _, decoded in batch]
    scores = predictor.score_views(views, stabilized=all(decoded.stabilized for _, decoded in batch))
    cnn = time.perf_counter() - start
    stats.cnn_seconds += cnn
    stats.frames_encoded += sum(len(view) for clip_views in views for view in clip_views)
    for (request, decoded), clip_scores in zip(batch, scores):
        # A file's cost: its own decoding plus its share of the batched forward pass.
        seconds = decoded.seconds + cnn / len(batch)
        record = predictor.record(request.path, decoded.clip, clip_scores, top_k, seconds)
        if annotate is not None:
            annotate(record, decoded.clip, clip_scores)
        yield record


def _encode_chunk(predictor: Predictor, timeline: _Timeline, chunk: DecodedChunk, stats: EngineStats) -> None:
    start = time.perf_counter()
    feats, timeline.prev_frame = predictor.encode_chunk(chunk.frames, timeline.prev_frame, timeline.pan)  # (t, D)
    timeline.feats.append(feats)
    if timeline.thumbnails is not None:
        step = -(-chunk.frames.shape[1] // THUMBNAIL_SIZE)  # ceil: at most THUMBNAIL_SIZE px a side
        timeline.thumbnails.append(chunk.frames[:, ::step, ::step].copy())  # (t, h, w, 3)
    stats.cnn_seconds += time.perf_counter() - start
    stats.frames_encoded += len(chunk.frames)


def _timeline_record(predictor: Predictor, request: DecodeRequest, timeline: _Timeline | None,
                     done: DecodedTimeline, top_k: int, annotate=None) -> dict:
    """The record of a whole-video pass: clip label from all steps, plus labelled segments."""
    import torch

    if timeline is None or not timeline.feats:
        return error_record(request.path, "no frames decoded", done.seconds)
    feats = torch.cat(timeline.feats)  # (T, D)
    scores = predictor.score_features(feats)
    record = predictor.make_record(request.path, probs=scores.probs, indices=done.indices, info=done.info,
                                   backend=done.backend, top_k=top_k, seconds=done.seconds)
    if record["status"] != "ok":
        return record
    fps = done.info.fps if done.info.fps and done.info.fps > 0 else 25.0
    timestamps = np.asarray(done.indices, dtype=np.float64) / fps  # (T,)
    record["segments"] = steps_to_segments(scores.step_probs, timestamps, predictor.labels, done.info.duration)
    if annotate is not None:  # --min-score and --explain apply to a timeline's clip label as to a clip's
        frames = np.concatenate(timeline.thumbnails) if timeline.thumbnails else None
        annotate(record, Clip(frames, np.asarray(done.indices), done.info, done.backend, "timeline"), scores)
    return record
