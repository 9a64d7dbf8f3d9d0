"""`vidlstm merge PART... -o OUT`: join the part files of a sharded `vidlstm predict` run."""
from __future__ import annotations

import sys


def add_arguments(p):
    p.add_argument("parts", nargs="+", metavar="PART", help="part files (.jsonl or .csv) written by predict --shard")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="merged file, .jsonl or .csv")


def run(args) -> int:
    from vidlstm.stages.merge import MergeConfig, run as run_merge

    result = run_merge(MergeConfig(parts=args.parts, output=args.output))
    print(f"{result.records} records ({result.ok} ok, {result.failed} failed) from {result.parts} "
          f"part{'' if result.parts == 1 else 's'}, "
          f"{result.duplicates} duplicates dropped -> {result.output}")
    for part, first in result.repeated:
        named = "given twice" if part == first else f"the same file as {first}, given before it"
        print(f"vidlstm merge: warning: {part}: {named}; read once", file=sys.stderr)
    for part in result.unchecked:
        print(f"vidlstm merge: warning: {part}: no settings file beside it (.NAME.settings.json, hidden: copy it "
              f"with the part), so its model and settings were not checked against the other parts", file=sys.stderr)
    for part, cut in result.torn:
        print(f"vidlstm merge: error: incomplete: {part} ends in a record cut off ({cut} bytes), left out; re-run "
              f"that shard's predict command to finish it, then merge again", file=sys.stderr)
    if result.missing_parts:
        print(f"vidlstm merge: error: incomplete: missing {', '.join(result.missing_parts)}", file=sys.stderr)
    return 1 if result.missing_parts or result.torn else 0
