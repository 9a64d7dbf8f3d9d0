"""`vidlstm evaluate DATA --model DIR [-o OUT_DIR]`: accuracy, report, confusion matrix, per-file predictions."""
from __future__ import annotations

from vidlstm.cli.common import add_model_arguments, positive_int, whole_number
from vidlstm.limits import MODEL_INT_RANGES

_LOW, _HIGH = MODEL_INT_RANGES["test_views"]


def add_arguments(p):
    p.add_argument("data", metavar="DATA", help="a folder per class, or a CSV manifest")
    add_model_arguments(p)
    p.add_argument("-o", "--out", default="evaluation", metavar="OUT_DIR", help="output folder (default ./evaluation)")
    p.add_argument("--clips", type=whole_number("an integer", _LOW, _HIGH, bounds=f"from {_LOW} to {_HIGH}"),
                   default=None, help=f"temporal views averaged per video, {_LOW} to {_HIGH} (default: the model's "
                                      f"test views, 1 unless it was trained to average more)")
    p.add_argument("--top-k", type=positive_int, default=5,
                   help="classes listed per video in predictions.csv, and top-k accuracy in metrics.json (default 5)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="clips per forward pass (default 8)")
    p.add_argument("--split", default=None, metavar="SPLIT_JSON", help="a run's split.json: evaluate one subset of it")
    p.add_argument("--subset", choices=("val", "train"), default=None, help="with --split (default val)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="decode processes (default 1: a decoder crash or hang costs its file; 0 = decode in this "
                        "process, without that guard)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                   help="a decoder silent this long on one file is killed and the file fails (default 60)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")


def run(args) -> int:
    import json

    from vidlstm.defaults import configure_torch_threads
    from vidlstm.stages.evaluate import EvaluateConfig, run as evaluate

    configure_torch_threads(args.threads)
    out = evaluate(EvaluateConfig(data=args.data, model_dir=args.model, out_dir=args.out, clips=args.clips,
                                  top_k=args.top_k, batch_size=args.batch_size, split_file=args.split,
                                  subset=_subset(args), device=args.device, progress=not args.no_progress,
                                  workers=args.workers, timeout=args.timeout))
    m = json.loads((out / "metrics.json").read_text())
    if m["n"]:
        top_k = m[f"top{m['top_k']}_accuracy"]
        print(f"{m['n']} videos: accuracy {m['accuracy']:.4f}, top-{m['top_k']} {top_k:.4f}, "
              f"mean class accuracy {m['mean_class_accuracy']:.4f}, ECE {m['ece']:.4f}")
    print((out / "classification_report.txt").read_text().rstrip())
    print(f"wrote {out}/ (metrics.json, classification_report.txt, confusion_matrix.png, predictions.csv)")
    if m["failed"]:
        print(f"{m['failed']} video(s) could not be read or decoded (see predictions.csv)")
    return 1 if m["failed"] else 0


def _subset(args) -> str:
    """--subset applies to --split's subsets alone: given without it, it was silently ignored (every clip evaluated)."""
    if args.subset and not args.split:
        from vidlstm.errors import UsageError

        raise UsageError(f"--subset {args.subset} needs --split RUN/split.json (the run whose {args.subset} clips to "
                         f"evaluate)")
    return args.subset or "val"
