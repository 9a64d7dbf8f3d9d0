"""Settings a run takes from its data when the user leaves them unset: frames per clip from the clips' lengths."""
from __future__ import annotations

import numpy as np

from vidlstm.errors import VideoDecodeError
from vidlstm.io import probe

MIN_AUTO_FRAMES, MAX_AUTO_FRAMES = 4, 16
PROBED_CLIPS = 32  # evenly spaced over the data set: enough for a median, cheap (demuxing only)


def auto_num_frames(paths: list, probe_fn=probe) -> tuple[int, dict]:
    """(frames per clip, a note of how it was chosen) for clips at ``paths``.

    Half the frames of the median clip, so that segment sampling still has a choice of frame in every
    segment (temporal jitter) and never repeats a frame, within [4, 16]: 16 for anything of a second or
    more at 30 fps. More frames let the LSTM follow a path traced in the air (8 were too few there);
    past 16 the CNN cost grows while what the clips of a few seconds show does not.
    """
    picked = [paths[int(i)] for i in np.unique(np.linspace(0, len(paths) - 1, min(PROBED_CLIPS, len(paths))).round())] \
        if paths else []
    counts = []
    for path in picked:
        try:
            counts.append(int(probe_fn(path, backends=("pyav",)).num_frames))
        except (VideoDecodeError, OSError, ValueError):
            continue  # training will report the file; the others decide
    if not counts:
        return MAX_AUTO_FRAMES, {"rule": "no clip could be probed: the maximum", "num_frames": MAX_AUTO_FRAMES}
    median = float(np.median(counts))
    frames = int(min(MAX_AUTO_FRAMES, max(MIN_AUTO_FRAMES, median // 2)))
    return frames, {"rule": "half the median clip's frames, within [4, 16]", "median_clip_frames": median,
                    "probed_clips": len(counts), "num_frames": frames}
