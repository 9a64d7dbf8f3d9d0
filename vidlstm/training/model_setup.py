"""Build the model a run trains: a fresh LRCN from the TrainConfig, or an existing model adapted to new labels."""
from __future__ import annotations

import torch

from vidlstm.checkpoint import load_model
from vidlstm.logs import log as logger
from vidlstm.models import LRCN, ModelConfig
from vidlstm.models.backbones import backbone_entry
from vidlstm.training.partner import without_partner

# Parameters that depend on the label set; everything else (backbone, projection, LSTMs, attention) is kept.
HEAD_PREFIXES = ("classifier.", "causal.classifier.", "stats_classifier.")


def fresh_model(labels: list[str], *, seed: int, weights_file=None, **settings) -> LRCN:
    """A new LRCN from ModelConfig ``settings``, initialised from ``seed``.

    The backbone is built first, from the seed alone, so ``vidlstm extract`` and ``vidlstm train`` with
    the same seed and backbone settings get identical backbones (and share feature-cache entries).
    """
    torch.manual_seed(seed)
    return LRCN(ModelConfig(labels=list(labels), **settings), weights_file=weights_file)


def adapt_to_labels(base: LRCN, labels: list[str], seed: int = 0) -> tuple[LRCN, bool]:
    """(model, heads_replaced). The same label set keeps the model (and its label order) as it is; a
    different one gets new, freshly initialised classifier heads on top of the kept backbone and LSTMs."""
    if set(labels) == set(base.config.labels):
        return base, False
    settings = base.config.to_dict()
    settings.update(labels=list(labels), temperature=1.0)  # the old calibration belongs to the old heads
    torch.manual_seed(seed)
    model = LRCN(ModelConfig.from_dict(settings), load_pretrained=False)
    kept = {k: v for k, v in base.state_dict().items() if not k.startswith(HEAD_PREFIXES)}
    missing, unexpected = model.load_state_dict(kept, strict=False)
    assert not unexpected and all(k.startswith(HEAD_PREFIXES) for k in missing), (missing, unexpected)
    return model, True


def keypoint_settings(backbone: str, keypoint_stage: int, centred_keypoints: bool) -> dict:
    """The ModelConfig keypoint fields for ``backbone``: set for vidnet (which has keypoints), none otherwise."""
    if not backbone_entry(backbone).default_keypoints:
        return {}
    return dict(keypoint_stage=keypoint_stage, centred_keypoints=centred_keypoints)


MOTION_TEST_VIEWS = 3
"""Test views of vidnet on the frame differences alone: where the label is a motion or a path, another shift of the
samples inside each segment catches the movement at other moments, and averaging the views helped (benchmarks/RESULTS.md,
"Test views")."""


def resolved_test_views(config) -> int:
    """The trained model's ``test_views``: the user's, else ``MOTION_TEST_VIEWS`` for vidnet on the differences
    alone, else 1 (one keyframe-snapped clip: pushfit's predictions did not change with 3, fight's lost a point)."""
    if config.test_views is not None:
        return int(config.test_views)
    return MOTION_TEST_VIEWS if config.backbone == "vidnet" and config.input_mode == "diff" else 1


def model_for_run(config, labels: list[str]) -> tuple[LRCN, dict]:
    """The model to train and a note of where it came from (stored in the run's metrics)."""
    if not config.init_from:
        model = fresh_model(labels, seed=config.seed, weights_file=config.weights_file, backbone=config.backbone,
                            pretrained=config.pretrained, input_mode=config.input_mode, num_frames=config.num_frames,
                            image_size=config.image_size, hidden_size=config.hidden_size, dropout=config.dropout,
                            clip_head=config.clip_head, stabilize=config.stabilize == "on",
                            test_views=resolved_test_views(config),
                            **keypoint_settings(config.backbone, config.keypoint_stage, config.centred_keypoints))
        return model, {"init": "imagenet" if config.pretrained else "scratch"}
    base = load_model(config.init_from, device="cpu")
    if base.partner is not None:  # fine-tuning trains one network: the partner was fitted to the base's data
        logger.info(f"{config.init_from}: its partner ({base.partner.config.backbone}) is left out: fine-tuning "
                    f"trains the model's own network, and the new model scores clips with it alone")
        base = without_partner(base)
    model, replaced = adapt_to_labels(base, labels, config.seed)
    if replaced:
        logger.info(f"{config.init_from}: {new_labels_note(list(base.config.labels), list(labels))}")
    return model, {"init": str(config.init_from), "new_heads": replaced, "base_labels": list(base.config.labels)}


NAMED_LABELS = 4
"""How many labels new_labels_note names before "and N more"."""


def _named(labels: list[str]) -> str:
    if len(labels) <= NAMED_LABELS + 1:
        return ", ".join(labels)
    return f"{', '.join(labels[:NAMED_LABELS])} and {len(labels) - NAMED_LABELS} more"


def new_labels_note(base: list[str], labels: list[str]) -> str:
    """What fine-tuning onto another label set does: a subset of the base model's labels quietly dropped the others
    (the new heads never predict them), which the run said nothing of."""
    dropped = [label for label in base if label not in labels]
    note = (f"new label set: {len(labels)} label(s) ({_named(labels)}) where the base model has {len(base)}: the "
            f"classifier heads start afresh")
    return note + (f"; the model will no longer predict {_named(dropped)}" if dropped else "")
