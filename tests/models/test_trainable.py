"""set_backbone_trainable: trainable parameter counts per mode and batch norm kept in eval where frozen."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from vidlstm.errors import UsageError
from vidlstm.models import LRCN, ModelConfig, default_backbone_mode, set_backbone_trainable


def trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_vidnet_counts_per_mode():
    model = LRCN(ModelConfig(labels=["a", "b"], proj_dim=16, hidden_size=8))
    head = trainable(model) - trainable(model.backbone)
    total = sum(p.numel() for p in model.backbone.parameters())
    set_backbone_trainable(model, "frozen")
    assert trainable(model.backbone) == 0 and trainable(model) == head
    set_backbone_trainable(model, "last")
    # stage4: 3x3 conv 128->128 (147,456) + batch norm (256); keypoints: 1x1 conv 128->8 + bias (1,032)
    assert trainable(model.backbone) == 147_456 + 256 + 1_032
    set_backbone_trainable(model, "all")
    assert trainable(model.backbone) == total == 243_080


def test_resnet_last_mode_trains_layer4_and_frozen_batch_norm_stays_in_eval():
    model = LRCN(ModelConfig(labels=["a", "b"], backbone="resnet18", input_mode="rgb", image_size=64))
    layer4 = sum(p.numel() for name, p in model.backbone.named_parameters() if name.startswith("layer4."))
    set_backbone_trainable(model, "last")
    assert trainable(model.backbone) == layer4 == 8_393_728
    model.train()
    assert model.temporal.training and model.backbone.layer4.training
    assert not model.backbone.bn1.training and not model.backbone.layer3[0].bn1.training

    set_backbone_trainable(model, "frozen")
    model.train()
    assert not any(m.training for m in model.backbone.modules())
    before = model.backbone.bn1.running_mean.clone()
    model(torch.rand(2, 2, 3, 64, 64)).logits.sum().backward()
    torch.testing.assert_close(model.backbone.bn1.running_mean, before, rtol=0, atol=0)
    assert model.backbone.conv1.weight.grad is None and model.classifier.weight.grad is not None

    set_backbone_trainable(model, "all")
    assert all(m.training for m in model.backbone.modules())


def test_unknown_mode_and_default_mode():
    model = LRCN(ModelConfig(labels=["a", "b"], proj_dim=8, hidden_size=8))
    with pytest.raises(UsageError, match="backbone mode must be one of frozen, last, all"):
        set_backbone_trainable(model, "half")
    assert default_backbone_mode(model.config) == "all"
    assert default_backbone_mode(ModelConfig(labels=["a"], backbone="resnet18", pretrained=True)) == "frozen"
