"""ModelConfig: defaults filled from the backbone, JSON round trip, and one-line errors for bad values."""
from __future__ import annotations

import json

import pytest
import torchvision

from vidlstm.errors import UsageError
from vidlstm.models import MODEL_FORMAT_VERSION, ModelConfig


def test_defaults_and_values_filled_from_the_backbone():
    cfg = ModelConfig(labels=["wave", "clap"])
    assert (cfg.backbone, cfg.input_mode, cfg.num_frames, cfg.image_size, cfg.sampling) == \
        ("vidnet", "rgb+diff", 16, 112, "segment")
    assert (cfg.hidden_size, cfg.num_layers, cfg.causal_head, cfg.temperature) == (128, 1, True, 1.0)
    assert cfg.keypoints == 8 and cfg.in_channels == 6 and cfg.num_classes == 2
    assert cfg.mean == (0.5, 0.5, 0.5) and cfg.std == (0.25, 0.25, 0.25)
    assert cfg.format_version == MODEL_FORMAT_VERSION


def test_torchvision_backbone_takes_mean_std_from_its_weights_and_no_keypoints():
    cfg = ModelConfig(labels=["a", "b"], backbone="resnet18", input_mode="rgb")
    transform = torchvision.models.ResNet18_Weights.DEFAULT.transforms()
    assert cfg.mean == pytest.approx(transform.mean) and cfg.std == pytest.approx(transform.std)
    assert cfg.keypoints == 0 and cfg.in_channels == 3


def test_json_round_trip_is_exact():
    cfg = ModelConfig(labels=["a", "b", "c"], backbone="mobilenet_v3_small", pretrained=True, num_frames=8,
                      dropout=0.1, temperature=1.7, extra={"note": "x"})
    again = ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert again.to_dict() == cfg.to_dict()


def test_stabilize_is_written_only_where_true():
    # A model that needs no stabilizing keeps the config.json of before (older vidlstm reads it); one that needs it
    # says so, and an older vidlstm refuses the unknown key instead of feeding it clips as decoded.
    assert "stabilize" not in ModelConfig(labels=["a"]).to_dict()
    steady = ModelConfig(labels=["a"], stabilize=True)
    assert steady.to_dict()["stabilize"] is True
    assert ModelConfig.from_dict(json.loads(json.dumps(steady.to_dict()))) == steady


@pytest.mark.parametrize("kwargs, message", [
    ({"labels": []}, "labels must be a non-empty list"),
    ({"labels": ["a", "b", "a"]}, r"labels must be unique \(repeated: a\)"),
    ({"labels": ["a"], "backbone": "vgg"}, "unknown backbone 'vgg'"),
    ({"labels": ["a"], "input_mode": "flow"}, r"input_mode must be one of rgb, rgb\+diff, diff, rgb,diff \(got 'flow'\)"),
    ({"labels": ["a"], "num_frames": 0}, r"num_frames must be from 1 to 1024 \(got 0\)"),
    ({"labels": ["a"], "image_size": 16}, r"image_size must be from 32 to 1024 \(got 16\)"),
    ({"labels": ["a"], "dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ({"labels": ["a"], "temperature": 0}, "temperature must be a number from 0.001 to 1000"),
    # Sizes a config.json could claim: refused before anything allocates (vidlstm.limits).
    ({"labels": ["a"], "num_frames": 10**9}, r"num_frames must be from 1 to 1024 \(got 1000000000\)"),
    ({"labels": ["a"], "num_frames": 1e9}, r"num_frames must be an integer from 1 to 1024 \(got 1000000000.0\)"),
    ({"labels": ["a"], "hidden_size": 10**9}, "hidden_size must be from 1 to 4096"),
    ({"labels": ["a"], "num_layers": 10**5}, "num_layers must be from 1 to 16"),
    ({"labels": ["a"], "image_size": 10**6}, "image_size must be from 32 to 1024"),
    ({"labels": ["a"], "proj_dim": 10**7}, "proj_dim must be from 1 to 4096"),
    ({"labels": ["a"], "keypoints": 10**6}, "keypoints must be an integer from 0 to 256"),
    ({"labels": ["a"], "temperature": 1e-300}, "temperature must be a number from 0.001 to 1000"),
    ({"labels": ["a"], "temperature": float("nan")}, "temperature must be a number"),
    ({"labels": ["a"], "dropout": float("nan")}, r"dropout must be in \[0, 1\)"),
    ({"labels": ["a"], "mean": [float("nan"), 0.5, 0.5]}, "mean must be 3 finite numbers"),
    ({"labels": ["a"], "std": [float("inf"), 1, 1]}, "std must be 3 finite numbers"),
    ({"labels": ["a"], "mean": float("nan")}, "mean must be 3 finite numbers"),
    ({"labels": "abc"}, "labels must be a list"),
    ({"labels": ["a"], "num_frames": 1024, "image_size": 1024}, "3072 MB per clip, above 256 MB"),
    ({"labels": ["a"], "backbone": "resnet18", "keypoints": 8}, "keypoints apply to backbones with a soft-argmax"),
    ({"labels": ["a"], "mean": [0.5, 0.5]}, "mean must be 3 finite numbers"),
    ({"labels": ["a"], "std": [1, 0, 1]}, "std must be positive"),
    ({"labels": ["a"], "format_version": MODEL_FORMAT_VERSION + 1}, "is newer than this vidlstm understands"),
    ({"labels": ["a"], "stabilize": "yes"}, r"stabilize must be true or false \(got 'yes'\)"),
    ({"labels": ["a"], "causal_head": "no"}, r"causal_head must be true or false \(got 'no'\)"),
    ({"labels": ["a"], "pretrained": 1}, r"pretrained must be true or false \(got 1\)"),
])
def test_bad_values_raise_one_line_usage_errors(kwargs, message):
    with pytest.raises(UsageError, match=message) as info:
        ModelConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_from_dict_refuses_unknown_keys():
    data = ModelConfig(labels=["a", "b"]).to_dict()
    data["attention_heads"] = 4
    with pytest.raises(UsageError, match="unknown config keys: attention_heads"):
        ModelConfig.from_dict(data)
