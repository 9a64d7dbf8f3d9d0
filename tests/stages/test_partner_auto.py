"""`train --backbone auto` joins vidnet to a kept read-out as its partner; every consumer of the model folder then
serves the pair (clip scores) or says it serves the read-out alone (fine-tuning, export)."""
from __future__ import annotations

import json
import re

import pytest
import torch

from vidlstm.checkpoint import load_model, save_model
from vidlstm.cli import main
from vidlstm.inference.predictor import Predictor
from vidlstm.models import LRCN, ModelConfig
from vidlstm.stages import families, train
from vidlstm.training.config import TrainConfig
from vidlstm.training.partner import PARTNER_RULE, with_partner, write_kept_model

from stages.motion_clips import write_moving_squares


@pytest.fixture(scope="module")
def kept_readout_run(tmp_path_factory):
    """A finished auto run whose rule was made to keep the read-out (which this easy motion task would not)."""
    root = tmp_path_factory.mktemp("partner")
    write_moving_squares(root / "data", 10, steps=12)
    config = TrainConfig(data=str(root / "data"), out_dir=str(root / "run"), epochs=2, num_frames=8, batch_size=8,
                         progress=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(families, "_choice", lambda results: ("pretrained", "a test keeps the read-out"))
        run_dir = train.run(config)
    return root, config, run_dir


def test_a_kept_read_out_gets_vidnet_as_its_partner_in_the_run_folder(kept_readout_run):
    root, config, run_dir = kept_readout_run
    choice = json.loads((run_dir / "choice.json").read_text())
    assert choice["chosen"] == "pretrained"
    assert choice["partner"] == {"family": "scratch", "joined": True, "backbone": "vidnet", "weight": 0.3,
                                 "rule": PARTNER_RULE}
    readout = load_model(run_dir / "candidates" / "pretrained" / "model")
    vidnet = load_model(run_dir / "candidates" / "scratch" / "model")
    kept = load_model(run_dir / "model")
    assert kept.config.backbone == "efficientnet_lite0" and kept.config.clip_head == "stats"
    assert kept.config.partner == {"weight": 0.3, "config": vidnet.config.to_dict()}
    for name, tensor in vidnet.state_dict().items():
        assert torch.equal(kept.state_dict()["partner." + name], tensor), name
    for name, tensor in readout.state_dict().items():
        assert torch.equal(kept.state_dict()[name], tensor), name
    metrics = json.loads((run_dir / "model" / "metrics.json").read_text())
    assert metrics["chosen_from_data"]["family"]["chosen"] == "pretrained"
    assert metrics["chosen_from_data"]["partner"] == choice["partner"]
    card = (run_dir / "model" / "README.md").read_text()
    assert "## Chosen from data" in card and "## Partner" in card and "`vidnet` (48x48 px" in card
    # The candidates' own folders are theirs alone.
    assert readout.config.partner is None and "## Partner" not in (run_dir / "candidates" / "pretrained" / "model"
                                                                   / "README.md").read_text()


def test_classify_scores_a_clip_with_both_networks_on_one_decode(kept_readout_run, capsys):
    root, _, run_dir = kept_readout_run
    clip = root / "data" / "left" / "left_00.mp4"
    assert main(["classify", str(clip), "--model", str(run_dir / "model"), "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    scores = {entry["label"]: entry["score"] for entry in record["top_k"]}
    readout = Predictor.from_dir(run_dir / "candidates" / "pretrained" / "model")
    frames = readout.load_clip(clip).frames  # (T, 224, 224, 3): the read-out's clip, which vidnet is served too
    own = readout.score_frames([frames])[0].probs
    vidnet = load_model(run_dir / "candidates" / "scratch" / "model")
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255)  # (T, 3, H, W)
    with torch.no_grad():
        theirs = vidnet.predict_proba(torch.nn.functional.interpolate(x, size=(48, 48), mode="area")[None])[0]
    expected = 0.7 * own + 0.3 * theirs.numpy()
    labels = readout.labels
    assert sorted(scores) == sorted(labels)
    for label, value in scores.items():
        assert abs(value - expected[labels.index(label)]) < 2e-3, (label, value, expected)


def test_fine_tuning_a_model_with_a_partner_trains_its_own_network_and_says_so(kept_readout_run, caplog):
    from vidlstm.training.model_setup import model_for_run

    root, _, run_dir = kept_readout_run
    config = TrainConfig(data=str(root / "data"), out_dir=str(root / "ft"), init_from=str(run_dir / "model"))
    with caplog.at_level("INFO", logger="vidlstm"):
        model, note = model_for_run(config, ["left", "right"])
    assert model.partner is None and model.config.partner is None and note["new_heads"] is False
    assert f"{run_dir / 'model'}: its partner (vidnet) is left out: fine-tuning trains the model's own network, " \
           f"and the new model scores clips with it alone" in caplog.text
    assert not any(k.startswith("partner.") for k in model.state_dict())


def test_export_of_a_model_with_a_partner_warns_and_its_card_says_what_the_graphs_leave_out(tmp_path, capsys):
    torch.manual_seed(0)
    labels = ["a", "b"]
    model = LRCN(ModelConfig(labels=labels, backbone="vidnet", image_size=64, num_frames=4, clip_head="stats"),
                 load_pretrained=False)
    partner = LRCN(ModelConfig(labels=labels, backbone="vidnet", image_size=32, num_frames=4, input_mode="diff"),
                   load_pretrained=False)
    folder = save_model(tmp_path / "m", with_partner(model.eval(), partner.eval()))
    assert main(["export", "--model", str(folder), "-o", str(tmp_path / "out"), "--format", "torch"]) == 0
    err = capsys.readouterr().err
    assert f"{folder}: its partner (vidnet) is not exported; the graphs score clips with the model's own network " \
           f"alone" in err
    card = json.loads((tmp_path / "out" / "export.json").read_text())
    assert card["partner"] == ("not exported: vidlstm mixes 0.3 of a vidnet partner's probabilities into each "
                               "clip's; these graphs give the model's own network's alone")
    alone = save_model(tmp_path / "alone", model)
    assert main(["export", "--model", str(alone), "-o", str(tmp_path / "out2"), "--format", "torch"]) == 0
    assert "partner" not in json.loads((tmp_path / "out2" / "export.json").read_text())
    assert "partner" not in capsys.readouterr().err


def test_no_partner_where_vidnet_is_kept_or_was_not_trained(tmp_path):
    torch.manual_seed(0)
    kept = save_model(tmp_path / "kept", LRCN(ModelConfig(labels=["a", "b"], num_frames=4, image_size=32)))
    before = (kept / "model.safetensors").read_bytes()
    results = {"pretrained": {"accuracy": 0.6}, "scratch": {"accuracy": 0.9}}
    (tmp_path / "scratch" / "model").mkdir(parents=True)
    (tmp_path / "scratch" / "model" / "metrics.json").write_text("{}")
    assert write_kept_model(tmp_path, kept, "scratch", results, {"note": 1}) is None  # vidnet kept: alone
    results["scratch"] = {"accuracy": None, "skipped": "under a quarter of the time budget left"}
    assert write_kept_model(tmp_path, kept, "pretrained", results, {"note": 2}) is None  # vidnet not trained
    # The metrics and card are written all the same; the model is untouched.
    assert json.loads((kept / "metrics.json").read_text()) == {"note": 2} and "| note | 2 |" in \
        (kept / "README.md").read_text()
    assert (kept / "model.safetensors").read_bytes() == before


def test_info_shows_the_partner_and_counts_its_parameters_apart(kept_readout_run, capsys):
    _, _, run_dir = kept_readout_run
    vidnet = load_model(run_dir / "candidates" / "scratch" / "model")
    assert main(["info", str(run_dir / "model"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["partner"] == {"weight": 0.3, "backbone": "vidnet", "input_mode": vidnet.config.input_mode,
                               "image_size": 48, "temperature": vidnet.config.temperature,
                               "test_views": vidnet.config.test_views}
    params = info["parameters"]
    assert params["partner"] == sum(p.numel() for p in vidnet.parameters())
    assert params["total"] == params["backbone"] + params["temporal"] + params["causal_head"] + params["partner"]
    assert main(["info", str(run_dir / "model")]) == 0
    text = capsys.readouterr().out
    mode = re.escape(vidnet.config.input_mode)
    assert re.search(rf"^partner +vidnet \(48x48 px, input mode {mode}\), 0\.3 of each clip's probabilities", text,
                     re.M) and f", partner {params['partner']:,})" in text
    assert main(["info", str(run_dir / "candidates" / "scratch" / "model"), "--json"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert "partner" not in alone and "partner" not in alone["parameters"]
