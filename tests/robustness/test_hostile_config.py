"""A model folder whose config.json (or weights) lies: refused before any worker starts or tensor is built,
with one line naming config.json, never a traceback, a hang, a memory blow-up or a NaN score."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cli_runs import json_lines, one_error_line, run_in_process
from hostile_inputs import ABSURD_CONFIGS, model_with_config

pytestmark = pytest.mark.robustness


@pytest.mark.parametrize("kind", ABSURD_CONFIGS)
@pytest.mark.parametrize("command", ["classify", "predict"])
def test_an_absurd_config_is_one_line_naming_config_json(kind, command, tiny_model_dir, small_data, tmp_path, capfd):
    _, clip = small_data
    model = model_with_config(tiny_model_dir, tmp_path / "model", ABSURD_CONFIGS[kind])
    args = [clip, "--json"] if command == "classify" else [clip, "-o", tmp_path / "p.jsonl", "--no-progress"]
    run = run_in_process(capfd, command, *args, "--model", model, "--threads", "1", timeout=60)
    line = one_error_line(run, command)
    assert f"{model / 'config.json'}: invalid model config" in line, line
    assert str(clip) not in line  # the model is wrong, not the video
    assert not (tmp_path / "p.jsonl").exists()  # nothing written for a model that cannot load


@pytest.mark.parametrize("kind", ["num_frames-1e9", "image_size-1e6", "3-GB-clips"])
def test_the_early_decode_worker_does_not_start_on_absurd_sizes(kind, tiny_model_dir, small_data, tmp_path):
    from vidlstm.batch.early import start_early_decoding

    _, clip = small_data
    model = model_with_config(tiny_model_dir, tmp_path / "model", ABSURD_CONFIGS[kind])
    assert start_early_decoding(model, [clip]) is None  # model loading then names config.json


def test_nan_weights_are_refused_naming_the_weights_file(tiny_model_dir, small_data, tmp_path, capfd):
    from safetensors.torch import load_file, save_file

    _, clip = small_data
    model = model_with_config(tiny_model_dir, tmp_path / "model", {})
    state = load_file(model / "model.safetensors")
    name = next(n for n, t in state.items() if t.is_floating_point() and t.numel() > 1)
    state[name][0] = float("nan")
    save_file(state, model / "model.safetensors")
    line = one_error_line(run_in_process(capfd, "classify", clip, "--json", "--model", model, timeout=60), "classify")
    assert f"{model / 'model.safetensors'}: tensor {name} holds NaN" in line


def test_non_finite_scores_become_an_error_record_not_a_nan_score(tiny_model_dir):
    from vidlstm.io.info import VideoInfo
    from vidlstm.inference import Predictor

    predictor = Predictor.from_dir(tiny_model_dir, device="cpu")
    info = VideoInfo("a.mp4", 8, 25.0, 0.32, 32, 32, 0, "h264", "pyav")
    record = predictor.make_record("a.mp4", probs=np.array([np.nan, 0.5, 0.5]), indices=np.arange(8), info=info,
                                   backend="pyav", top_k=3, seconds=0.1)
    assert record["status"] == "error" and "non-finite scores" in record["error"]
    json.dumps(record, allow_nan=False)  # what classify --json and the record files write


def test_classify_json_lines_are_strict_json(tiny_model_dir, small_data, capfd):
    _, clip = small_data
    run = run_in_process(capfd, "classify", clip, "--json", "--model", tiny_model_dir, "--threads", "1")
    assert run.code == 0
    for line in run.out.splitlines():
        json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in JSON output"))
    assert json_lines(run.out)[0]["status"] == "ok"


@pytest.mark.parametrize("content", ["[" * 100_000 + "]" * 100_000, " " * (17 << 20)])
def test_a_config_json_nested_too_deep_or_too_large_is_one_line(content, tiny_model_dir, small_data, tmp_path, capfd):
    _, clip = small_data
    model = model_with_config(tiny_model_dir, tmp_path / "model", {})
    (model / "config.json").write_text(content)
    line = one_error_line(run_in_process(capfd, "classify", clip, "--json", "--model", model, timeout=60), "classify")
    assert f"{model / 'config.json'}: " in line and ("nested too deeply" in line or "too large" in line), line
