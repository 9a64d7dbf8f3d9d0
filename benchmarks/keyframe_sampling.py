"""Prototype for the benchmarks: sample the keyframe nearest each segment's centre, decode only those frames.

Not used by vidlstm itself (yet). Segment sampling at evaluation takes each segment's centre frame;
training draws a random frame inside each segment, so any frame of a segment is a fair sample. A
keyframe decodes on its own, while an arbitrary frame needs every frame since the previous keyframe:
with keyframes every 2 s this cuts decoding CPU several times (bench_decode.py). A segment without a
keyframe falls back to its centre frame, decoded from the keyframe before it.
"""
from __future__ import annotations

import time

import numpy as np


def snap_to_keyframes(num_frames: int, num_segments: int, keyframes) -> list[int]:
    """Per segment, the keyframe nearest its centre when the segment holds one, else the centre frame."""
    keyframes = np.asarray(sorted(keyframes))
    edges = np.arange(num_segments + 1) * num_frames / num_segments
    picked = []
    for start, end in zip(edges[:-1], edges[1:]):
        inside = keyframes[(keyframes >= start) & (keyframes < end)]
        centre = (start + end) / 2
        picked.append(int(inside[np.argmin(np.abs(inside - centre))]) if len(inside) else int(centre))
    return picked


def read_keyframe_snapped(path: str, num_segments: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames (T, size, size, 3) uint8 RGB, frame indices (T,)) with PyAV, one thread.

    Keyframes come from the packet index (demuxing reads the file but decodes nothing); then one seek
    per wanted frame, and decoding stops at the first frame at or past it.
    """
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        rate, base = float(stream.average_rate or 25), float(stream.time_base)
        first_pts = stream.start_time or 0
        keys = [p.pts for p in container.demux(stream) if p.is_keyframe and p.pts is not None]
        num_frames = stream.frames or int(round(float(container.duration or 0) / 1e6 * rate))
        wanted = snap_to_keyframes(num_frames, num_segments, [int(round((k - first_pts) * base * rate)) for k in keys])
        frames = []
        for index in wanted:
            target = first_pts + int(round(index / rate / base))
            container.seek(target, stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if frame.pts is not None and frame.pts + 1 >= target:
                    frames.append(frame.to_ndarray(width=size, height=size, format="rgb24"))
                    break
        return np.stack(frames), np.asarray(wanted)


def decode_request_keyframes(request):
    """A drop-in decode function for vidlstm's batch engine (clip mode) using keyframe-snapped sampling."""
    from vidlstm.batch.decode import DecodedClip
    from vidlstm.data.clips import Clip
    from vidlstm.io import probe

    start, start_cpu = time.perf_counter(), time.process_time()
    info = probe(request.path, backends=("pyav",), threads=1)
    frames, indices = read_keyframe_snapped(request.path, request.num_frames, request.image_size)
    yield DecodedClip(Clip(frames=frames, indices=indices, info=info, backend="pyav-keyframes"),
                      time.perf_counter() - start, time.process_time() - start_cpu)
