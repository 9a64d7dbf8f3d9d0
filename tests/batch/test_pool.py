"""The decode pool: a crashing, hanging or failing decoder costs only its own file; workers are replaced."""
from __future__ import annotations

import time

import pytest

from fault_decoders import fake_decode
from vidlstm.batch.decode import DecodeRequest
from vidlstm.batch.events import Failed, Finished, Piece
from vidlstm.batch.inline import InlineDecoder
from vidlstm.batch.pool import DecodePool


def _requests(names):
    return [DecodeRequest(i, f"/videos/{name}", 8, 32) for i, name in enumerate(names)]


def _drain(source, requests):
    source.submit(requests)
    events = []
    while source.unfinished:
        events.extend(source.poll(block=True))
    return events


def _outcome(events):
    """path -> "ok" / failure reason, checking each file ends exactly once."""
    outcome = {}
    for ev in events:
        if isinstance(ev, (Finished, Failed)):
            assert ev.request.path not in outcome, f"{ev.request.path} ended twice"
            outcome[ev.request.path] = "ok" if isinstance(ev, Finished) else ev.reason
    return outcome


@pytest.mark.slow
def test_crash_hang_and_exit_cost_only_their_own_file():
    names = ["a.mp4", "crash.mp4", "b.mp4", "hang.mp4", "c.mp4", "exit.mp4", "broken.mp4", "d.mp4"]
    with DecodePool(workers=2, timeout=1.5, decode_fn=fake_decode) as pool:
        start = time.monotonic()
        events = _drain(pool, _requests(names))
        elapsed = time.monotonic() - start
        assert pool.replaced == 3  # crash, hang and exit each cost one worker
    outcome = _outcome(events)
    assert outcome == {
        "/videos/a.mp4": "ok", "/videos/b.mp4": "ok", "/videos/c.mp4": "ok", "/videos/d.mp4": "ok",
        "/videos/crash.mp4": "decoder crashed (signal 11, SIGSEGV)",
        "/videos/hang.mp4": "timed out after 1.5 s",
        "/videos/exit.mp4": "decoder process exited unexpectedly (exit code 3)",
        "/videos/broken.mp4": "cannot decode (test: broken on purpose)",
    }
    pieces = {ev.request.path: ev.value for ev in events if isinstance(ev, Piece)}
    assert pieces["/videos/d.mp4"] == "piece:d.mp4"
    assert elapsed < 15  # the hang was cut at its timeout, not waited out


@pytest.mark.parametrize("timeout", [30, 1e300])  # 1e300: past what poll() can wait, so never
def test_pool_delivers_every_file_once_with_one_worker(timeout):
    names = [f"v{i}.mp4" for i in range(12)]
    with DecodePool(workers=1, timeout=timeout, decode_fn=fake_decode) as pool:
        outcome = _outcome(_drain(pool, _requests(names)))
    assert outcome == {f"/videos/{n}": "ok" for n in names}


def test_workers_start_with_spawn_where_the_fork_server_cannot_start(monkeypatch, capsys):
    import multiprocessing.forkserver

    def refused(self):
        raise PermissionError(13, "Permission denied", "/tmp/pymp-x/listener")
    monkeypatch.setattr(multiprocessing.forkserver.ForkServer, "ensure_running", refused)
    names = ["a.mp4", "broken.mp4", "b.mp4"]
    with DecodePool(workers=2, timeout=30, decode_fn=fake_decode) as pool:
        outcome = _outcome(_drain(pool, _requests(names)))
    assert outcome == {"/videos/a.mp4": "ok", "/videos/b.mp4": "ok",
                       "/videos/broken.mp4": "cannot decode (test: broken on purpose)"}
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: decode workers cannot start through a fork server "
                        "([Errno 13] Permission denied: '/tmp/pymp-x/listener'); starting them with spawn"]


def test_inline_decoder_reports_failures_and_keeps_order():
    names = ["a.mp4", "broken.mp4", "b.mp4"]
    events = _drain(InlineDecoder(fake_decode), _requests(names))
    kinds = [(type(ev).__name__, ev.request.path.rsplit("/", 1)[1]) for ev in events]
    assert kinds == [("Piece", "a.mp4"), ("Finished", "a.mp4"), ("Failed", "broken.mp4"),
                     ("Piece", "b.mp4"), ("Finished", "b.mp4")]


_ABORT_RUN = """
import sys
sys.path.insert(0, {folder!r})
from fault_decoders import fake_decode
from vidlstm.batch.decode import DecodeRequest
from vidlstm.batch.pool import DecodePool
with DecodePool(workers=1, timeout=30, decode_fn=fake_decode) as pool:
    pool.submit([DecodeRequest(0, "/videos/abort.mp4", 8, 32), DecodeRequest(1, "/videos/ok.mp4", 8, 32)])
    reasons = []
    while pool.unfinished:
        reasons += [getattr(ev, "reason", "ok") for ev in pool.poll(block=True) if not hasattr(ev, "value")]
print(reasons)
"""


@pytest.mark.parametrize("logs_wanted", [False, True])
def test_what_a_dying_worker_prints_stays_off_stderr_unless_asked(logs_wanted):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "VIDLSTM_DECODER_LOGS"}
    if logs_wanted:
        env["VIDLSTM_DECODER_LOGS"] = "1"
    run = subprocess.run([sys.executable, "-c", _ABORT_RUN.format(folder=str(Path(__file__).parent))],
                         capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "['decoder crashed (signal 6, SIGABRT)', 'ok']"
    assert ("std::bad_alloc" in run.stderr) == logs_wanted


def test_close_kills_a_stopped_worker_whose_fork_server_died():
    import os
    import signal
    from multiprocessing import forkserver

    def state(pid):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                return f.read().rsplit(b")", 1)[1].split()[0].decode()
        except OSError:
            return None  # gone

    pool = DecodePool(workers=1, timeout=30, decode_fn=fake_decode).start()
    worker = pool._slots[0].process.pid
    os.kill(worker, signal.SIGSTOP)  # a decoder stuck where no request reaches it
    os.kill(forkserver._forkserver._forkserver_pid, signal.SIGKILL)  # the fork server dies first (a second Ctrl-C)
    time.sleep(0.2)
    # Where nothing else holds its sentinel pipe, a worker whose fork server died reads as dead (return code 255).
    pool._slots[0].process.is_alive = lambda: False
    pool.close()
    deadline = time.monotonic() + 5
    while state(worker) not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state(worker) in (None, "Z")
    with DecodePool(workers=1, timeout=30, decode_fn=fake_decode) as again:  # a new fork server serves later runs
        assert _outcome(_drain(again, _requests(["a.mp4"]))) == {"/videos/a.mp4": "ok"}
