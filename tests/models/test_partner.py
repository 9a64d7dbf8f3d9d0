"""A model with a partner (ModelConfig.partner): two networks as one model folder, their clip probabilities mixed."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from vidlstm.batch.run_settings import model_digest
from vidlstm.checkpoint import load_model, save_model
from vidlstm.errors import ModelLoadError, UsageError
from vidlstm.inference.predictor import Predictor
from vidlstm.models import LRCN, ModelConfig
from vidlstm.training.partner import PARTNER_WEIGHT, with_partner, without_partner

LABELS = ["left", "right", "up"]


def _pair(seed: int = 0) -> tuple[LRCN, LRCN]:
    """A statistics read-out at 64 px and a vidnet partner at 32 px on the differences, both 8 frames, untrained but
    with a made-up standardisation and temperatures, so that both give probabilities away from uniform."""
    torch.manual_seed(seed)
    model = LRCN(ModelConfig(labels=LABELS, backbone="vidnet", image_size=64, num_frames=8, clip_head="stats",
                             input_mode="rgb,diff", temperature=0.5), load_pretrained=False).eval()
    with torch.no_grad():
        model.stats_classifier.weight.mul_(50)
    partner = LRCN(ModelConfig(labels=LABELS, backbone="vidnet", image_size=32, num_frames=8, input_mode="diff",
                               temperature=0.2), load_pretrained=False).eval()
    return model, partner


def _frames(batch: int = 3, size: int = 64, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 8, 3, size, size, generator=torch.Generator().manual_seed(seed))  # (B, T, 3, H, W)


@torch.no_grad()
def test_a_clips_probabilities_are_the_weighted_mix_of_both_networks_the_partner_served_the_frames_resized():
    model, partner = _pair()
    joined = with_partner(model, partner)
    x = _frames()
    own = model.predict_proba(x)
    small = F.interpolate(x.flatten(0, 1), size=(32, 32), mode="area").reshape(3, 8, 3, 32, 32)
    theirs = partner.predict_proba(small)
    assert not torch.allclose(own, theirs, atol=0.05)  # two opinions, so the mix is a real test
    expected = (1 - PARTNER_WEIGHT) * own + PARTNER_WEIGHT * theirs
    torch.testing.assert_close(joined.predict_proba(x), expected)
    torch.testing.assert_close(joined.predict_proba((x * 255).round().to(torch.uint8)),
                               with_partner(model, partner).predict_proba((x * 255).round() / 255), atol=1e-6,
                               rtol=0)  # uint8 frames are taken as the float ones
    # Everything but the clip probabilities is the model's own network's.
    out, alone = joined(x), model(x)
    for a, b in zip(out, alone):
        torch.testing.assert_close(a, b)
    assert PARTNER_WEIGHT == 0.3 and joined.config.partner["weight"] == 0.3


def test_a_joined_model_saves_and_loads_as_one_folder_with_its_own_fingerprint(tmp_path):
    model, partner = _pair()
    alone_dir = save_model(tmp_path / "alone", model)
    joined_dir = save_model(tmp_path / "joined", with_partner(model, partner), {"note": 1})
    config = json.loads((joined_dir / "config.json").read_text())
    assert config["partner"]["weight"] == 0.3 and config["partner"]["config"]["backbone"] == "vidnet"
    assert config["partner"]["config"]["image_size"] == 32 and config["partner"]["config"]["temperature"] == 0.2
    assert "partner" not in json.loads((alone_dir / "config.json").read_text())  # older vidlstm still reads it
    keys = set(load_file(joined_dir / "model.safetensors"))
    assert {k for k in keys if k.startswith("partner.")} == {"partner." + k for k in partner.state_dict()}
    assert model_digest(joined_dir) != model_digest(alone_dir)
    loaded = load_model(joined_dir)
    x = _frames()
    with torch.no_grad():
        torch.testing.assert_close(loaded.predict_proba(x), with_partner(model, partner).predict_proba(x))
    card = (joined_dir / "README.md").read_text()
    assert "## Partner" in card and "0.7 x this network's + 0.3 x the partner's" in card and "`vidnet` (32x32" in card
    # Saved again, the same bytes (one fingerprint for one model).
    again = save_model(tmp_path / "again", loaded, {"note": 1})
    assert (again / "model.safetensors").read_bytes() == (joined_dir / "model.safetensors").read_bytes()


def test_predictor_scores_clips_with_the_mix_and_frames_with_the_model_alone(tmp_path):
    model, partner = _pair()
    joined = Predictor.from_dir(save_model(tmp_path / "joined", with_partner(model, partner)))
    alone = Predictor.from_dir(save_model(tmp_path / "alone", model))
    x = _frames(2)
    clips = [(f.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8) for f in x]  # (T, H, W, 3) uint8
    served = torch.from_numpy(np.stack(clips)).permute(0, 1, 4, 2, 3).float() / 255  # (B, T, 3, H, W) as served
    with torch.no_grad():
        theirs = partner.predict_proba(F.interpolate(served.flatten(0, 1), size=(32, 32), mode="area")
                                       .reshape(2, 8, 3, 32, 32)).numpy()
    mixed, own = joined.score_frames(clips), alone.score_frames(clips)
    for m, o, t in zip(mixed, own, theirs):
        np.testing.assert_allclose(m.probs, 0.7 * o.probs + 0.3 * t, atol=1e-4)
        np.testing.assert_allclose(m.step_probs, o.step_probs, atol=1e-6)
        np.testing.assert_allclose(m.attention, o.attention, atol=1e-6)
        assert m.weights == o.weights == "leave-one-out"
    # Test views average the mixed probabilities.
    views = joined.score_views([clips])[0]
    np.testing.assert_allclose(views.probs, np.mean([m.probs for m in mixed], axis=0), atol=1e-6)


def test_without_partner_is_the_model_alone():
    model, partner = _pair()
    alone = without_partner(with_partner(model, partner))
    assert alone.partner is None and "partner" not in alone.config.to_dict()
    x = _frames()
    with torch.no_grad():
        torch.testing.assert_close(alone.predict_proba(x), model.predict_proba(x))
    assert without_partner(model) is model


@pytest.mark.parametrize("change, message", [
    (lambda p: p.update(weight=0.0), "partner weight must be a number between 0 and 1 (got 0.0)"),
    (lambda p: p.update(weight=1), "partner weight must be a number between 0 and 1 (got 1)"),
    (lambda p: p.update(weight="0.3"), "partner weight must be a number between 0 and 1 (got '0.3')"),
    (lambda p: p.pop("weight"), "partner must be an object with keys weight and config (got keys config)"),
    (lambda p: p["config"].update(labels=["left", "up", "right"]), "partner labels (['left', 'up', 'right']) "
                                                                   "differs from the model's"),
    (lambda p: p["config"].update(num_frames=16), "partner num_frames (16) differs from the model's (8); the "
                                                  "partner is served the model's clips"),
    (lambda p: p["config"].update(stabilize=True), "partner stabilize (True) differs"),
    (lambda p: p["config"].update(backbone="nope"), "partner config: unknown backbone"),
    (lambda p: p["config"].update(partner={"weight": 0.5, "config": dict(p["config"])}),
     "a partner cannot have a partner of its own"),
])
def test_a_partner_that_cannot_serve_the_model_is_refused_naming_why(change, message):
    model, partner = _pair()
    settings = json.loads(json.dumps(with_partner(model, partner).config.to_dict()))
    change(settings["partner"])
    with pytest.raises(UsageError) as err:
        ModelConfig.from_dict(settings)
    assert message in str(err.value)


def test_a_saved_config_with_a_bad_partner_is_refused_on_load_naming_the_file(tmp_path):
    model, partner = _pair()
    folder = save_model(tmp_path / "m", with_partner(model, partner))
    config = json.loads((folder / "config.json").read_text())
    config["partner"]["weight"] = 2
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=r"config\.json: invalid model config \(partner weight must be a number "
                                             r"between 0 and 1 \(got 2\)\)"):
        load_model(folder)


def test_models_that_differ_in_what_they_are_served_cannot_be_joined():
    model, _ = _pair()
    other = LRCN(ModelConfig(labels=LABELS, backbone="vidnet", image_size=32, num_frames=16), load_pretrained=False)
    with pytest.raises(UsageError, match=r"partner num_frames \(16\) differs from the model's \(8\)"):
        with_partner(model, other)
    with pytest.raises(UsageError, match="a model with a partner cannot be joined to another"):
        with_partner(with_partner(model, _pair()[1]), _pair()[1])


def test_partners_nested_deeply_in_a_config_file_are_refused_in_one_line(tmp_path):
    model, partner = _pair()
    folder = save_model(tmp_path / "m", with_partner(model, partner))
    config = json.loads((folder / "config.json").read_text())
    inner = config["partner"]["config"]
    for _ in range(400):  # ~4 calls a level: past Python's recursion limit, were each level read as a config
        inner = {**config["partner"]["config"], "partner": {"weight": 0.3, "config": inner}}
    config["partner"]["config"] = inner
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError) as err:
        load_model(folder)
    assert str(err.value) == (f"{folder / 'config.json'}: invalid model config (a partner cannot have a partner of "
                              f"its own)")
