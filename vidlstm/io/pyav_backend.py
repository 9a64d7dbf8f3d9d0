"""PyAV backend: index the packets, seek to keyframes only where that skips work, decode and convert only wanted frames."""
from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

from vidlstm.io.backend_base import (
    BackendFailure,
    CutShort,
    DamagedStream,
    NoVideoStream,
    check_stream_length,
    unique_sorted_indices,
)
from vidlstm.io.info import VideoInfo
from vidlstm.io.pyav_frames import (
    NAME,  # noqa: F401 - the registry reads backend.NAME
    convert_frame,
    cut_short_reason,
    declared_frame_count,
    err_text,
    frame_rotation,
    make_info,
    stream_fps,
)
from vidlstm.io.quiet import quiet_pyav

quiet_pyav(av)  # our one-line reasons, not FFmpeg's log lines (VIDLSTM_DECODER_LOGS=1 keeps those)
# Seeking flushes the decoder (and its frame-thread pipeline); decoding a handful of frames forward is cheaper.
MIN_FRAMES_SKIPPED_BY_SEEK = 8
# Seeks that land after the target (odd indexes) are retried from earlier keyframes this many times.
MAX_SEEK_RETRIES = 3


class UnusableTimestamps(Exception):
    """Frame timestamps cannot name frames: missing, repeated, or out of order after decoding.

    AVI has no presentation timestamps: FFmpeg invents them from decode order, so H.264 B-frames
    come out of the decoder with timestamps 1, 2, 4, 3, 6, 5, ...
    """


@dataclass(frozen=True)
class PacketIndex:
    """Presentation timestamps of every frame-carrying packet, in presentation order, and the keyframes among them."""

    pts: np.ndarray  # (N,) int64, strictly increasing, in stream.time_base
    keyframes: np.ndarray  # (K,) int64 frame indices into ``pts``, increasing
    reordered: bool = False  # every packet states a real pts (not AVI's made-up ones) and decode order differs from it
    cut_short: str | None = None  # cut_short_reason: the file ends inside the data its container lists


def probe(path, threads: int = 0) -> VideoInfo:
    """Container metadata plus the rotation of the first frame (the only frame decoded)."""
    return _probe(path, threads, count_frames=True)


def stream_tags(path) -> tuple[str, int, int, int]:
    """(codec, clockwise rotation, upright width, upright height) for backends that cannot tell (decord)."""
    info = _probe(path, threads=1, count_frames=False)
    return info.codec, info.rotation, info.width, info.height


def _probe(path, threads: int, count_frames: bool) -> VideoInfo:
    container, stream = open_video(path, threads)
    with container:
        try:
            rotation = frame_rotation(next(container.decode(stream)))
        except StopIteration:
            raise BackendFailure("no decodable frame") from None
        except av.error.FFmpegError as err:
            raise DamagedStream(f"decoder rejected the first frame ({err_text(err)})") from None
        num_frames = 0
        if count_frames:
            num_frames = declared_frame_count(stream) or estimated_frame_count(container, stream)
        return make_info(path, stream, num_frames, rotation)


def read(path, indices, size, threads: int = 0, info: VideoInfo | None = None) -> tuple[np.ndarray, VideoInfo]:
    """Decode ``indices`` (any order, duplicates allowed) as (T, H, W, 3) uint8 RGB, upright, resized to ``size``."""
    container, stream = open_video(path, threads)
    with container:
        frames, rotation, num_frames = _read_open(container, stream, index_packets(container, stream), indices, size)
        return frames, info if info is not None else make_info(path, stream, num_frames, rotation)


def read_sampled(path, choose, size, threads: int = 0) -> tuple[np.ndarray, VideoInfo, np.ndarray]:
    """Open once, let ``choose(info, keyframes)`` pick the frame indices, decode them: (frames, info, indices).

    ``keyframes`` is the (K,) int64 keyframe positions from the packet index, or None where timestamps
    cannot name frames (then the frame count is the container's). Probing and reading separately would
    open and demux the file twice.
    """
    container, stream = open_video(path, threads)
    with container:
        index = index_packets(container, stream)
        if index is not None:
            num_frames, keyframes = len(index.pts), index.keyframes
        else:
            num_frames, keyframes = declared_frame_count(stream) or estimated_frame_count(container, stream), None
        if num_frames <= 0:
            raise BackendFailure("no frames")
        indices = np.asarray(choose(make_info(path, stream, num_frames, 0), keyframes), dtype=np.int64)  # (T,)
        frames, rotation, num_frames = _read_open(container, stream, index, indices, size)
        return frames, make_info(path, stream, num_frames, rotation), indices


def keyframe_positions(path) -> np.ndarray | None:
    """(K,) int64 presentation indices of the keyframes (from demuxing alone), or None where timestamps are unusable."""
    container, stream = open_video(path, 1)
    with container:
        index = index_packets(container, stream)
        return None if index is None else index.keyframes


def _read_open(container, stream, index: PacketIndex | None, indices, size):
    """(frames (T, H, W, 3), rotation, frame count) of ``indices`` from an open container."""
    wanted, inverse = unique_sorted_indices(indices)
    try:
        try:
            if index is None:
                raise UnusableTimestamps
            decoded, rotation = _decode_indexed(container, stream, index, wanted, size)
            num_frames = len(index.pts)
        except UnusableTimestamps:  # number frames as they come out of the decoder instead
            container.seek(0)
            decoded, rotation, num_frames = _decode_counting(container, stream, wanted, size)
    except BackendFailure:
        if index is None or index.cut_short is None:
            raise
        raise CutShort(index.cut_short) from None  # what the failure comes of
    frames = np.stack([decoded[i] for i in wanted])[inverse]  # (T, H, W, 3)
    return frames, rotation, num_frames


def open_video(path, threads: int):
    """Open the container and its first real video stream, with the decoder's thread count set."""
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise BackendFailure("unrecognized format") from None
    except av.error.FFmpegError as err:
        raise BackendFailure(err_text(err)) from None
    # Cover art in audio files shows up as a one-picture "video" stream; it is not a video.
    streams = [s for s in container.streams.video if not (int(s.disposition) & int(av.stream.Disposition.attached_pic))]
    if not streams:
        container.close()
        raise NoVideoStream("no video stream")
    stream = streams[0]
    if stream.codec_context is None:
        container.close()
        raise BackendFailure("no decoder for this codec")
    context = stream.codec_context
    context.thread_count = max(0, int(threads))  # 0 lets FFmpeg pick
    # Frame threading decodes several frames at once: faster, but pointless with one thread.
    context.thread_type = "SLICE" if threads == 1 else "AUTO"
    return container, stream


def index_packets(container, stream) -> PacketIndex | None:
    """Demux (not decode) the whole stream to learn each frame's timestamp and where the keyframes are.

    Demuxing a 60 s clip takes ~10 ms and makes frame indices exact (variable frame rate, B-frames,
    odd start times), which estimating timestamps from fps does not. None when timestamps are unusable.
    """
    timestamps, is_key, all_pts, last = [], [], True, None
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:  # flush packets and edit-list pre-roll yield no frame
                continue
            timestamp = packet.pts if packet.pts is not None else packet.dts
            if timestamp is None:
                return None  # the caller numbers frames by counting instead
            all_pts, last = all_pts and packet.pts is not None, packet
            timestamps.append(timestamp)
            is_key.append(packet.is_keyframe)
    except av.error.FFmpegError as err:
        raise DamagedStream(f"container unreadable after {len(timestamps)} packets ({err_text(err)})") from None
    if not timestamps:
        raise BackendFailure("no video packets")
    timestamps = np.asarray(timestamps, dtype=np.int64)
    order = np.argsort(timestamps, kind="stable")
    pts = timestamps[order]
    if np.any(np.diff(pts) <= 0):  # repeated timestamps: a timestamp no longer names one frame
        return None
    keyframes = np.nonzero(np.asarray(is_key, dtype=bool)[order])[0]
    if keyframes.size == 0 or keyframes[0] != 0:
        keyframes = np.concatenate([[0], keyframes])  # decoding always works from the very start
    # AVI states no presentation timestamps: FFmpeg's demuxer makes them up (even per packet, for packed
    # MPEG-4 B-frames), so decode order differing from them says nothing, and frames must come out in sequence.
    invented = container.format is not None and "avi" in container.format.name.split(",")
    reordered = all_pts and not invented and bool(np.any(np.diff(timestamps) < 0))
    return PacketIndex(pts=pts, keyframes=keyframes.astype(np.int64), reordered=reordered,
                       cut_short=cut_short_reason(container, stream, len(timestamps), last))


def _decode_indexed(container, stream, index: PacketIndex, wanted: np.ndarray, size):
    """Decode the wanted frames front to back, seeking to a keyframe whenever that skips enough frames."""
    in_stream_wanted = np.minimum(wanted, len(index.pts) - 1)
    walk = _IndexedWalk(container, stream, index, keep_pts=set(index.pts[in_stream_wanted].tolist()))
    decoded: dict[int, np.ndarray] = {}
    rotation = 0
    wanted_set = set(int(i) for i in wanted)
    stops = in_stream_wanted.tolist()  # non-decreasing, as ``wanted`` is sorted
    for k, target in enumerate(int(i) for i in wanted):
        in_stream = stops[k]  # the index is exact: later indices get the last frame
        if target in decoded or walk.ended or walk.position >= in_stream:
            frames = ()  # already walked past it (an index past the end, asked again)
        else:
            after = next((stop for stop in stops[k + 1:] if stop > in_stream), None)
            # Where the walk will not go on from here (the last frame wanted, or a seek comes next), nothing
            # after this frame's packet is needed: the decoder is drained instead of fed further packets.
            drain = after is None or _seek_pays_off(index.keyframes, in_stream, after)
            frames = walk.frames_up_to(in_stream, drain=drain)
        for position, frame in frames:
            if position in wanted_set and position not in decoded:
                rotation = frame_rotation(frame)
                decoded[position] = convert_frame(frame, size, rotation, position)
        if target not in decoded:  # past the real end: the last frame decoded stands in
            last_position, last_frame = walk.last
            if last_position not in decoded:
                rotation = frame_rotation(last_frame)
                decoded[last_position] = convert_frame(last_frame, size, rotation, last_position)
            decoded[target] = decoded[last_position]
    return decoded, rotation


class _IndexedWalk:
    """A forward walk through the decoded frames that seeks when a keyframe lets it skip ahead.

    Where the packets state real presentation timestamps (``index.reordered``), the decoder skips the
    non-reference frames it is not asked for (FFmpeg's skip_frame=NONREF, per packet): no other frame
    depends on them, so the kept frames come out bit-identical, and x264's default B-frames make that
    ~40% of the frames (measured: 30-37% less decoding CPU). Where timestamps are invented from decode
    order (AVI), a skipped frame would hide the reordering that tells the walk its numbers are wrong.
    """

    def __init__(self, container, stream, index: PacketIndex, keep_pts: set | None = None):
        self.container, self.stream, self.index = container, stream, index
        self.keep_pts = keep_pts if index.reordered else None
        self.frames = None  # the running decode iterator; None until the first seek
        self.drain_pts = None  # the pts after whose packet the decoder is drained, not fed (see frames_up_to)
        self.drained = False  # the running iterator drained the decoder: only a seek goes on from here
        self.position = -1  # presentation index of the frame the decoder produced last
        self.resumed = 0  # the keyframe the last seek went to: decoding resumed there
        self.decoded_since_seek = False
        self.last = None  # (position, frame) of the last frame decoded
        self.ended = False  # the decoder ran out of frames

    def frames_up_to(self, target: int, drain: bool = False):
        """Yield (position, frame) from wherever the walk resumes up to ``target`` (or the stream's end).

        ``drain``: the walk will not continue past ``target`` without a seek, so once the target's packet
        is in, the decoder gives up the frames it holds back for reordering (B-frames keep H.264 decoders
        1-2 frames behind their input) instead of decoding the next packets to push them out. The frames
        are the same; the packets after the target are not decoded (where timestamps are reordered).
        """
        self.drain_pts = int(self.index.pts[target]) if drain else None
        for retry in range(MAX_SEEK_RETRIES + 1):
            if self.frames is None or _seek_pays_off(self.index.keyframes, self.position, target):
                self._seek(_keyframe_before(self.index.keyframes, target, retry))
            for position, frame in self._continue(target):
                if position > target:
                    break  # only the first frame after a seek can overshoot: the seek went past the target
                yield position, frame
            else:
                if self.ended:
                    check_stream_length(self.last[0] + 1, len(self.index.pts))
                if not self.drained or self.position >= target:
                    return
                # Drained, and the target's packet gave no frame: retry from an earlier keyframe, as after an overshoot.
            self.frames = None  # retry from an earlier keyframe
        raise BackendFailure(f"cannot seek to frame {target}")

    def _seek(self, keyframe: int) -> None:
        self.container.seek(int(self.index.pts[keyframe]), stream=self.stream, backward=True)
        self.frames = _decode_from_here(self.container, self.stream, self.keep_pts, self)
        self.position, self.decoded_since_seek, self.ended, self.drained = -1, False, False, False
        self.resumed = keyframe

    def _continue(self, target: int):
        """Decode on until ``target``; each frame's position comes from its timestamp and must follow the last."""
        for frame in _checked(self.frames, lambda: self.position if self.position >= 0 else self.resumed - 1):
            if frame.pts is None:
                raise UnusableTimestamps
            position = _frame_index(self.index.pts, frame)
            if self.decoded_since_seek and (position <= self.position if self.keep_pts is not None
                                            else position != self.position + 1):
                raise UnusableTimestamps  # consecutive frames must have consecutive (skipping: increasing) timestamps
            self.decoded_since_seek = True
            self.position, self.last = position, (position, frame)
            yield position, frame
            if position >= target:
                return
        if self.drained:  # drained short of the target: frames_up_to retries after a fresh seek
            return
        self.ended = True
        if self.last is None:
            raise BackendFailure("no decodable frame")


def _decode_from_here(container, stream, keep_pts: set | None, walk: "_IndexedWalk"):
    """Frames decoded from the container's position; with ``keep_pts``, only those and reference frames.

    With ``keep_pts``, the packet whose pts is ``walk.drain_pts`` is the last one fed: the decoder is then
    drained of the frames it holds and the iterator ends with ``walk.drained`` set.
    """
    context = stream.codec_context
    context.skip_frame = "DEFAULT"
    if keep_pts is None:
        yield from container.decode(stream)
        return
    for packet in container.demux(stream):
        # Set per packet (frame threads copy it at submission): the wanted frames decode in full.
        context.skip_frame = "DEFAULT" if packet.size == 0 or packet.pts in keep_pts else "NONREF"
        yield from packet.decode()
        if walk.drain_pts is not None and packet.pts == walk.drain_pts:
            walk.drained = True
            yield from context.decode(None)  # a flush: the held-back frames, no more input
            return


def _decode_counting(container, stream, wanted: np.ndarray, size):
    """Decode from the start, numbering frames as they come (for streams without usable timestamps)."""
    wanted_set = set(int(i) for i in wanted)
    decoded: dict[int, np.ndarray] = {}
    rotation, position, last = 0, -1, None
    for frame in _checked(container.decode(stream), lambda: position):
        position += 1
        last = frame
        if position in wanted_set:
            rotation = frame_rotation(frame)
            decoded[position] = convert_frame(frame, size, rotation, position)
        if position >= wanted[-1]:
            break
    if last is None:
        raise BackendFailure("no decodable frame")
    missing = [int(i) for i in wanted if int(i) not in decoded]
    if missing:
        check_stream_length(position + 1, declared_frame_count(stream))
        rotation = frame_rotation(last)
        stand_in = convert_frame(last, size, rotation, position)
        decoded.update({i: stand_in for i in missing})
    num_frames = max(position + 1, declared_frame_count(stream))
    return decoded, rotation, num_frames


def _checked(frames, position):
    """Pass decoded frames through; a decoder error means damaged data (``position()``: the frame before it, or -1)."""
    iterator = iter(frames)
    while True:
        try:
            frame = next(iterator)
        except StopIteration:
            return
        except av.error.FFmpegError as err:
            where = f"after frame {position()}" if position() >= 0 else "before the first frame came out"
            raise DamagedStream(f"decoder rejected data {where} ({err_text(err)})") from None
        yield frame


def _seek_pays_off(keyframes: np.ndarray, position: int, target: int) -> bool:
    """Seek when going backwards, or when a keyframe lies far enough past the decoder's position."""
    if target <= position:
        return True
    nearest = keyframes[np.searchsorted(keyframes, target, side="right") - 1]  # last keyframe <= target
    return nearest - position > MIN_FRAMES_SKIPPED_BY_SEEK


def _keyframe_before(keyframes: np.ndarray, target: int, retries: int) -> int:
    """The keyframe to seek to for ``target``: the last one at or before it, one earlier per retry."""
    slot = np.searchsorted(keyframes, target, side="right") - 1 - retries
    return int(keyframes[max(slot, 0)])


def _frame_index(pts: np.ndarray, frame) -> int:
    """Presentation index of a decoded frame: where its timestamp sits in the packet index."""
    slot = int(np.searchsorted(pts, frame.pts))
    if slot == len(pts) or pts[slot] != frame.pts:
        raise UnusableTimestamps  # a frame the packets do not account for
    return slot


def estimated_frame_count(container, stream) -> int:
    """duration * fps where the container states a duration, otherwise a count of demuxed packets."""
    fps = stream_fps(stream)
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / av.time_base
    else:
        seconds = 0.0
    if seconds > 0:
        return max(int(round(seconds * fps)), 1)
    container.seek(0)
    index = index_packets(container, stream)
    return len(index.pts) if index is not None else sum(1 for _ in container.demux(stream))
