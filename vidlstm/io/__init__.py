"""Video decoding: probe a file, read chosen frames through a fallback chain of backends, sample frame indices."""
from vidlstm.io.info import DecodeResult, VideoInfo
from vidlstm.io.reader import keyframe_positions, probe, read_frames, read_sampled
from vidlstm.io.registry import DEFAULT_BACKENDS, available_backends

__all__ = ["DEFAULT_BACKENDS", "DecodeResult", "VideoInfo", "available_backends", "keyframe_positions", "probe",
           "read_frames", "read_sampled"]
