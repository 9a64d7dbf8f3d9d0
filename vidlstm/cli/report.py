"""`vidlstm report RUN_OR_PREDICTIONS -o report.html`: one self-contained HTML page (metrics, plots, strips)."""
from __future__ import annotations

import sys

from vidlstm.cli.common import positive_int


def add_arguments(p):
    p.add_argument("source", metavar="RUN_OR_PREDICTIONS",
                   help="a training run folder, an evaluate output folder, a predict .jsonl/.csv file, or a model "
                        "folder on its own (a run's model/ is reported with its run)")
    p.add_argument("-o", "--output", default="report.html", metavar="HTML", help="output file (default report.html)")
    p.add_argument("--explanations", action="append", default=[], metavar="DIR",
                   help="folder of classify/predict --explain output (repeatable; an explanations/ folder "
                        "beside the source is always used)")
    p.add_argument("--title", default=None, help="page title")
    p.add_argument("--max-rows", type=positive_int, default=2000, help="files listed at most (default 2000)")
    p.add_argument("--max-strips", type=int, default=50, help="explanation strips embedded at most (default 50)")


def run(args) -> int:
    from vidlstm.stages.report import ReportConfig, run as build_report

    warnings: list[str] = []
    out = build_report(ReportConfig(source=args.source, output=args.output, explanations=args.explanations,
                                    title=args.title, max_rows=args.max_rows, max_strips=args.max_strips), warnings)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} kB)")
    for warning in warnings:  # the page is written, but without something of its source: as merge's "incomplete"
        print(f"vidlstm report: warning: {warning}", file=sys.stderr)
    return 1 if warnings else 0
