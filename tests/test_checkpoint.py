"""Model folders and train state: exact round trips, one-line errors for broken folders, pickles refused unrun."""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from vidlstm.checkpoint import load_model, load_train_state, rewrite_metrics, save_model, save_train_state
from vidlstm.errors import ModelLoadError, VidlstmError
from vidlstm.models import LRCN, ModelConfig

LABELS = ["swipe_left", "swipe_right", "push"]


@pytest.fixture
def model():
    torch.manual_seed(0)
    return LRCN(ModelConfig(labels=LABELS, proj_dim=16, hidden_size=8, image_size=32, num_frames=4,
                            temperature=1.5)).eval()


@pytest.fixture
def saved(model, tmp_path):
    return save_model(tmp_path / "model", model, metrics={"accuracy": 0.875, "per_class": {"push": 1.0}})


class Payload:
    """Unpickling this creates ``marker``: proof that a loader ran pickled code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_save_writes_the_folder_and_load_gives_identical_logits(model, saved):
    assert sorted(p.name for p in saved.iterdir()) == ["README.md", "config.json", "labels.json", "metrics.json",
                                                       "model.safetensors"]
    assert json.loads((saved / "labels.json").read_text()) == LABELS
    assert json.loads((saved / "metrics.json").read_text())["accuracy"] == 0.875
    card = (saved / "README.md").read_text()
    assert "swipe_left, swipe_right, push" in card and "`vidnet`" in card and "| accuracy | 0.875 |" in card
    assert f"{sum(p.numel() for p in model.parameters()):,}" in card
    front, body = card.split("---\n")[1:3]  # Hugging Face Hub front matter first
    assert card.startswith("---\n") and "library_name: vidlstm\n" in front
    assert "pipeline_tag: video-classification\n" in front and "tags:\n- video-classification\n" in front
    assert body.lstrip().startswith("# vidlstm model")

    loaded = load_model(saved)
    assert loaded.config == model.config and not loaded.training
    frames = torch.rand(2, 4, 3, 32, 32)
    with torch.no_grad():
        expected, got = model(frames, torch.tensor([4, 2])), loaded(frames, torch.tensor([4, 2]))
    for a, b in zip(expected, got):
        torch.testing.assert_close(b, a, rtol=0, atol=0)


def test_the_card_says_where_a_clip_label_comes_from_and_how_many_views_it_averages(model, tmp_path):
    assert "linear read-out" not in (save_model(tmp_path / "lstm", model)).joinpath("README.md").read_text()
    assert "test views" not in (tmp_path / "lstm" / "README.md").read_text()
    torch.manual_seed(0)
    readout = LRCN(ModelConfig(labels=LABELS, proj_dim=16, hidden_size=8, image_size=32, num_frames=4,
                               clip_head="stats", test_views=3)).eval()
    card = (save_model(tmp_path / "stats", readout) / "README.md").read_text()
    assert "A clip's label comes from a linear read-out of its frame features' statistics over time" in card
    assert "4 frames per clip, `segment` sampling, 32x32 px, input mode `rgb+diff`; 3 clips of each video scored " \
           "and averaged (test views)" in card


@pytest.mark.parametrize("init, said", [("scratch", "(trained from scratch"), (None, "(trained from scratch"),
                                        ("runs/base/model", "(fine-tuned from runs/base/model")])
def test_the_card_says_a_fine_tuned_model_started_from_another(model, tmp_path, init, said):
    """A fine-tuned model's card and `vidlstm info` said "trained from scratch"."""
    from vidlstm.cli.info import format_card
    from vidlstm.stages.info import model_info

    metrics = {"val_accuracy": 0.5, **({"init": init} if init else {})}
    folder = save_model(tmp_path / "m", model, metrics=metrics)
    assert said in (folder / "README.md").read_text()
    assert said in format_card(model_info(folder))



def test_labels_holding_a_comma_are_listed_unambiguously(tmp_path):
    from vidlstm.cli.info import format_card
    from vidlstm.stages.info import model_info

    model = LRCN(ModelConfig(labels=["with, comma", "plain"], proj_dim=16, hidden_size=8, image_size=32,
                             num_frames=4)).eval()
    folder = save_model(tmp_path / "m", model)
    assert '- labels (2): ["with, comma", "plain"]' in (folder / "README.md").read_text()
    assert '2: ["with, comma", "plain"]' in format_card(model_info(folder))


def test_the_same_weights_saved_again_are_the_same_bytes_and_the_same_model_digest(model, saved, tmp_path):
    """safetensors writes its metadata in an order drawn at each save: half the saves of one model gave other bytes,
    so another model digest, and a merge of predict runs on the model saved again refused its own records."""
    from vidlstm.batch.run_settings import model_digest

    weights = (saved / "model.safetensors").read_bytes()
    again = [save_model(tmp_path / f"again{i}", model) for i in range(8)]
    again.append(save_model(tmp_path / "loaded", load_model(saved)))
    assert [(folder / "model.safetensors").read_bytes() == weights for folder in again] == [True] * 9
    assert {model_digest(folder) for folder in again} == {model_digest(saved)}


def test_rewriting_the_metrics_rewrites_the_card_and_leaves_the_weights(saved):
    weights = (saved / "model.safetensors").read_bytes()
    family = {"rule": "the highest estimate", "chosen": "pretrained", "clause": "equal estimates",
              "scores": {"pretrained": 0.8736, "pretrained-motion": None, "scratch": 0.5},
              "warning": "most clips have a near-copy"}
    rewrite_metrics(saved, {"accuracy": 0.5, "chosen_from_data": {"family": family}})
    assert json.loads((saved / "metrics.json").read_text())["chosen_from_data"]["family"] == family
    card = (saved / "README.md").read_text()
    assert "| accuracy | 0.5 |" in card and "| accuracy | 0.875 |" not in card
    assert "trained 3 candidates and kept `pretrained`" in card and "| pretrained (kept) | 0.874 |" in card
    assert "| pretrained-motion | - |" in card  # no estimate (too few clips for two folds)
    assert "| scratch | 0.500 |" in card and "Rule: the highest estimate." in card
    assert "Kept by: equal estimates." in card and "Warning: most clips have a near-copy." in card
    assert (saved / "model.safetensors").read_bytes() == weights


def test_no_temporary_files_are_left_and_files_get_normal_permissions(saved):
    assert not [p for p in saved.iterdir() if p.name.startswith(".")]
    reference = saved / "reference.txt"
    reference.write_text("x")  # created as any file is, under the process umask
    assert (saved / "model.safetensors").stat().st_mode == (saved / "config.json").stat().st_mode \
        == reference.stat().st_mode


def test_resaving_without_metrics_drops_the_stale_metrics(model, saved):
    save_model(saved, model)
    assert not (saved / "metrics.json").exists()
    assert "## Metrics" not in (saved / "README.md").read_text()


def test_folder_without_config_is_not_a_model_folder(saved):
    (saved / "config.json").unlink()
    with pytest.raises(ModelLoadError) as info:
        load_model(saved)
    assert str(info.value) == f"{saved}: not a vidlstm model folder (missing config.json)"
    assert info.value.exit_code == 2


def test_missing_folder_and_missing_weights(saved, tmp_path):
    with pytest.raises(ModelLoadError, match="nowhere: no such model folder"):
        load_model(tmp_path / "nowhere")
    (saved / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match=r"not a vidlstm model folder \(missing model.safetensors\)"):
        load_model(saved)


def test_garbled_config_json_names_the_file_and_line(saved):
    (saved / "config.json").write_text('{"labels": ["a", "b"],\n  "backbone": }')
    with pytest.raises(ModelLoadError, match=r"config\.json: not valid JSON \(line 2: Expecting value\)"):
        load_model(saved)


def test_invalid_config_value_names_the_file(saved):
    data = json.loads((saved / "config.json").read_text())
    data["backbone"] = "alexnet"
    (saved / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match=r"config\.json: invalid model config \(unknown backbone 'alexnet'"):
        load_model(saved)


@pytest.mark.parametrize("edit, reason", [
    (lambda data: data.pop("num_frames"), r"\(no num_frames\)"),  # a default of 16 would change what it sees
    (lambda data: [data.pop("image_size"), data.pop("sampling")], r"\(no image_size, sampling\)"),
    (lambda data: data.update(sampling="weird"), r"\(sampling must be one of segment \(got 'weird'\)\)"),
])
def test_a_config_missing_what_every_saved_one_holds_or_naming_no_sampler_is_refused(saved, edit, reason):
    data = json.loads((saved / "config.json").read_text())
    edit(data)
    (saved / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match=r"config\.json: invalid model config " + reason):
        load_model(saved)


def test_a_file_named_as_the_model_folder_says_so(saved):
    with pytest.raises(ModelLoadError, match=r"config\.json: not a folder; name the model folder"):
        load_model(saved / "config.json")


def test_labels_json_must_agree_with_config(saved):
    (saved / "labels.json").write_text(json.dumps(["a", "b", "c"]))
    with pytest.raises(ModelLoadError, match=r"labels\.json: labels differ from those in config\.json"):
        load_model(saved)


def test_garbled_weights_file(saved):
    (saved / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelLoadError, match=r"model\.safetensors: not a valid safetensors file"):
        load_model(saved)


def test_weights_that_cannot_be_read_say_why_not_no_such_file(saved, monkeypatch):
    """safetensors said "No such file or directory" of a model.safetensors it was not allowed to read."""
    from vidlstm import checkpoint

    weights = saved / "model.safetensors"
    if os.geteuid() != 0:  # root reads it anyway
        weights.chmod(0)
        try:
            with pytest.raises(ModelLoadError, match=r"model\.safetensors: cannot read \(Permission denied\)$"):
                load_model(saved)
        finally:
            weights.chmod(0o644)

    def denied(path, *args, **kwargs):  # what a file system that refuses this reader says, whoever runs the test
        raise PermissionError(13, "Permission denied", str(path))

    def safetensors_says(path, *args, **kwargs):
        raise OSError(f"No such file or directory: {path}")

    monkeypatch.setattr(checkpoint, "load_file", safetensors_says)
    monkeypatch.setattr(checkpoint, "open", denied, raising=False)
    with pytest.raises(ModelLoadError, match=r"model\.safetensors: cannot read \(Permission denied\)$"):
        load_model(saved)


def test_weights_that_do_not_match_the_config(saved):
    data = json.loads((saved / "config.json").read_text())
    data["hidden_size"] = 9
    (saved / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match=r"weights do not match config\.json: shape mismatch for \S+ "
                                             r"\(\(\d+, \d+\) in the file, \(\d+, \d+\) expected\)"):
        load_model(saved)
    data["hidden_size"], data["causal_head"] = 8, False
    (saved / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelLoadError,
                       match=r"weights do not match config\.json: \d+ unexpected tensors \(e\.g\. causal"):
        load_model(saved)


def test_weights_file_with_a_pickle_payload_is_refused_unrun(saved, tmp_path):
    marker = tmp_path / "payload_ran"
    torch.save({"w": Payload(marker)}, saved / "model.safetensors")
    with pytest.raises(ModelLoadError, match="not a valid safetensors file"):
        load_model(saved)
    assert not marker.exists()


def test_train_state_round_trip(model, tmp_path):
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.rand(1, 2, 3, 32, 32)).logits.sum().backward()
    optimizer.step()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3,
             "rng": torch.get_rng_state(), "history": [{"loss": 0.5}], "config": model.config.to_dict()}
    path = save_train_state(tmp_path / "run" / "train_state.pt", state)
    assert sorted(p.name for p in path.parent.iterdir()) == ["train_state.pt"]
    loaded = load_train_state(path)
    assert loaded["epoch"] == 3 and loaded["history"] == [{"loss": 0.5}]
    torch.testing.assert_close(loaded["rng"], state["rng"], rtol=0, atol=0)
    assert loaded["optimizer"]["state"][0]["step"] == 1
    for name, tensor in state["model"].items():
        torch.testing.assert_close(loaded["model"][name], tensor, rtol=0, atol=0)


def test_train_state_with_a_pickle_payload_is_refused_unrun(tmp_path):
    marker, path = tmp_path / "payload_ran", tmp_path / "train_state.pt"
    torch.save({"epoch": 1, "sneaky": Payload(marker)}, path)
    with pytest.raises(ModelLoadError,
                       match=r"train_state\.pt: refused to load train state: .*\(GLOBAL io\.open was not an allowed"):
        load_train_state(path)
    assert not marker.exists()


def test_train_state_that_would_not_load_safely_is_refused_at_save_time(tmp_path):
    with pytest.raises(VidlstmError, match=r"train state\['rng'\]\['numpy'\]: numpy\.ndarray cannot be loaded"):
        save_train_state(tmp_path / "s.pt", {"rng": {"numpy": np.zeros(3)}})
    assert not (tmp_path / "s.pt").exists()


def test_failed_save_keeps_the_previous_train_state(tmp_path, monkeypatch):
    path = save_train_state(tmp_path / "train_state.pt", {"epoch": 1})

    def crash(obj, f, *args, **kwargs):
        f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_train_state(path, {"epoch": 2})
    monkeypatch.undo()
    assert load_train_state(path) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["train_state.pt"]


def test_a_full_disk_under_the_train_state_is_an_error_naming_it(tmp_path, monkeypatch):
    # torch.save straight onto a full disk raised a RuntimeError naming no file ("unexpected pos ..."), a traceback
    # at the command line; now the bytes are written by Python, whose failed write the atomic write names.
    path = save_train_state(tmp_path / "train_state.pt", {"epoch": 1})

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")  # as a failed write says it: no file name

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OSError) as caught:
        save_train_state(path, {"epoch": 2})
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, str(path))
    monkeypatch.undo()
    assert load_train_state(path) == {"epoch": 1} and os.listdir(tmp_path) == ["train_state.pt"]


def test_garbled_train_state(tmp_path):
    path = tmp_path / "train_state.pt"
    path.write_bytes(b"not a torch file")
    with pytest.raises(ModelLoadError,
                       match=r"train_state\.pt: cannot read train state: not a torch file or damaged \(Unsupported"):
        load_train_state(path)


def test_a_pretrained_model_loads_offline_without_its_imagenet_file(tmp_path, monkeypatch):
    weights = tmp_path / "mobilenet_v3_small-047dcff4.pth"
    torch.save(torchvision.models.get_model("mobilenet_v3_small", weights=None).state_dict(), weights)
    config = ModelConfig(labels=["a", "b"], backbone="mobilenet_v3_small", pretrained=True, proj_dim=8,
                         hidden_size=8, image_size=32)
    model = LRCN(config, weights_file=weights).eval()
    assert model.backbone_meta["weights_file"] == str(weights)
    folder = save_model(tmp_path / "model", model)
    weights.unlink()
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty_hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("tried to download"))
    loaded = load_model(folder)
    assert loaded.config.pretrained
    frames = torch.rand(1, 3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(frames).logits, model(frames).logits, rtol=0, atol=0)


def test_a_missing_model_named_by_the_environment_says_so(tmp_path, monkeypatch):
    from vidlstm.checkpoint import load_config
    from vidlstm.errors import ModelLoadError

    monkeypatch.setenv("VIDLSTM_MODEL", str(tmp_path / "nope"))
    with pytest.raises(ModelLoadError, match=r"nope: no such model folder \(named by \$VIDLSTM_MODEL\)$"):
        load_config(tmp_path / "nope")
    with pytest.raises(ModelLoadError, match=r"other: no such model folder$"):
        load_config(tmp_path / "other")
