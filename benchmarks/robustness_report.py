"""Robustness report: run the damaged-input corpus through `classify`, `predict` and `train`; print what happened.

Builds the corpus of tests/robustness (generated inputs, plus damaged copies of real videos from
../shared/data/videos when present), runs each command once over it as a user would (a fresh process,
killed if it runs past --timeout), and prints two Markdown tables:

  1. per input kind: how many inputs, and for each command how many came out ok / error / error because
     the decoder process crashed (train: trained on / listed as skipped / not mentioned at all);
  2. per run: exit code, files accounted for (a record, or listed as skipped) against inputs given,
     tracebacks, hangs, seconds.

  3. hostile inputs (benchmarks/robustness_hostile.py): lying metadata, absurd config.json, output files
     that are not ours, FIFO and symlinked outputs, odd file names, contradictory manifests.

    .venv/bin/python benchmarks/robustness_report.py [--no-real] [--hostile-only] [--keep DIR] [--timeout 600]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "robustness"))  # the corpus factory the tests use
sys.path.insert(0, str(REPO / "benchmarks"))

from damaged_inputs import (Input, can_make_unreadable_files, class_folders, generated_corpus,  # noqa: E402
                            real_corpus, unreadable_copy)
from robustness_hostile import print_hostile, run_hostile  # noqa: E402

SHARED_VIDEOS = REPO.parent / "shared" / "data" / "videos"
TRAINING = ("--frames", "4", "--image-size", "32", "--epochs", "1", "--views", "1", "--hidden-size", "16",
            "--val-fraction", "0", "--batch-size", "8", "--threads", "1", "--no-progress")
NOT_FILES = ("directory", "symlink-loop", "fifo")


def run_cli(args, timeout: float) -> dict:
    """`python -m vidlstm ARGS` in its own process group; the whole group is killed past ``timeout``."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "vidlstm", *map(str, args)], env=env, text=True,
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        out, err = proc.communicate(timeout=timeout)
        hung = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        hung = True
    return {"code": proc.returncode, "out": out, "err": err, "hung": hung,
            "seconds": time.perf_counter() - start, "traceback": "Traceback" in err}


def tiny_model(root: Path) -> Path:
    """An untrained vidnet model (32 px, 8 frames): decoding, not accuracy, is what is measured."""
    import torch

    from vidlstm.checkpoint import save_model
    from vidlstm.models import LRCN, ModelConfig

    torch.manual_seed(0)
    return save_model(root / "model", LRCN(ModelConfig(labels=["left", "right", "up"], backbone="vidnet",
                                                       image_size=32, num_frames=8)))


def outcomes_by_path(text: str) -> dict[str, str]:
    """path -> "ok" / "error" / "crash" (an error record saying the decoder process died) from JSON lines."""
    records = {}
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        crashed = record["status"] == "error" and "decoder crashed" in (record.get("error") or "")
        records[record["path"]] = "crash" if crashed else record["status"]
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-real", action="store_true", help="generated inputs only")
    parser.add_argument("--keep", metavar="DIR", default=None, help="build the corpus here and keep it")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before a run counts as hung")
    parser.add_argument("--hostile-only", action="store_true", help="only the hostile-input table")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vidlstm_robustness_") as scratch:
        root = Path(args.keep or scratch)
        root.mkdir(parents=True, exist_ok=True)
        if not args.hostile_only:
            runs, status, inputs = run_corpus(root, args)
            print_tables(inputs, status, runs)
        print_hostile(run_hostile(root / "hostile", tiny_model(root), run_cli, min(args.timeout, 120.0)))
    if args.keep:
        print(f"\ncorpus kept in {root}")
    return 0


def run_corpus(root: Path, args):
    """Build the corpus under ``root`` and run every command over it: (runs, outcomes per command, inputs)."""
    corpora = {"generated": generated_corpus(root / "generated")}
    if can_make_unreadable_files():  # root reads any file: the case only exists for other users
        healthy = corpora["generated"][0].path
        corpora["generated"].append(Input("unreadable", unreadable_copy(healthy, healthy.with_name("locked.mp4")),
                                          "generated"))
    if not args.no_real and SHARED_VIDEOS.is_dir():
        corpora["real"] = real_corpus(SHARED_VIDEOS, root / "real")
    inputs = [item for corpus in corpora.values() for item in corpus]
    model = tiny_model(root)

    runs: dict[str, dict] = {}
    status: dict[str, dict[str, str]] = defaultdict(dict)  # command -> path -> outcome
    runs["classify"] = run_cli(["classify", *[i.path for i in inputs], "--model", model, "--json",
                                "--threads", "1"], args.timeout)
    runs["classify"]["given"] = len(inputs)
    status["classify"] = outcomes_by_path(runs["classify"]["out"])

    predict_options = ["--model", model, "--workers", "1", "--threads", "1", "--no-progress"]
    preds = root / "preds.jsonl"
    runs["predict -r"] = run_cli(["predict", *[root / name for name in corpora], "-r", "-o", preds,
                                  *predict_options], args.timeout)
    runs["predict -r"]["given"] = sum(i.kind != "directory" for i in inputs)  # a folder is walked, not a file
    status["predict"] = outcomes_by_path(preds.read_text()) if preds.exists() else {}
    # The same folder without -r: the walk of one folder is a different code path (see the symlink loop).
    flat = root / "preds_flat.jsonl"
    runs["predict (flat folder)"] = run_cli(["predict", root / "generated", "-o", flat, *predict_options],
                                            args.timeout)
    runs["predict (flat folder)"]["given"] = sum(i.kind != "directory" for i in corpora["generated"])
    runs["predict (flat folder)"]["records"] = len(outcomes_by_path(flat.read_text())) if flat.exists() else 0

    for origin, corpus in corpora.items():  # one run each: the real corpus holds a decoder abort
        placed = class_folders(corpus, root / f"train_{origin}")
        name = f"train ({origin})"
        runs[name] = run_cli(["train", root / f"train_{origin}", "-o", root / f"run_{origin}", *TRAINING],
                             args.timeout)
        metrics_path = root / f"run_{origin}" / "model" / "metrics.json"
        skipped = set(json.loads(metrics_path.read_text())["skipped_files"]) if metrics_path.exists() else None
        runs[name]["given"] = len(placed)
        runs[name]["records"] = None if skipped is None else sum(
            rel in skipped or item.kind not in NOT_FILES for rel, item in placed.items())
        for rel, item in placed.items():
            original = next(i.path for i in corpus if i.path.name == item.path.name)
            if skipped is None:
                outcome = "crashed"
            elif rel in skipped:
                outcome = "skipped"
            else:
                outcome = "unlisted" if item.kind in NOT_FILES else "trained"
            status["train"][str(original)] = outcome

    return runs, status, inputs


def print_tables(inputs, status, runs) -> None:
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for item in inputs:
        groups[item.origin, item.kind].append(str(item.path))

    def tally(command: str, paths, names) -> str:
        counts = Counter(status[command].get(p, "no record") for p in paths)
        return " / ".join(str(counts[n]) for n in names) + (
            f" ({counts['no record']} no record)" if counts["no record"] else "") + (
            f" ({counts['crashed']} lost to a crash)" if counts["crashed"] else "")

    outcomes = {"classify": ("ok", "error", "crash"), "predict": ("ok", "error", "crash"),
                "train": ("trained", "skipped", "unlisted")}
    print("| origin | input kind | count | classify ok / error / decoder crash | predict -r ok / error / decoder "
          "crash | train trained / skipped / unlisted |")
    print("|---|---|---:|---|---|---|")
    every = [str(i.path) for i in inputs]
    for (origin, kind), paths in [*groups.items(), (("all", "all"), every)]:
        cells = " | ".join(tally(command, paths, names) for command, names in outcomes.items())
        print(f"| {origin} | {kind} | {len(paths)} | {cells} |")
    print("\n(`predict -r` walks into the folder named x.mp4 rather than reading it: no record is expected there.)")
    if not can_make_unreadable_files():
        print("(No unreadable file tried: this ran as root, who reads any file.)")

    print("\n| run | exit code | files accounted for / inputs | traceback | hung | seconds |")
    print("|---|---:|---|---|---|---:|")
    for name, run in runs.items():
        if name == "classify":
            records = len(status["classify"])
        elif name == "predict -r":
            records = len(status["predict"])
        else:
            records = run["records"] or 0
        print(f"| {name} | {run['code']} | {records} / {run['given']} | {'yes' if run['traceback'] else 'no'} | "
              f"{'yes' if run['hung'] else 'no'} | {run['seconds']:.1f} |")


if __name__ == "__main__":
    raise SystemExit(main())
