"""Run the vidlstm CLI as a user would, with a hang guard, and check what it printed and wrote.

In this process (``run_in_process``: no torch start-up, seconds per run) where decoding happens in worker
processes anyway (classify, predict), so a decoder crash cannot take pytest down; as a subprocess in its
own process group (``run_vidlstm``) where the command decodes in-process (train) or is to be killed.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from damaged_inputs import expected_status

REPO = Path(__file__).resolve().parents[2]
# Generous: the slowest case (train on 2 shared cores) takes ~20 s; a hang is what runs past this.
HANG_SECONDS = 240
# Training options that make a run take seconds: decoding every input is under test here, not learning.
# (--val-fraction 0 also makes the default backbone, auto, train vidnet alone.)
TINY_TRAINING = ("--frames", "4", "--image-size", "32", "--epochs", "1", "--views", "1", "--hidden-size", "16",
                 "--val-fraction", "0", "--batch-size", "8", "--threads", "1", "--no-progress")


@dataclass
class Run:
    """What a vidlstm command did: exit code and its whole stdout / stderr as the user would see them."""

    code: int
    out: str
    err: str


def subprocess_env() -> dict:
    # One thread per library: the suite shares 2 cores with everyone; the repo first, as in a checkout.
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", VIDLSTM_TEST_THREADS="1")


def vidlstm_command(*args) -> list[str]:
    return [sys.executable, "-m", "vidlstm", *map(str, args)]


def run_vidlstm(*args, timeout: float = HANG_SECONDS) -> Run:
    """Run ``python -m vidlstm ARGS`` in its own process group; past ``timeout`` s the whole group is killed
    (decode workers and fork server included) and the test fails as a hang."""
    proc = subprocess.Popen(vidlstm_command(*args), env=subprocess_env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        pytest.fail(f"vidlstm {' '.join(map(str, args[:1]))} hung (> {timeout:g} s); stderr tail: {err[-2000:]}")
    return Run(proc.returncode, out, err)


def run_in_process(capfd, *args, timeout: float = HANG_SECONDS) -> Run:
    """``vidlstm ARGS`` through ``vidlstm.cli.main`` in a thread of this process, output captured at the file
    descriptors (so FFmpeg's own writes count too), warnings appended to stderr as Python prints them. An
    exception escaping main() is what a user would see as a traceback, and fails the test; so does running
    past ``timeout`` s (the thread is left behind)."""
    from vidlstm.cli import main

    outcome: dict = {}

    def target():
        # pytest records warnings instead of printing them; a user's terminal shows them on stderr.
        with warnings.catch_warnings(record=True) as caught:
            _python_default_warning_filters()
            try:
                outcome["code"] = main([str(a) for a in args])
            except SystemExit as exit_:  # argparse's usage errors
                outcome["code"] = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
            except BaseException as err:  # noqa: BLE001 - whatever escapes is the finding
                outcome["error"] = err
        outcome["warnings"] = "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line)
                                      for w in caught)

    capfd.readouterr()  # only this run's output
    thread = threading.Thread(target=target, name=f"vidlstm {args[0]}", daemon=True)
    thread.start()
    thread.join(timeout)
    out, err = capfd.readouterr()
    if thread.is_alive():
        pytest.fail(f"vidlstm {args[0]} hung (> {timeout:g} s); stderr tail: {err[-2000:]}")
    if "error" in outcome:
        raise AssertionError(f"vidlstm {args[0]} let {type(outcome['error']).__name__} escape: a traceback "
                             f"for the user") from outcome["error"]
    return Run(outcome["code"], out, err + outcome["warnings"])


def _python_default_warning_filters() -> None:
    """The warning filters of a plain `python` process (what the `vidlstm` command runs with)."""
    warnings.simplefilter("default")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.filterwarnings("ignore", category=category)


def start_vidlstm(*args) -> subprocess.Popen:
    """Start ``python -m vidlstm ARGS`` in its own process group, output discarded (for kill -9 tests)."""
    return subprocess.Popen(vidlstm_command(*args), env=subprocess_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)


def kill_group(proc: subprocess.Popen) -> None:
    """kill -9 the process and everything it started (its own session), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def assert_no_traceback(run: Run) -> None:
    assert "Traceback" not in run.err, run.err[-3000:]
    assert "Traceback" not in run.out, run.out[-3000:]


def json_lines(text: str) -> list[dict]:
    """Every line of ``text`` as JSON: with --json / .jsonl, anything else on those lines is a defect."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def check_records(records: list[dict], inputs, labels, num_frames: int | None) -> None:
    """One record per input, in the order given; ok records carry a label (and the model's frame count,
    unless ``num_frames`` is None), error records a one-line reason; the kinds with a known outcome have it."""
    assert [r["path"] for r in records] == [str(i.path) for i in inputs]
    for record, item in zip(records, inputs):
        where = f"{item.kind} input {item.path.name}: {record}"
        assert record["status"] in ("ok", "error"), where
        if record["status"] == "ok":
            assert record["label"] in labels and 0.0 < record["score"] <= 1.0, where
            assert (record["frames"] == num_frames) if num_frames else (record["frames"] >= 1), where
        else:
            reason = record["error"]
            assert reason and "\n" not in reason and len(reason) < 500 and "Traceback" not in reason, where
        expected = expected_status(item.kind)
        assert expected in (None, record["status"]), where


def one_error_line(run: Run, command: str) -> str:
    """Exit code 2 and exactly one line on stderr, vidlstm's own; returns that line."""
    lines = run.err.strip().splitlines()
    assert run.code == 2, run.err[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"vidlstm {command}: error: "), run.err[-2000:]
    return lines[0]
