"""Batch norms folded into the convolutions before them, for inference: the same outputs in fewer passes.

In eval mode a batch norm is a fixed per-channel scale and shift, so ``bn(conv(x))`` equals one convolution
whose weights are scaled and whose bias is shifted. On this CPU that matters most where the network is mostly
depthwise convolutions, each followed by a batch norm that re-reads the whole feature map: EfficientNet-Lite0 at
224 px, two threads, batch 32, ran 47 frames/s with its 49 batch norms and 72 without (1.53x; one thread
28 -> 44). That is the network auto's read-outs extract features with and that a kept read-out model runs in
``predict``.

``torch.fx.experimental.optimization.fuse`` folds only modules whose type is exactly ``nn.Conv2d`` followed by
``nn.BatchNorm2d`` in a traced graph: it left all 49 of Lite0's (its SAME-padded convolutions are a subclass)
and it traces, ~0.2 s. ``fold_batch_norms`` first folds every convolution (subclasses included) followed by a
batch norm inside an ``nn.Sequential`` (vidnet's and Lite0's stages, resnet's downsample branches) without
tracing, then, where batch norms remain (resnet's ``conv1``/``bn1`` attributes) and ``trace`` allows, lets
fx fold the rest.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and not bn.training
            and bn.running_mean is not None and bn.running_var is not None
            and conv.out_channels == bn.num_features)


@torch.no_grad()
def folded_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A copy of ``conv`` (its class kept, e.g. a padding subclass) computing ``bn(conv(x))`` with ``bn``'s
    running statistics."""
    scale = torch.rsqrt(bn.running_var + bn.eps)  # (C_out,)
    gamma = bn.weight if bn.weight is not None else torch.ones_like(scale)
    beta = bn.bias if bn.bias is not None else torch.zeros_like(scale)
    scale = scale * gamma
    bias = conv.bias if conv.bias is not None else torch.zeros_like(scale)
    new = copy.deepcopy(conv)
    new.weight = nn.Parameter(conv.weight * scale.reshape(-1, *[1] * (conv.weight.dim() - 1)), requires_grad=False)
    new.bias = nn.Parameter((bias - bn.running_mean) * scale + beta, requires_grad=False)
    return new


def _fold_sequentials(module: nn.Module) -> None:
    """In place: every (conv, eval-mode batch norm) pair of consecutive entries of an nn.Sequential."""
    for child in module.modules():
        if not isinstance(child, nn.Sequential):
            continue
        for i in range(len(child) - 1):
            if _foldable(child[i], child[i + 1]):
                child[i] = folded_conv(child[i], child[i + 1])
                child[i + 1] = nn.Identity()  # indices stay, so the entries after it keep their names


def count_batch_norms(module: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def fold_batch_norms(module: nn.Module, trace: bool = True) -> tuple[nn.Module, int]:
    """(a copy of ``module`` with its eval-mode batch norms folded into the convolutions before them, how many
    were folded). ``module`` itself is unchanged; one without batch norms comes back as it is. Batch norms in
    training mode, or after anything but a convolution, stay. ``trace``: let torch.fx fold those outside an
    nn.Sequential (~0.2 s of tracing; a module it cannot trace keeps them)."""
    before = count_batch_norms(module)
    if not before:  # nothing to fold (e.g. a backbone folded already): no copy
        return module, 0
    folded = copy.deepcopy(module)
    _fold_sequentials(folded)
    if trace and count_batch_norms(folded) and not module.training:
        from torch.fx.experimental.optimization import fuse

        try:
            folded = fuse(folded)  # a traced copy
        except Exception:  # noqa: BLE001 - any tracing failure: keep what the Sequential pass folded
            pass
    return folded, before - count_batch_norms(folded)
