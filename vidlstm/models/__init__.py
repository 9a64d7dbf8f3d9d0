"""The model layer: backbone registry, ModelConfig and the LRCN (CNN + BiLSTM + attention) classifier."""
from __future__ import annotations

from vidlstm.models.backbones import (
    Backbone,
    backbone_normalization,
    get_backbone,
    list_backbones,
    register_backbone,
)
from vidlstm.models.classifier import (
    BACKBONE_MODES,
    LRCN,
    LRCNOutput,
    calibrated_softmax,
    default_backbone_mode,
    set_backbone_trainable,
)
from vidlstm.models.config import MODEL_FORMAT_VERSION, ModelConfig

__all__ = [
    "BACKBONE_MODES",
    "Backbone",
    "LRCN",
    "LRCNOutput",
    "MODEL_FORMAT_VERSION",
    "ModelConfig",
    "backbone_normalization",
    "calibrated_softmax",
    "default_backbone_mode",
    "get_backbone",
    "list_backbones",
    "register_backbone",
    "set_backbone_trainable",
]
