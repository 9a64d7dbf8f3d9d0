"""Batch norms folded into convolutions (models/fold.py): the same outputs, no batch norm left, the original kept."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from vidlstm.models import get_backbone
from vidlstm.models.fold import count_batch_norms, fold_batch_norms


def with_running_statistics(module: nn.Module, seed: int = 0) -> nn.Module:
    """Eval mode with batch-norm statistics and affine parameters far from the identity, so a wrong fold shows."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 2 + 0.2)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.3)
    return module.eval()


@pytest.mark.parametrize("name, channels, size, count", [
    ("vidnet", 6, 64, 4),  # conv_bn_relu stages
    ("efficientnet_lite0", 3, 96, 49),  # SAME-padded convolutions: a Conv2d subclass, which fx's fuse skips
])
def test_every_batch_norm_of_a_sequential_network_folds_without_tracing_and_outputs_stay(name, channels, size, count):
    torch.manual_seed(0)
    net = with_running_statistics(get_backbone(name, in_channels=channels).module)
    x = torch.randn(3, channels, size, size)
    with torch.inference_mode():
        expected = net(x)
    folded, n = fold_batch_norms(net, trace=False)
    assert n == count
    assert count_batch_norms(folded) == 0
    assert count_batch_norms(net) == count  # the original is untouched
    with torch.inference_mode():
        got = folded(x)
        again = net(x)
    torch.testing.assert_close(again, expected, rtol=0, atol=0)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))


def test_batch_norms_outside_a_sequential_need_tracing():
    torch.manual_seed(0)
    net = with_running_statistics(get_backbone("resnet18").module)
    total = count_batch_norms(net)  # 20: 17 as conv/bn attributes, 3 in downsample Sequentials
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        expected = net(x)
    partly, n_partly = fold_batch_norms(net, trace=False)
    assert n_partly == 3 and count_batch_norms(partly) == total - 3
    fully, n_fully = fold_batch_norms(net, trace=True)
    assert n_fully == total and count_batch_norms(fully) == 0
    with torch.inference_mode():
        for module in (partly, fully):
            got = module(x)
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))


def test_a_batch_norm_in_training_mode_or_after_no_convolution_is_left():
    torch.manual_seed(0)
    training = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))  # training mode: batch statistics
    folded, n = fold_batch_norms(training)
    assert n == 0 and count_batch_norms(folded) == 1
    after_relu = with_running_statistics(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4)))
    folded, n = fold_batch_norms(after_relu)
    assert n == 0 and count_batch_norms(folded) == 1
    with_bias = with_running_statistics(nn.Sequential(nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4), nn.ReLU()))
    x = torch.randn(2, 3, 9, 9)
    folded, n = fold_batch_norms(with_bias)
    assert n == 1 and isinstance(folded[1], nn.Identity)
    torch.testing.assert_close(folded(x), with_bias(x), rtol=1e-5, atol=1e-5)


def test_a_predictor_folds_its_backbone_and_scores_the_same(tiny_model_dir):
    from vidlstm.inference import Predictor

    plain = Predictor.from_dir(tiny_model_dir, device="cpu", fold=False)
    folded = Predictor.from_dir(tiny_model_dir, device="cpu")
    assert count_batch_norms(plain.model.backbone) > 0
    assert count_batch_norms(folded.model.backbone) == 0
    frames = [torch.randint(0, 256, (plain.config.num_frames, plain.config.image_size, plain.config.image_size, 3),
                            generator=torch.Generator().manual_seed(i), dtype=torch.uint8).numpy() for i in range(2)]
    for a, b in zip(plain.score_frames(frames), folded.score_frames(frames)):
        assert a.probs.argmax() == b.probs.argmax()
        assert abs(a.probs - b.probs).max() < 1e-4
