"""Hostile inputs for benchmarks/robustness_report.py: metadata that lies, configs that are absurd, outputs that
are not ours. Each case runs one vidlstm command in a fresh process and is judged as a user would judge it.

A case passes when the command ends within the timeout, prints no traceback, exits as expected, and (for the
cases that must refuse) says so in one stderr line naming the file; the record checks are the tests' job
(tests/robustness/test_hostile_*.py), this table is what a person running the commands would see.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from damaged_inputs import encode_exact, moving_square_clip
from hostile_inputs import ABSURD_CONFIGS, foreign_lines, lying_containers, model_with_config


@dataclass
class Case:
    group: str
    name: str
    args: list
    expect: str  # "refused": exit 2 with one line naming ``names``; "records": exit 0/1 and a valid output
    names: str = ""  # what the one error line must contain
    output: Path | None = None
    records: int | None = None  # how many records the output must hold (one per file), where known


def build_cases(root: Path, model: Path) -> list[Case]:
    videos = root / "hostile_videos"
    for i in range(2):
        encode_exact(videos / f"c{i}.mp4", moving_square_clip(8, 32, 32, seed=i), pix_fmt="yuv420p")
    clip = videos / "c0.mp4"
    fast = ["--model", model, "--threads", "1", "--no-progress"]
    cases = []
    for kind, path in lying_containers(root / "lying").items():
        for mode in ("timeline", "clip"):
            out = root / f"lying_{kind}_{mode}.jsonl"
            flags = ["--timeline"] if mode == "timeline" else []
            cases.append(Case("lying metadata", f"{kind}, predict {mode}",
                              ["predict", path, "-o", out, *flags, *fast], "records", output=out, records=1))
    for kind, changes in ABSURD_CONFIGS.items():
        bad = model_with_config(model, root / f"model_{kind}", changes)
        cases.append(Case("absurd config.json", f"{kind}, classify",
                          ["classify", clip, "--json", "--model", bad, "--threads", "1"], "refused", "config.json"))
        cases.append(Case("absurd config.json", f"{kind}, predict",
                          ["predict", clip, "-o", root / f"cfg_{kind}.jsonl", "--model", bad, "--threads", "1",
                           "--no-progress"], "refused", "config.json"))
    for kind, line in foreign_lines(clip).items():
        for command in ("predict", "merge"):
            out = root / f"foreign_{kind}_{command}.jsonl"
            out.write_bytes(line)
            args = (["predict", videos, "-o", out, *fast] if command == "predict"
                    else ["merge", out, "-o", root / f"merged_{kind}.jsonl"])
            cases.append(Case("output not ours", f"{kind} line, {command}", args, "refused", f"{out.name}:1"))
    fifo = root / "fifo.jsonl"
    os.mkfifo(fifo)
    cases.append(Case("where outputs live", "FIFO as output, predict", ["predict", videos, "-o", fifo, *fast],
                      "refused", "FIFO"))
    target = root / "store" / "linked.jsonl"
    target.parent.mkdir()
    link = root / "link.jsonl"
    link.symlink_to(target)
    cases.append(Case("where outputs live", "symlinked output, predict", ["predict", videos, "-o", link, *fast],
                      "records", output=target, records=2))
    odd = videos.parent / "odd_names"
    odd.mkdir()
    shutil.copy(clip, os.fsdecode(os.fsencode(str(odd)) + b"/caf\xe9.mp4"))
    (odd / "two\nlines.mp4").write_bytes(b"not a video")
    out = root / "odd_names.jsonl"
    cases.append(Case("file names", "non-UTF-8 and newline names, predict", ["predict", odd, "-o", out, *fast],
                      "records", output=out, records=2))
    out = root / "spellings.jsonl"
    cases.append(Case("file names", "one file, two spellings, predict",
                      ["predict", clip, videos / ".." / videos.name / "c0.mp4", "-o", out, *fast], "records",
                      output=out, records=1))
    manifest = root / "conflict.csv"
    manifest.write_text(f"path,label\n{clip},left\n{videos / 'c1.mp4'},right\n{clip},right\n")
    cases.append(Case("manifests", "one path under two labels, evaluate",
                      ["evaluate", manifest, "--model", model, "-o", root / "ev", "--no-progress"], "refused",
                      "conflict.csv"))
    cases.extend(_user_files_cases(root, model, videos, fast))
    cases.extend(_user_folders_cases(root, model, videos))
    return cases


def _user_folders_cases(root: Path, model: Path, videos: Path) -> list[Case]:
    """Folders of the user's named as a command's output (session 33): their files were replaced without a word."""
    data = root / "two_classes"
    for label in ("a", "b"):
        (data / label).mkdir(parents=True)
        for i in range(2):
            shutil.copy(videos / f"c{i}.mp4", data / label / f"{label}{i}.mp4")
    notes = root / "my_notes"  # train wrote its model card over the user's README.md
    notes.mkdir()
    (notes / "README.md").write_text("my notes")
    results = root / "my_results"  # evaluate wrote over the user's predictions.csv
    results.mkdir()
    (results / "predictions.csv").write_text("mine\n")
    return [Case("user folders named as outputs", "a folder of notes as --model-out, train",
                 ["train", data, "-o", root / "run", "--backbone", "vidnet", "--epochs", "1", "--model-out", notes],
                 "refused", notes.name),
            Case("user folders named as outputs", "a folder holding the user's predictions.csv, evaluate",
                 ["evaluate", data, "--model", model, "-o", results, "--no-progress"], "refused", results.name)]


def _user_files_cases(root: Path, model: Path, videos: Path, fast: list) -> list[Case]:
    """Files of the user's where a command writes (session 32): each was replaced or deleted, or a traceback."""
    recipe = root / "latin1.toml"  # a recipe saved in Latin-1: a UnicodeDecodeError traceback
    recipe.write_bytes(b'[[steps]]\ncommand = "synth"\nargs = ["caf\xe9"]\n')
    mine = root / "my_data"  # a folder per class and a manifest of the user's clips: deleted as "an earlier set"
    (mine / "walk").mkdir(parents=True)
    shutil.copy(videos / "c0.mp4", mine / "walk" / "my_walk.mp4")
    (mine / "manifest.csv").write_text("path,label\nwalk/my_walk.mp4,walk\n")
    exported = root / "my_graphs"  # an encoder.onnx of the user's: replaced without a word
    exported.mkdir()
    (exported / "encoder.onnx").write_text("mine")
    theirs = root / "theirs.jsonl"  # another run's output, of other files: replaced by the merge, its records lost
    theirs.write_text(json.dumps({"path": "elsewhere.mp4", "status": "error", "error": "x"}) + "\n")
    part = root / "part.jsonl"
    part.write_text(json.dumps({"path": str(videos / "c0.mp4"), "status": "error", "error": "y"}) + "\n")
    return [Case("user files where a command writes", "a recipe that is not UTF-8, run", ["run", recipe], "refused",
                 recipe.name),
            Case("user files where a command writes", "a folder per class with its manifest, synth",
                 ["synth", mine, "--per-class", "1", "--size", "32"], "refused", mine.name),
            Case("user files where a command writes", "an encoder.onnx of the user's, export",
                 ["export", "--model", model, "-o", exported, "--no-verify", "--threads", "1"], "refused",
                 "encoder.onnx"),
            Case("user files where a command writes", "another run's output, merge", ["merge", part, "-o", theirs],
                 "refused", theirs.name)]


def judge(case: Case, run: dict) -> str:
    """"pass" or what went wrong, in a few words."""
    if run["hung"]:
        return "hung"
    if run["traceback"]:
        return "traceback"
    lines = run["err"].strip().splitlines()
    if case.expect == "refused":
        if run["code"] != 2:
            return f"exit {run['code']}, expected 2"
        if len(lines) != 1 or case.names not in lines[0]:
            return "not one line naming the file"
        return "pass"
    if run["code"] not in (0, 1):
        return f"exit {run['code']}"
    try:
        records = [json.loads(line) for line in case.output.read_text().splitlines()]
    except (OSError, ValueError):
        return "no valid output"
    if any(line.count("error:") > 1 for line in lines) or not records:
        return "no records"
    if case.records is not None and len(records) != case.records:
        return f"{len(records)} records, expected {case.records}"
    if any(r.get("status") == "ok" and r.get("frames", 0) > 50 for r in records):
        return "more frames than the video holds"
    return "pass"


def run_hostile(root: Path, model: Path, run_cli, timeout: float) -> list[tuple[Case, dict, str]]:
    rows = []
    for case in build_cases(root, model):
        run = run_cli(case.args, timeout)
        rows.append((case, run, judge(case, run)))
    return rows


def print_hostile(rows) -> None:
    print("\n| group | case | exit code | outcome | seconds |")
    print("|---|---|---:|---|---:|")
    for case, run, verdict in rows:
        print(f"| {case.group} | {case.name} | {run['code']} | {verdict} | {run['seconds']:.1f} |")
    passed = sum(verdict == "pass" for _, _, verdict in rows)
    print(f"\n{passed} of {len(rows)} hostile cases pass (no traceback, no hang, one line or valid records).")
