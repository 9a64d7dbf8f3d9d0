"""`vidlstm predict` over folders of damaged and odd inputs: one record per file, no traceback, no hang, exit 1."""
from __future__ import annotations

import os

import pytest

from cli_runs import assert_no_traceback, check_records, json_lines, run_in_process
from damaged_inputs import Input, encode_exact, moving_square_clip, symlink_loop

pytestmark = pytest.mark.robustness

LABELS = ("left", "right", "up")  # tiny_model_dir's
NUM_FRAMES = 8


def predict(capfd, model_dir, out, *inputs, extra=()):
    # In this process: decoding happens in the worker pool, which isolates crashes and times out hangs.
    run = run_in_process(capfd, "predict", *inputs, "-o", out, "--model", model_dir, "--workers", "1",
                         "--timeout", "60", "--batch-size", "2", "--threads", "1", "--no-progress", *extra)
    assert_no_traceback(run)
    return run


def check_predict_run(run, out, expected: list[Input], num_frames=NUM_FRAMES):
    """The output holds one record per expected file, sorted by path; stdout's summary adds up; exit 1."""
    assert run.code == 1, run.err[-2000:]  # some files failed, none stopped the run
    records = json_lines(out.read_text())
    check_records(records, sorted(expected, key=lambda i: str(i.path)), LABELS, num_frames)
    ok = sum(r["status"] == "ok" for r in records)
    assert run.out.strip().splitlines()[-1].startswith(f"{ok} ok, {len(records) - ok} failed, 0 skipped")


@pytest.mark.parametrize("mode", ["clip", "timeline"])
def test_recursive_folder_gives_every_damaged_file_one_record(damaged_corpus, tiny_model_dir, tmp_path, capfd,
                                                              mode):
    # Every corpus entry but the folder named x.mp4 is a file to account for, the FIFO and the loop included.
    folder = damaged_corpus[0].path.parent
    out = tmp_path / "preds.jsonl"
    extra = ["--recursive"] + (["--timeline"] if mode == "timeline" else [])
    run = predict(capfd, tiny_model_dir, out, folder, extra=extra)
    expected = [i for i in damaged_corpus if i.kind != "directory"]
    check_predict_run(run, out, expected, num_frames=NUM_FRAMES if mode == "clip" else None)


def test_flat_folder_with_a_symlink_loop_gives_every_file_one_record(tiny_model_dir, tmp_path, capfd):
    folder = tmp_path / "videos"
    healthy = encode_exact(folder / "healthy.mp4", moving_square_clip(12, 32, 32), pix_fmt="yuv420p")
    loop = symlink_loop(folder / "loop.mp4")
    dangling = folder / "dangling.mp4"
    os.symlink("nowhere.mp4", dangling)
    out = tmp_path / "preds.jsonl"
    run = predict(capfd, tiny_model_dir, out, folder)
    check_predict_run(run, out, [Input("healthy", healthy, "generated"), Input("symlink-loop", loop, "generated"),
                                 Input("dangling-link", dangling, "generated")])


def test_symlink_loop_named_on_the_command_line_gets_an_error_record(damaged_corpus, tiny_model_dir, tmp_path,
                                                                     capfd):
    chosen = [i for i in damaged_corpus if i.kind in ("healthy", "symlink-loop")]
    out = tmp_path / "preds.jsonl"
    run = predict(capfd, tiny_model_dir, out, *[i.path for i in chosen])
    check_predict_run(run, out, chosen)


@pytest.mark.realdata
def test_folder_of_damaged_real_videos_gives_every_file_one_record(real_damaged_corpus, tiny_model_dir, tmp_path,
                                                                   capfd):
    # Holds the AVI on which decord aborts: the worker dies, is replaced, and only that file fails.
    out = tmp_path / "preds.jsonl"
    run = predict(capfd, tiny_model_dir, out, real_damaged_corpus[0].path.parent)
    check_predict_run(run, out, real_damaged_corpus)
