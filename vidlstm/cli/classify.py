"""`vidlstm classify FILE...`: print the top-k labels of each video (a table, or JSON lines with --json)."""
from __future__ import annotations

import json
import os
import sys

from vidlstm.cli.common import add_model_arguments, add_sampling_argument, positive_int
from vidlstm.errors import shown_name


def add_arguments(p):
    p.add_argument("files", nargs="+", metavar="FILE", help="video files")
    add_model_arguments(p)
    p.add_argument("--top-k", type=positive_int, default=3, help="labels to show per file (default 3)")
    p.add_argument("--json", action="store_true", help="one JSON record per line instead of a table")
    p.add_argument("--min-score", type=float, default=0.0, metavar="P",
                   help="label a clip 'unknown' when its best calibrated score is below P (default 0: always guess)")
    p.add_argument("--explain", metavar="DIR", default=None,
                   help="also write per video the weight of every frame (attention, or its share of a read-out's "
                        "score) and per-step scores (JSON) and a PNG strip into DIR")
    add_sampling_argument(p)
    p.add_argument("--workers", type=int, choices=(0, 1), default=1, metavar="N",
                   help="1 (default): decode in a worker process, so a decoder crash or hang costs one file; "
                        "0: decode in this process (starts ~0.5 s sooner, but a decoder crash ends the command)")


def format_record(rec: dict) -> str:
    """A readable block for one record: the file, then one line per top-k label."""
    if rec["status"] != "ok":
        return f"{shown_name(rec['path'])}\n    ERROR  {rec['error']}"
    head = f"{shown_name(rec['path'])}  ({rec['frames']} frames, {rec['decoder']}, {rec['seconds']:.2f} s)"
    if rec["top_k"] and rec["label"] != rec["top_k"][0]["label"]:  # below --min-score: "unknown", top-k as seen
        head += f"\n    -> {rec['label']} (best score {100 * rec['score']:.2f}% is below --min-score)"
    rows = [f"    {i}. {t['label']:<24} {100 * t['score']:6.2f}%" for i, t in enumerate(rec["top_k"], 1)]
    if rec.get("explanation"):
        rows.append(f"    explanation: {rec['explanation']}")
    return "\n".join([head, *rows])


def run(args) -> int:
    from vidlstm.batch.early import start_early_decoding

    # The decode worker starts before torch is imported (~2-3 s here) and decodes meanwhile.
    early = (start_early_decoding(args.model, args.files, exact_frames=args.exact_frames)
             if args.workers == 1 else None)
    try:
        from vidlstm.defaults import configure_torch_threads
        from vidlstm.inference import Predictor
        from vidlstm.stages.classify import classify_paths

        configure_torch_threads(args.threads)
        predictor = Predictor.from_dir(args.model, device=args.device)
        failed = 0
        records = classify_paths(predictor, args.files, top_k=args.top_k, min_score=args.min_score,
                                 explain_dir=args.explain, workers=args.workers, exact_frames=args.exact_frames,
                                 early=early)
        for rec in records:
            if rec["status"] != "ok":
                failed += 1
                hint = " (for the videos in a folder: vidlstm predict DIR -r -o OUT.jsonl)" \
                    if os.path.isdir(rec["path"]) else ""
                print(f"vidlstm classify: error: {shown_name(rec['path'])}: {rec['error']}{hint}", file=sys.stderr)
            print(json.dumps(rec, allow_nan=False) if args.json else format_record(rec), flush=True)
    finally:
        if early is not None:
            early.close()  # a no-op when the engine already closed it
    return 1 if failed else 0
