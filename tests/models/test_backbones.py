"""Backbone registry: every registered backbone runs forward and backward, pretrained loading and its errors."""
from __future__ import annotations

import os
import urllib.error

import pytest
import torch
import torchvision

from vidlstm.errors import ModelLoadError, UsageError
from vidlstm.models import backbone_normalization, get_backbone, list_backbones
from vidlstm.models.pretrained import cached_weights_path

TORCHVISION_NAMES = ["resnet18", "resnet34", "resnet50", "mobilenet_v3_small", "mobilenet_v3_large",
                     "efficientnet_b0", "regnet_y_400mf", "convnext_tiny"]


def test_registry_lists_our_cnn_and_the_torchvision_models():
    assert set(list_backbones()) == set(TORCHVISION_NAMES) | {"vidnet", "efficientnet_lite0"}


@pytest.mark.parametrize("name", list_backbones())
def test_every_backbone_forward_backward_and_six_channels(name):
    torch.manual_seed(0)
    backbone = get_backbone(name)
    frames = torch.randn(2, 3, 64, 64)
    feats = backbone.module(frames)  # (2, D)
    assert feats.shape == (2, backbone.feature_dim)
    feats.square().mean().backward()
    first_conv = backbone.module.get_submodule(backbone.meta["first_conv"])
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0
    assert backbone.meta["params"] == sum(p.numel() for p in backbone.module.parameters())
    for path in backbone.meta["last_stages"]:
        backbone.module.get_submodule(path)  # every declared stage exists

    six = get_backbone(name, in_channels=6)
    assert six.module.get_submodule(six.meta["first_conv"]).in_channels == 6
    with torch.no_grad():
        assert six.module.eval()(torch.randn(1, 6, 64, 64)).shape == (1, six.feature_dim)


@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_torchvision_normalization_comes_from_the_weights_transform(name):
    transform = torchvision.models.get_model_weights(name).DEFAULT.transforms()
    mean, std = backbone_normalization(name)
    assert mean == pytest.approx(transform.mean) and std == pytest.approx(transform.std)
    assert get_backbone("mobilenet_v3_small").mean == pytest.approx(transform.mean)


def test_vidnet_declares_its_own_normalization():
    assert backbone_normalization("vidnet") == ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def test_unknown_backbone_names_the_known_ones():
    with pytest.raises(UsageError, match=r"unknown backbone 'resnet9000' \(known: convnext_tiny, .*vidnet\)"):
        get_backbone("resnet9000")


def test_keypoints_only_for_backbones_with_a_soft_argmax():
    assert get_backbone("vidnet", keypoints=3).feature_dim == 128 + 6
    with pytest.raises(UsageError, match="keypoints=4 is not supported"):
        get_backbone("resnet18", keypoints=4)


def test_vidnet_has_no_pretrained_weights():
    with pytest.raises(UsageError, match="trains from scratch"):
        get_backbone("vidnet", pretrained=True)


@pytest.fixture
def fake_imagenet_file(tmp_path):
    """A mobilenet_v3_small state dict saved as torch hub would store it (random values, the right keys)."""
    torch.manual_seed(1)
    state = torchvision.models.get_model("mobilenet_v3_small", weights=None).state_dict()
    path = tmp_path / "mobilenet_v3_small-047dcff4.pth"
    torch.save(state, path)
    return path, state


def test_pretrained_from_weights_file_keeps_rgb_filters_and_inits_diff_channels_from_their_mean(fake_imagenet_file):
    path, state = fake_imagenet_file
    backbone = get_backbone("mobilenet_v3_small", pretrained=True, in_channels=6, weights_file=path)
    weight = backbone.module.features[0][0].weight  # (16, 6, 3, 3)
    rgb = state["features.0.0.weight"]  # (16, 3, 3, 3)
    torch.testing.assert_close(weight[:, :3], rgb, rtol=0, atol=0)
    torch.testing.assert_close(weight[:, 3:], rgb.mean(1, keepdim=True).expand(-1, 3, -1, -1) * 0.5)
    assert backbone.meta["weights"] == "MobileNet_V3_Small_Weights.IMAGENET1K_V1"
    assert backbone.meta["weights_file"] == str(path)
    # A still scene (zero frame differences) gives exactly the pretrained RGB features.
    rgb_only = get_backbone("mobilenet_v3_small", pretrained=True, weights_file=path).module.eval()
    frames = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = rgb_only(frames)
        got = backbone.module.eval()(torch.cat([frames, torch.zeros_like(frames)], 1))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_pretrained_loads_from_the_torch_hub_cache_without_downloading(fake_imagenet_file, tmp_path, monkeypatch):
    path, _ = fake_imagenet_file
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    cached = cached_weights_path("mobilenet_v3_small")
    assert cached == tmp_path / "hub" / "checkpoints" / "mobilenet_v3_small-047dcff4.pth"
    cached.parent.mkdir(parents=True)
    os.replace(path, cached)

    def no_download(*args, **kwargs):
        raise AssertionError("must not download when the file is cached")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    backbone = get_backbone("mobilenet_v3_small", pretrained=True)
    assert backbone.meta["weights_file"] == str(cached)


def test_pretrained_offline_error_names_the_file_url_and_path(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ModelLoadError) as info:
        get_backbone("resnet18", pretrained=True)
    message = str(info.value)
    expected_path = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert f"place resnet18-f37072fd.pth (from https://download.pytorch.org/models/resnet18-f37072fd.pth) " \
           f"at {expected_path}, or pass --weights-file PATH" in message
    assert "\n" not in message and info.value.exit_code == 2


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match=r"nope\.pth: weights file not found \(expected resnet18-f37072fd\.pth"):
        get_backbone("resnet18", pretrained=True, weights_file=tmp_path / "nope.pth")


def test_weights_file_with_a_pickle_payload_is_refused_unrun(tmp_path):
    marker = tmp_path / "payload_ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": Payload()}, path)
    with pytest.raises(ModelLoadError, match=r"evil\.pth: refused to load ImageNet weights for resnet18"):
        get_backbone("resnet18", pretrained=True, weights_file=path)
    assert not marker.exists()


def test_weights_of_another_model_are_named_as_such(tmp_path, fake_imagenet_file):
    path, _ = fake_imagenet_file
    with pytest.raises(ModelLoadError, match=r"not the ImageNet weights of efficientnet_b0"):
        get_backbone("efficientnet_b0", pretrained=True, weights_file=path)
