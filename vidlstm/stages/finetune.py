"""The finetune stage: adapt an existing model folder to new clips (same labels: continue; new labels: new heads)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from vidlstm.checkpoint import load_config
from vidlstm.errors import UsageError
from vidlstm.stages import train
from vidlstm.training.config import TrainConfig


def run(config: TrainConfig, on_epoch_end=None) -> Path:
    """Train from ``config.init_from``. The model's own backbone, input mode, frames and size are used (recorded
    in config.json); the backbone stays frozen unless ``train_backbone`` says otherwise, so epochs run
    on cached features in seconds."""
    if not config.init_from:
        raise UsageError("finetune needs --from MODEL_DIR (the model to start from)")
    base = load_config(config.init_from)  # ModelLoadError naming the folder when it is not a model
    if base.clip_head != "lstm" and config.train_backbone not in (None, "frozen"):
        raise UsageError(f"{config.init_from}: its clip head reads feature statistics standardised on frozen "
                         f"features; fine-tune it with --train-backbone frozen")
    # Every architecture field is the model's (config.json records them as the run trained them).
    resolved = replace(config, backbone=base.backbone, pretrained=base.pretrained, input_mode=base.input_mode,
                       num_frames=base.num_frames, image_size=base.image_size, hidden_size=base.hidden_size,
                       dropout=base.dropout, stabilize="on" if base.stabilize else "off", test_views=base.test_views,
                       clip_head=base.clip_head, keypoint_stage=base.keypoint_stage,
                       centred_keypoints=base.centred_keypoints)
    if base.clip_head == "stats" and config.views == TrainConfig.views and resolved.backbone_mode() == "frozen":
        # A statistics read-out is fitted on one view of each clip, as `train` fits it (families.FAMILIES): six
        # views of a 224 px two-pass backbone took fine-tuning on 174 clips ten minutes of decoding, six times
        # what the read-out reads.
        resolved = replace(resolved, views=1)
    return train.run(resolved, on_epoch_end=on_epoch_end)
