"""Files carrying a pickle payload (weights, resume state, ImageNet .pth, cache entries): refused, never run."""
from __future__ import annotations

import shutil

import pytest
import torch

from cli_runs import TINY_TRAINING, one_error_line, run_in_process

pytestmark = pytest.mark.robustness


class MarkerPayload:
    """Unpickling this creates ``marker``: the proof that a loader ran code from a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_payload(path, marker, key: str = "weights") -> None:
    """A torch file at ``path`` whose unpickling runs MarkerPayload (a dict, like a real checkpoint)."""
    torch.save({"epoch": 3, key: MarkerPayload(marker)}, path)


def test_the_payload_runs_when_unpickled_unsafely(tmp_path):
    # The control: without weights_only the payload does run, so "no marker" below means "refused".
    marker, path = tmp_path / "payload_ran", tmp_path / "evil.pt"
    write_payload(path, marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.fixture
def poisoned_model(tiny_model_dir, tmp_path):
    """A copy of the tiny model folder whose model.safetensors is a pickle with a payload."""
    model_dir = tmp_path / "poisoned_model"
    shutil.copytree(tiny_model_dir, model_dir)
    marker = tmp_path / "payload_ran"
    write_payload(model_dir / "model.safetensors", marker)
    return model_dir, marker


@pytest.mark.parametrize("command", ["classify", "predict", "evaluate", "extract", "finetune", "info", "export",
                                     "stream"])
def test_every_command_refuses_a_model_folder_whose_weights_are_a_pickle(command, poisoned_model, small_data,
                                                                          tmp_path, capfd):
    model_dir, marker = poisoned_model
    data, clip = small_data
    args = {
        "classify": [clip, "--model", model_dir, "--threads", "1"],
        "predict": [clip, "-o", tmp_path / "preds.jsonl", "--model", model_dir, "--threads", "1", "--no-progress"],
        "evaluate": [data, "--model", model_dir, "-o", tmp_path / "eval", "--threads", "1", "--no-progress"],
        "extract": [data, "--cache", tmp_path / "cache", "--model", model_dir, "--threads", "1", "--no-progress"],
        "finetune": [data, "--from", model_dir, "-o", tmp_path / "run", "--epochs", "1", "--threads", "1",
                     "--no-progress"],
        "info": [model_dir],
        "export": ["--model", model_dir, "--format", "onnx", "-o", tmp_path / "model.onnx"],
        "stream": [clip, "--model", model_dir],
    }[command]
    line = one_error_line(run_in_process(capfd, command, *args), command)
    assert "model.safetensors" in line and "not a valid safetensors file" in line
    assert not marker.exists()
    assert not (tmp_path / "preds.jsonl").exists()  # predict fails on the model before touching its output


def test_resume_refuses_a_train_state_with_a_payload(small_data, tmp_path, capfd):
    data, _ = small_data
    run_dir, marker = tmp_path / "run", tmp_path / "payload_ran"
    (run_dir / "last").mkdir(parents=True)
    write_payload(run_dir / "last" / "train_state.pt", marker, key="optimizer")
    run = run_in_process(capfd, "train", data, "-o", run_dir, "--resume", *TINY_TRAINING)
    line = one_error_line(run, "train")
    assert "train_state.pt: refused to load train state" in line and "GLOBAL" in line
    assert not marker.exists()


def test_pretrained_weights_file_with_a_payload_is_refused(small_data, tmp_path, capfd):
    data, _ = small_data
    marker, weights = tmp_path / "payload_ran", tmp_path / "resnet18-f37072fd.pth"
    write_payload(weights, marker, key="fc.weight")
    run = run_in_process(capfd, "train", data, "-o", tmp_path / "run", "--backbone", "resnet18", "--pretrained",
                         "--weights-file", weights, *TINY_TRAINING)
    line = one_error_line(run, "train")
    assert "resnet18-f37072fd.pth: refused to load ImageNet weights" in line
    assert not marker.exists()


@pytest.fixture
def trained_cache(small_data, tmp_path, capfd):
    """A finished tiny run's clip cache, every entry then replaced by a pickle with a payload."""
    data, _ = small_data
    cache, marker = tmp_path / "cache", tmp_path / "payload_ran"
    assert run_in_process(capfd, "train", data, "-o", tmp_path / "first", "--cache", cache, *TINY_TRAINING).code == 0
    entries = sorted(cache.rglob("*.safetensors"))
    assert len(entries) == 4  # 4 clips x 1 view
    for entry in entries:
        write_payload(entry, marker, key="frames")
    return data, cache, entries, marker


def test_cache_entries_holding_a_payload_are_read_as_misses(trained_cache):
    from vidlstm.data.cache import TensorCache

    _, cache, entries, marker = trained_cache
    spec_folder = entries[0].parents[1]
    reader = TensorCache(cache, "clips", {})
    reader.folder = spec_folder  # read the run's entries whatever their spec
    for entry in entries:
        sha, view = entry.name.split(".v")[0], int(entry.name.split(".v")[1].split(".")[0])
        assert reader.get(sha, view) is None
    assert reader.misses == len(entries) and not marker.exists()


def test_training_rebuilds_cache_entries_holding_a_payload(trained_cache, tmp_path, capfd):
    data, cache, entries, marker = trained_cache
    run = run_in_process(capfd, "train", data, "-o", tmp_path / "second", "--cache", cache, *TINY_TRAINING)
    assert not marker.exists()
    assert run.code == 0, run.err[-2000:]
    from safetensors.torch import load_file

    assert all(load_file(entry)["frames"].dtype == torch.uint8 for entry in entries)  # rebuilt, as safetensors
