"""`predict --engine ray` on a local 2-CPU Ray cluster: the local engine's records, errors, kills survived."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batch.predict_helpers import assert_same_records
from vidlstm.batch.records import read_records
from vidlstm.cli import main
from vidlstm.stages.predict import PredictConfig, run

ROOT = Path(__file__).resolve().parents[2]


def _clips(make_video, count: int, broken: bool = True) -> Path:
    paths = [make_video(f"v{i:02d}.mp4", num_frames=12, seed=i) for i in range(count)]
    if broken:
        (paths[0].parent / "broken.mp4").write_bytes(b"\x00" * 200)
    return paths[0].parent


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_records_equal_a_local_run_and_a_broken_file_gets_its_error_record(ray_cluster, make_video,
                                                                               tiny_model_dir, tmp_path):
    folder = _clips(make_video, 5)
    local, on_ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    run(PredictConfig([str(folder)], str(local), model_dir=str(tiny_model_dir), workers=1, progress=False))
    summary = run(PredictConfig([str(folder)], str(on_ray), model_dir=str(tiny_model_dir), engine="ray", workers=2,
                                batch_size=2, progress=False))
    assert (summary.ok, summary.failed, summary.files) == (5, 1, 6)
    expected, got = read_records(local), read_records(on_ray)
    assert_same_records(got, expected)
    assert [list(r) for r in got] == [list(r) for r in expected]  # same fields in the same order
    broken = next(r for r in got if r["path"].endswith("broken.mp4"))
    assert broken["status"] == "error" and "broken.mp4" not in broken["error"] and broken["error"]
    again = run(PredictConfig([str(folder)], str(on_ray), model_dir=str(tiny_model_dir), engine="ray",
                              progress=False))
    assert (again.skipped, again.ok, again.failed) == (6, 0, 0)  # resumable: nothing left to do


@pytest.mark.slow
def test_an_actor_killed_mid_run_costs_no_file(ray_cluster, make_video, tiny_model_dir, tmp_path):
    from vidlstm.batch.engine import EngineOptions
    from vidlstm.batch.ray_engine import ray_records
    from batch import ray_faults

    ray_cluster.cloudpickle.register_pickle_by_value(ray_faults)  # Ray's workers cannot import tests/

    folder = _clips(make_video, 6, broken=False)
    paths = sorted(str(p) for p in folder.glob("*.mp4"))
    marker = tmp_path / "killed-once"
    ray_faults.ActorThatDiesOnce.marker = str(marker)
    records = list(ray_records(paths, EngineOptions(top_k=2, batch_size=1), model_dir=tiny_model_dir,
                               actors=2, actor_cls=ray_faults.ActorThatDiesOnce))
    assert marker.exists()  # an actor did die, by SIGKILL, in the middle of a batch
    assert sorted(r["path"] for r in records) == paths and all(r["status"] == "ok" for r in records)


@pytest.mark.slow
def test_driver_killed_then_rerun_gives_one_record_per_file(ray_cluster, make_video, tiny_model_dir, tmp_path):
    folder = _clips(make_video, 16, broken=False)
    out = tmp_path / "preds.jsonl"
    address = ray_cluster.get_runtime_context().gcs_address
    cmd = [sys.executable, "-m", "vidlstm", "predict", str(folder), "-o", str(out), "--model", str(tiny_model_dir),
           "--engine", "ray", "--address", address, "--workers", "1", "--batch-size", "1", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while first.poll() is None and time.monotonic() < deadline:
        if out.exists() and out.read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    written = out.read_bytes().count(b"\n") if out.exists() else 0
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    records = read_records(out)
    assert sorted(r["path"] for r in records) == sorted(str(p) for p in folder.glob("*.mp4"))
    assert all(r["status"] == "ok" for r in records) and 0 < written


def test_engine_ray_without_ray_says_how_to_install_it(monkeypatch, make_video, tiny_model_dir, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as where it is not installed
    code = main(["predict", str(make_video()), "-o", str(tmp_path / "p.jsonl"), "--model", str(tiny_model_dir),
                 "--engine", "ray"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "pip install 'vidlstm[ray]'" in err
    assert not (tmp_path / "p.jsonl").exists()


def test_a_run_with_nothing_left_to_do_starts_no_cluster(monkeypatch, make_video, tiny_model_dir, tmp_path, capsys):
    """A finished run resumed with --engine ray started a local cluster (about 10 s) to compute no record."""
    pytest.importorskip("ray")
    from vidlstm.batch import ray_engine

    video, out = make_video(), tmp_path / "p.jsonl"
    assert main(["predict", str(video), "-o", str(out), "--model", str(tiny_model_dir), "--workers", "0"]) == 0

    def no_cluster(address=None):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(ray_engine, "connect", no_cluster)
    capsys.readouterr()
    assert main(["predict", str(video), "-o", str(out), "--model", str(tiny_model_dir), "--engine", "ray"]) == 0
    assert capsys.readouterr().out.startswith("0 ok, 0 failed, 1 skipped (already in the output) in ")


def test_a_cluster_that_cannot_be_joined_is_one_line_not_a_hang_or_a_traceback(monkeypatch):
    ray = pytest.importorskip("ray")
    from vidlstm.batch import ray_engine
    from vidlstm.errors import UsageError

    with pytest.raises(UsageError, match=r"--address 127.0.0.1:1: no Ray cluster answers there \(.*\); start one "
                                         r"with `ray start --head`"):
        ray_engine._check_reachable("127.0.0.1:1", timeout=2.0)
    with pytest.raises(UsageError, match="--address nowhere: expected HOST:PORT"):
        ray_engine._check_reachable("nowhere")

    def no_cluster(**kwargs):
        raise ConnectionError("Could not find any running Ray instance. Please specify the one to connect to.")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    with pytest.raises(UsageError, match=r"--address auto: cannot join a Ray cluster \(Could not find any running"):
        ray_engine.connect("auto")
