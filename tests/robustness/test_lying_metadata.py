"""Containers whose metadata lies (a 2-second clip claiming 46 or 1000 hours, an AVI at 1e-6 fps): a timeline
looks at no more frames than the video holds, in seconds, with a valid record; clip mode is unchanged."""
from __future__ import annotations

import pytest

from cli_runs import assert_no_traceback, json_lines, run_in_process
from hostile_inputs import LYING_CONTAINERS, lying_containers

pytestmark = pytest.mark.robustness


@pytest.fixture(scope="module")
def lying(tmp_path_factory):
    return lying_containers(tmp_path_factory.mktemp("lying"))


@pytest.mark.parametrize("kind", LYING_CONTAINERS)
@pytest.mark.parametrize("mode", ["--timeline", "clip"])
def test_lying_metadata_costs_no_more_than_the_real_frames(kind, mode, lying, tiny_model_dir, tmp_path, capfd):
    out = tmp_path / "t.jsonl"
    flags = ["--timeline"] if mode == "--timeline" else []
    run = run_in_process(capfd, "predict", lying[kind], "-o", out, *flags, "--model", tiny_model_dir,
                         "--workers", "1", "--threads", "1", "--no-progress", timeout=90)
    assert_no_traceback(run)
    assert run.code in (0, 1), run.err
    record, = json_lines(out.read_text())
    assert record["path"] == str(lying[kind])
    if record["status"] == "ok":
        assert 1 <= record["frames"] <= 50  # the clip holds 50 frames, whatever its header says
        if mode == "--timeline":
            assert record["segments"] and all(s["end"] >= s["start"] for s in record["segments"])
    else:
        assert "\n" not in record["error"]


def test_timeline_indices_are_capped_by_frames_and_the_stated_maximum():
    from vidlstm.batch.decode import timeline_indices
    from vidlstm.io.info import VideoInfo
    from vidlstm.limits import MAX_TIMELINE_FRAMES

    def info(frames, fps):
        return VideoInfo("x", frames, fps, frames / fps, 32, 32, 0, "h264", "pyav")

    assert len(timeline_indices(info(50, 50 / (46 * 3600)), 2.0)) == 50  # was 331 200: every frame 6600 times
    assert len(timeline_indices(info(90_000_000, 25.0), 2.0)) == MAX_TIMELINE_FRAMES  # a 1000 h claim
    assert len(timeline_indices(info(250, 25.0), 2.0)) == 20  # a normal 10 s video: 2 fps as asked
