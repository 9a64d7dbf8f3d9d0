"""`vidlstm predict PATH... -o OUT.{jsonl,csv}`: batch-classify files and directories, resumable, one record per file."""
from __future__ import annotations

import argparse
import math
import sys

from vidlstm.cli.common import add_model_arguments, add_sampling_argument, positive_int
from vidlstm.errors import shown_name


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def add_arguments(p):
    p.add_argument("paths", nargs="+", metavar="PATH", help="video files and/or directories")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="record file, .jsonl or .csv; re-running the same command resumes it")
    add_model_arguments(p, threads_default="on CPU, the cores the decode workers leave, at least one")
    p.add_argument("-r", "--recursive", action="store_true", help="also look in sub-directories")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="decode processes (default: sized from the model's CNN cost on CPU, all but one with a "
                        "GPU; 0 counts as 1: decoding always runs in a worker, so a crash or hang costs one file)")
    p.add_argument("--batch-size", type=positive_int, default=4, metavar="B", help="clips per forward pass (default 4)")
    p.add_argument("--timeout", type=positive_float, default=60.0, metavar="SECONDS",
                   help="a decoder silent this long on one file is killed and the file fails (default 60)")
    p.add_argument("--top-k", type=positive_int, default=5, help="labels kept per record (default 5)")
    p.add_argument("--timeline", action="store_true",
                   help="look at the whole video (at --timeline-fps) and add segments [{start, end, label, "
                        "score}]; the record's label is then the whole video's")
    p.add_argument("--timeline-fps", type=positive_float, default=None, metavar="FPS",
                   help="frames per second of video looked at with --timeline (default 2)")
    p.add_argument("--min-score", type=float, default=0.0, metavar="P",
                   help="label a clip 'unknown' when its best calibrated score is below P (default 0: always guess)")
    p.add_argument("--explain", metavar="DIR", default=None,
                   help="also write per video the weight of every frame (attention, or its share of a read-out's "
                        "score) and per-step scores (JSON) and a PNG strip into DIR")
    p.add_argument("--retry-errors", action="store_true",
                   help="process again the files whose earlier record in OUT is an error")
    p.add_argument("--shard", metavar="I/N", default=None,
                   help="process shard I of N (0-based) into OUT.partI-of-N.SUFFIX; under torchrun RANK/WORLD_SIZE "
                        "choose it; join the parts with `vidlstm merge`")
    p.add_argument("--backends", metavar="LIST", default=None,
                   help="decoders to try in order, e.g. pyav,decord,opencv (default: $VIDLSTM_BACKENDS or vidlstm.io's)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: decode workers on this machine (default); ray: Ray Data actors on a Ray cluster "
                        "(pip install 'vidlstm[ray]'), --workers then sets the actor count")
    p.add_argument("--address", metavar="ADDR", default=None,
                   help="with --engine ray: the cluster to join (e.g. auto, HOST:6379); default: a local one")
    add_sampling_argument(p, timeline=True)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from vidlstm.errors import UsageError
    from vidlstm.stages.predict import PredictConfig, run as run_predict

    if args.timeline_fps is not None and not args.timeline:
        raise UsageError("--timeline-fps is for --timeline (the rate at which a timeline looks at the video)")
    summary = run_predict(PredictConfig(
        inputs=args.paths, output=args.output, model_dir=args.model, device=args.device, recursive=args.recursive,
        workers=args.workers, batch_size=args.batch_size, timeout=args.timeout, top_k=args.top_k,
        timeline=args.timeline,
        timeline_fps=PredictConfig.timeline_fps if args.timeline_fps is None else args.timeline_fps,
        retry_errors=args.retry_errors,
        min_score=args.min_score, explain_dir=args.explain, shard=args.shard,
        threads=args.threads, progress=not args.no_progress,
        backends=tuple(args.backends.split(",")) if args.backends else None, exact_frames=args.exact_frames,
        engine=args.engine, address=args.address))
    if summary.repaired_bytes:
        print(f"vidlstm predict: warning: dropped a torn last line ({summary.repaired_bytes} bytes) of an "
              f"interrupted run in {summary.output}", file=sys.stderr)
    for path, reason in summary.failures:
        print(f"vidlstm predict: error: {shown_name(path)}: {reason}", file=sys.stderr)
    if summary.failed > len(summary.failures):
        print(f"vidlstm predict: ... and {summary.failed - len(summary.failures)} more errors in {summary.output}",
              file=sys.stderr)
    said = [summary.unsorted_reason] if summary.unsorted_reason else []
    if not summary.settings_kept:  # one line with the sort's reason where both come from a folder it cannot write
        said.append(("and " if said else "its folder cannot be written, so ") + "no settings file is kept beside it "
                    "(a later run into it with other settings or from another folder cannot be checked)")
    if said:
        print(f"vidlstm predict: warning: {summary.output}: {', '.join(said)}; every record is in it", file=sys.stderr)
    if summary.skipped_failed:  # the exit code is 1 for them: said on stderr too, where -q leaves it
        print(f"vidlstm predict: warning: {summary.skipped_failed} file(s) have error records from an earlier run in "
              f"{summary.output} (--retry-errors tries them again)", file=sys.stderr)
    done = summary.ok + summary.failed
    rate = done / summary.seconds if summary.seconds > 0 else 0.0
    skipped = f", {summary.skipped} skipped (already in the output"
    skipped += f", {summary.skipped_failed} of them errors)" if summary.skipped_failed else ")"
    if summary.changed:  # counted in ok/failed: their earlier records are replaced by this run's
        skipped += f", {summary.changed} classified again (changed since their records)"
    print(f"{summary.ok} ok, {summary.failed} failed{skipped} in {summary.seconds:.1f} s "
          f"({rate:.2f} files/s, {summary.workers} {'Ray actor' if args.engine == 'ray' else 'decode worker'}"
          f"{'' if summary.workers == 1 else 's'}) -> {summary.output}")
    return summary.exit_code
