"""`vidlstm stream SOURCE`: classify a file, webcam or RTSP/HTTP stream as frames arrive; print label changes."""
from __future__ import annotations

import json

from vidlstm.cli.common import add_model_arguments, positive_int


def add_arguments(p):
    p.add_argument("source", metavar="SOURCE",
                   help="a video file (played as a stream), a webcam index (0, 1, ...) or an rtsp:// / http:// URL")
    add_model_arguments(p)
    p.add_argument("--chunk-frames", type=positive_int, default=8, metavar="N",
                   help="sampled frames per model call (default 8)")
    p.add_argument("--fps", type=float, default=8.0, metavar="F",
                   help="frames per second fed to the model (default 8; 0 = every frame)")
    p.add_argument("--smoothing", type=float, default=1.0, metavar="SECONDS",
                   help="time constant of the moving average of probabilities (default 1 s; 0 = none)")
    p.add_argument("--max-seconds", type=float, default=None, metavar="S",
                   help="stop after S seconds of stream (default: until the source ends or Ctrl-C)")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of text")


def format_event(event: dict) -> str:
    """A label change as `[  12.40 s] label (0.87)`; the end as a short summary."""
    if event["event"] == "label":
        return f"[{event['time']:8.2f} s] {event['label']} ({event['score']:.2f})"
    segments = ", ".join(f"{s['label']} {s['start']:.2f}-{s['end']:.2f} s" for s in event["segments"])
    ended = {"interrupt": "interrupted", "terminate": "terminated (SIGTERM)",
             "max_seconds": "stopped at --max-seconds"}.get(event.get("stopped_by"), "end of stream")
    read = f"{event['frames_read']} frame{'' if event['frames_read'] == 1 else 's'} read"
    return (f"{ended}, last frame classified at {event['time']:.2f} s: {read}, "
            f"{event['frames_used']} classified ({event['ms_per_frame']:.1f} ms per frame)\n"
            f"overall: {event['label']} ({event['score']:.2f}), by the {event['labelled_by']}\nsegments: {segments}")


def run(args) -> int:
    from vidlstm.defaults import configure_torch_threads
    from vidlstm.errors import UsageError
    from vidlstm.stages.stream import StreamConfig, stream_events

    if not args.source.strip():
        raise UsageError("SOURCE is empty: give a video file, a webcam index (0, 1, ...) or a URL")
    configure_torch_threads(args.threads)
    config = StreamConfig(source=args.source, model_dir=args.model, chunk_frames=args.chunk_frames, fps=args.fps,
                          smoothing=args.smoothing, max_seconds=args.max_seconds, device=args.device)
    stopped_by = None
    for event in stream_events(config):
        print(json.dumps(event) if args.json else format_event(event), flush=True)
        stopped_by = event.get("stopped_by")
    # The summary is printed either way; a supervisor that stopped it, or a Ctrl-C, sees the exit code of a signal.
    return {"interrupt": 130, "terminate": 143}.get(stopped_by, 0)
