"""The classify stage: one record per video file, in the order given, one clip per forward pass."""
from __future__ import annotations

from vidlstm.batch.engine import EngineOptions, predict_in_order
from vidlstm.errors import UsageError
from vidlstm.inference import Predictor, make_annotator


def classify_paths(predictor: Predictor, paths, top_k: int = 5, backends=None, min_score: float = 0.0,
                   explain_dir=None, workers: int = 1, exact_frames: bool = False, early=None):
    """Yield one record per path, in order; a file that fails yields an error record and the rest go on.

    The batch engine of `vidlstm predict` with one clip per forward pass, so records come out in the order
    of ``paths``. By default one worker process decodes: a decoder that aborts (decord does, with
    std::bad_alloc, on some damaged AVIs) or hangs then costs that file, not the run. ``workers=0``
    decodes in this process, ~0.5 s sooner to start, without that guard. A record whose best score
    is below ``min_score`` is labelled "unknown" (its top-k still says what the model saw); with
    ``explain_dir``, each ok record also gets an explanation (attention JSON + PNG strip) written there.
    Each segment contributes the frame that makes the clip cheapest to decode (keyframe-aware) unless ``exact_frames`` (the centre frame).
    ``early``: a vidlstm.batch.early.EarlyDecoding started on ``paths`` before the model loaded; the engine
    closes it once it runs, and the caller closes it if this raises first (vidlstm classify does, in ``finally``).
    """
    if top_k < 1:
        raise UsageError(f"--top-k must be >= 1 (got {top_k})")
    if workers < 0:
        raise UsageError(f"--workers must be >= 0 (got {workers})")
    annotate = make_annotator(predictor, min_score, explain_dir)

    # At most one worker: more would not help one clip per forward pass, only finish files out of order.
    options = EngineOptions(top_k=top_k, batch_size=1, workers=min(workers, 1),
                            backends=tuple(backends) if backends else None, exact_frames=exact_frames)
    yield from predict_in_order(predictor, paths, options, annotate=annotate, early=early)
