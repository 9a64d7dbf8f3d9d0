"""What a decode worker does with one file: probe, sample, read frames at model size (one clip, or timeline chunks)."""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Iterator

import numpy as np

from vidlstm.data.clips import Clip, load_clip, load_views
from vidlstm.limits import MAX_TIMELINE_FRAMES


@dataclass(frozen=True)
class DecodeRequest:
    """One file to decode; ``timeline_fps`` switches from one segment-sampled clip to fixed-fps chunks."""

    task_id: int
    path: str
    num_frames: int
    image_size: int
    timeline_fps: float | None = None
    chunk_frames: int = 64
    backends: tuple[str, ...] | None = None
    threads: int = 1
    keyframe_snap: bool = False  # clip mode: keyframe-aware sampling (data.clips.load_clip)
    offset_fraction: float | None = None  # clip mode: shift inside each segment (evaluate's test-time views)
    stabilize: bool = False  # undo the camera's pan here, in the worker (a model trained on stabilized clips)
    views: int = 1  # clip mode: the model's test-time views, all decoded in one read (data.clips.load_views)


@dataclass
class DecodedClip:
    """The sampled clip of one file, and the wall and CPU seconds its decoding took."""

    clip: Clip
    seconds: float
    cpu_seconds: float = 0.0
    stabilized: bool = False  # the clip's frames have the camera's pan undone (DecodeRequest.stabilize)
    views: list[np.ndarray] | None = None  # every test-time view's frames where the model scores several (``clip``
    # is then the middle one)


@dataclass
class DecodedChunk:
    """``frames`` (t, H, W, 3) uint8 of a timeline, in order; the next chunk continues where this one ends."""

    frames: np.ndarray
    indices: np.ndarray
    stabilized: bool = False  # the pan undone against every earlier chunk of the video (one StreamStabilizer)


@dataclass
class DecodedTimeline:
    """Sent after the last chunk: what the whole timeline covered."""

    info: object  # vidlstm.io.VideoInfo
    indices: np.ndarray  # (T,) every frame index sampled, in order
    backend: str
    seconds: float
    cpu_seconds: float = 0.0


def build_requests(paths: list[str], num_frames: int, image_size: int, *, workers: int,
                   timeline_fps: float | None = None, chunk_frames: int = 64, backends=None,
                   exact_frames: bool = False, stabilize: bool = False, views: int = 1,
                   snap: bool = True) -> list[DecodeRequest]:
    """One request per path (task ids 0..n-1); decoders in worker processes get one thread each, so
    workers plus the CNN never oversubscribe the cores (0: the calling process's own default). ``views`` > 1
    (a model's test_views) samples each video's views at their offsets, not keyframe-snapped; so does a model
    whose ``snaps_to_keyframes`` is False (``snap``), and ``exact_frames``."""
    threads = 1 if workers else 0
    backends = tuple(backends) if backends else None
    return [DecodeRequest(i, str(p), num_frames, image_size, timeline_fps, chunk_frames, backends, threads,
                          keyframe_snap=snap and not exact_frames, stabilize=stabilize, views=views)
            for i, p in enumerate(paths)]


def decode_request(request: DecodeRequest) -> Iterator[DecodedClip | DecodedChunk | DecodedTimeline]:
    """Decode ``request``; exceptions (VideoDecodeError, OSError ...) propagate and become the file's error record.

    With ``request.stabilize`` the camera's pan is undone here too (vidlstm.data.stabilize), in the worker instead
    of on the model process's critical path, where that process is what limits (``Predictor.decoders_stabilize``).
    """
    start, start_cpu = time.perf_counter(), time.process_time()
    if request.timeline_fps is None:
        views = None
        if request.views > 1:
            clip, views = load_views(request.path, request.num_frames, request.image_size, request.views,
                                     backends=request.backends, threads=request.threads)
        else:
            clip = load_clip(request.path, request.num_frames, request.image_size, backends=request.backends,
                             threads=request.threads, keyframe_snap=request.keyframe_snap,
                             offset_fraction=request.offset_fraction)
        if request.stabilize:
            from vidlstm.data.stabilize import stabilize

            views = views and [stabilize(view) for view in views]
            clip = replace(clip, frames=views[len(views) // 2] if views else stabilize(clip.frames))
        yield DecodedClip(clip, time.perf_counter() - start, time.process_time() - start_cpu, request.stabilize, views)
        return
    yield from _decode_timeline(request, start, start_cpu)


def timeline_indices(info, timeline_fps: float) -> np.ndarray:
    """(N,) frame indices a timeline looks at: ``timeline_fps`` of video time, but never more samples than the
    video has frames (a rate the metadata claims below the real one must not repeat 50 frames 300 000 times)
    nor more than ``MAX_TIMELINE_FRAMES`` (a longer video is summarised at a lower rate)."""
    from vidlstm.io.sampling import sample_fixed_fps_indices

    cap = max(1, min(info.num_frames, MAX_TIMELINE_FRAMES))
    return np.asarray(sample_fixed_fps_indices(info.num_frames, info.fps, timeline_fps, max_frames=cap))


def _decode_timeline(request: DecodeRequest, start: float, start_cpu: float):
    from vidlstm.io import read_frames, read_sampled

    size = (request.image_size, request.image_size)
    plan: dict = {}

    def first_chunk(info, keyframes) -> np.ndarray:
        # One open that counts the frames where the backend indexes packets: a container's duration or
        # frame count can claim 1000 hours of a 2-second file, its packets cannot.
        plan["indices"] = timeline_indices(info, request.timeline_fps)  # (T,)
        return plan["indices"][: request.chunk_frames]

    pan = None
    if request.stabilize:
        from vidlstm.data.stabilize import StreamStabilizer

        pan = StreamStabilizer()  # one per video: its chunks arrive here in order
    first = read_sampled(request.path, first_chunk, size=size, backends=request.backends, threads=request.threads)
    info, indices, backend = first.info, plan["indices"], first.backend
    yield DecodedChunk(pan(first.frames) if pan else first.frames, first.indices, request.stabilize)
    # Chunk by chunk so a 60-minute video never holds more than chunk_frames decoded frames here.
    for begin in range(request.chunk_frames, len(indices), request.chunk_frames):
        chunk = indices[begin:begin + request.chunk_frames]
        result = read_frames(request.path, chunk, size=size, info=info, backends=request.backends,
                             threads=request.threads)
        yield DecodedChunk(pan(result.frames) if pan else result.frames, chunk, request.stabilize)
    yield DecodedTimeline(info, indices, backend, time.perf_counter() - start, time.process_time() - start_cpu)

