"""The same vidlstm command from two source trees, alternated: wall seconds per round and the ratio.

    git worktree add /tmp/old 9e5c710          # or: mkdir /tmp/old && git archive 9e5c710 | tar -x -C /tmp/old
    .venv/bin/python benchmarks/ab_trees.py /tmp/old . --rounds 2 -- \\
        extract FIGHT.csv --cache {out} --backbone efficientnet_lite0 --pretrained --input-mode rgb \\
        --frames 16 --image-size 224 --views 1 --no-progress -q

Each run gets a fresh empty ``{out}`` folder (its cache or output; a file path inside it for predict, e.g.
``-o {out}/p.jsonl``), so nothing carries over between runs; the trees run in turn (old, new, old, new ...)
so machine noise falls on both alike. Both run with this interpreter (its installed dependencies) and
``PYTHONPATH`` set to the tree, so only vidlstm's own code differs. Prints a markdown table.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(tree: Path, command: list[str], out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    argv = [sys.executable, "-m", "vidlstm", *(part.replace("{out}", str(out)) for part in command)]
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: some files failed, which the command reports and the run survives
        raise SystemExit(f"{tree}: exit code {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="source tree of the baseline (holds vidlstm/)")
    parser.add_argument("new", type=Path, help="source tree to compare")
    parser.add_argument("--rounds", type=int, default=2)
    argv = sys.argv[1:]
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        parser.error("give the vidlstm command after --  ({out}: a fresh folder per run)")
    args = parser.parse_args(argv[:argv.index("--")])
    command = argv[argv.index("--") + 1:]
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    times = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="vidlstm-ab-") as work:
        for _ in range(args.rounds):
            for name, tree in trees.items():
                times[name].append(run_once(tree, command, Path(work) / name))
    print(f"`vidlstm {' '.join(command)}`, {args.rounds} rounds alternated\n")
    print("| tree | seconds per run | best |\n|---|---|---:|")
    for name, tree in trees.items():
        print(f"| {name} ({tree}) | {' '.join(f'{t:.1f}' for t in times[name])} | {min(times[name]):.1f} |")
    print(f"\nold / new, best runs: {min(times['old']) / min(times['new']):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
