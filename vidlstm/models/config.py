"""ModelConfig: everything needed to rebuild an LRCN model and its input pipeline from config.json alone."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from vidlstm.defaults import CLIP_HEADS, INPUT_MODES, snaps_to_keyframes
from vidlstm.errors import UsageError
from vidlstm.limits import MAX_CLASSES, clip_size_error, MAX_KEYPOINTS, MODEL_INT_RANGES, TEMPERATURE_RANGE, int_range_error, is_finite_number
from vidlstm.models.backbones import backbone_entry, backbone_normalization

MODEL_FORMAT_VERSION = 1
SAMPLERS = ("segment",)
"""Frame samplers a model may name: TSN-style, the centre frame of each of num_frames equal segments."""


@dataclass
class ModelConfig:
    """The model's architecture and input contract; stored as config.json in every model folder."""

    labels: list[str]
    """Class names, in logit order. Unique, non-empty."""
    backbone: str = "vidnet"
    """Registered backbone name (see ``list_backbones()``)."""
    pretrained: bool = False
    """Whether the backbone started from ImageNet weights (recorded; a saved model never reloads them)."""
    input_mode: str = "rgb+diff"
    """"rgb", "rgb+diff" (differences of consecutive sampled frames as 3 extra channels: a cheap motion cue) or
    "diff" (those differences alone, in the frames' 3 channels: what moved, not what is there)."""
    num_frames: int = 16
    """Frames sampled per clip."""
    image_size: int = 112
    """Frames are resized to image_size x image_size before the backbone."""
    sampling: str = "segment"
    """Frame sampler name used by the input pipeline (e.g. "segment": TSN-style one frame per segment)."""
    mean: tuple[float, float, float] | None = None
    """Per-RGB-channel mean subtracted inside the model; None = the backbone's own (filled in)."""
    std: tuple[float, float, float] | None = None
    """Per-RGB-channel std divided inside the model; None = the backbone's own (filled in)."""
    proj_dim: int = 128
    """Width of the projection (Linear + LayerNorm + ReLU) between backbone features and the LSTM."""
    hidden_size: int = 128
    """LSTM hidden size per direction."""
    num_layers: int = 1
    """Stacked LSTM layers."""
    dropout: float = 0.2
    """Dropout after the projection, between LSTM layers and before the classifiers."""
    causal_head: bool = True
    """Also train a unidirectional LSTM head whose per-step logits can be computed while streaming."""
    temperature: float = 1.0
    """Softmax temperature (logits / temperature) set by calibration; used for probabilities only."""
    keypoints: int | None = None
    """Soft-argmax keypoints (vidnet only); None = the backbone's default (8 for vidnet, 0 otherwise)."""
    keypoint_stage: int | None = None
    """Which vidnet stage the soft-argmax reads (1-4, stride 2**stage); None = the last (stride 16), as
    models saved before this field; training uses 2 (a 12x12 map at 48 px)."""
    centred_keypoints: bool = False
    """Also give the BiLSTM each keypoint relative to its mean over the clip (where it moves, not where
    the clip was filmed). The causal head never sees it, so streaming stays causal."""
    clip_head: str = "lstm"
    """Where the clip logits come from: "lstm" (the attention-pooled BiLSTM), "lstm+stats" (plus a linear
    read-out of the clip's feature statistics over time: mean, spread, mean change between frames;
    ``temporal.ClipStatistics``) or "stats" (the read-out alone; the BiLSTM still gives the per-step and
    causal logits). The statistics' standardisation is fitted once on the training clips' features."""
    stabilize: bool = False
    """Undo the camera's pan in every sampled clip before the model sees it (``vidlstm.data.stabilize``), in
    training and in every inference path alike; exported graphs take clips already stabilized."""
    test_views: int = 1
    """Clips of each video scored and their probabilities averaged, by predict, classify and evaluate: 1, the
    segment centres; N, N clips each shifted inside the segments (``data.clips.view_offsets``), decoded together."""
    partner: dict | None = None
    """A second network beside this one, as one model: ``{"weight": w, "config": its ModelConfig dict}``. A clip's
    probabilities are ``(1 - w)`` times this network's plus ``w`` times the partner's, each calibrated by its own
    temperature; the partner is served this network's frames, resized to its own size (``training.partner``). Only
    clip scores mix: per-frame, streaming and timeline scores and exported graphs are this network's."""
    format_version: int = MODEL_FORMAT_VERSION
    """Version of this config format; newer versions are refused by older code."""
    extra: dict = field(default_factory=dict)
    """Free-form, JSON-serialisable notes (e.g. how the model was trained); not used to build it."""

    def __post_init__(self):
        if not isinstance(self.labels, (list, tuple)) or len(self.labels) > MAX_CLASSES:
            raise UsageError(f"labels must be a list of at most {MAX_CLASSES} names (got {_describe(self.labels)})")
        self.labels = [str(label) for label in self.labels]
        if not self.labels or any(not label.strip() for label in self.labels):
            raise UsageError("labels must be a non-empty list of non-empty names")
        duplicates = sorted({label for label in self.labels if self.labels.count(label) > 1})
        if duplicates:
            raise UsageError(f"labels must be unique (repeated: {', '.join(duplicates)})")
        entry = backbone_entry(self.backbone)  # UsageError naming the known backbones
        if self.input_mode not in INPUT_MODES:
            raise UsageError(f"input_mode must be one of {', '.join(INPUT_MODES)} (got {self.input_mode!r})")
        # Bounded before anything is built: config.json is a file, and a file can say num_layers: 100000.
        for name in MODEL_INT_RANGES:
            problem = int_range_error(name, getattr(self, name))
            if problem:
                raise UsageError(problem)
        problem = clip_size_error(self.num_frames, self.image_size)
        if not problem and self.test_views > 1:  # every view of a video is decoded at once
            problem = clip_size_error(self.num_frames * self.test_views, self.image_size)
            problem = problem and f"{problem} x test_views {self.test_views}"
        if problem:
            raise UsageError(problem)
        if self.sampling not in SAMPLERS:
            raise UsageError(f"sampling must be one of {', '.join(SAMPLERS)} (got {self.sampling!r})")
        if not is_finite_number(self.dropout) or not 0.0 <= float(self.dropout) < 1.0:
            raise UsageError(f"dropout must be in [0, 1) (got {self.dropout!r})")
        low, high = TEMPERATURE_RANGE
        if not is_finite_number(self.temperature) or not low <= float(self.temperature) <= high:
            raise UsageError(f"temperature must be a number from {low:g} to {high:g} (got {self.temperature!r})")
        if self.keypoints is None:
            self.keypoints = entry.default_keypoints
        if self.keypoints and not entry.default_keypoints:
            raise UsageError(f"keypoints apply to backbones with a soft-argmax layer (vidnet), not {self.backbone!r}")
        if isinstance(self.keypoints, bool) or not isinstance(self.keypoints, int) or not 0 <= self.keypoints <= MAX_KEYPOINTS:
            raise UsageError(f"keypoints must be an integer from 0 to {MAX_KEYPOINTS} (got {self.keypoints!r})")
        if self.keypoint_stage is not None:
            if isinstance(self.keypoint_stage, bool) or not isinstance(self.keypoint_stage, int) \
                    or not 1 <= self.keypoint_stage <= 4:
                raise UsageError(f"keypoint_stage must be an integer in [1, 4] (got {self.keypoint_stage!r})")
            if not self.keypoints:
                raise UsageError("keypoint_stage needs keypoints > 0 (a vidnet backbone)")
        if not isinstance(self.centred_keypoints, bool):
            raise UsageError(f"centred_keypoints must be true or false (got {self.centred_keypoints!r})")
        if self.centred_keypoints and not self.keypoints:
            raise UsageError("centred_keypoints needs keypoints > 0 (a vidnet backbone)")
        for name in ("stabilize", "pretrained", "causal_head"):  # "no" in an edited config.json is no false
            if not isinstance(getattr(self, name), bool):
                raise UsageError(f"{name} must be true or false (got {getattr(self, name)!r})")
        if self.clip_head not in CLIP_HEADS:
            raise UsageError(f"clip_head must be one of {', '.join(CLIP_HEADS)} (got {self.clip_head!r})")
        if isinstance(self.format_version, bool) or not isinstance(self.format_version, int):
            raise UsageError(f"format_version must be an integer (got {self.format_version!r})")
        if self.format_version > MODEL_FORMAT_VERSION:
            raise UsageError(f"format_version {self.format_version} is newer than this vidlstm "
                             f"understands ({MODEL_FORMAT_VERSION}): upgrade vidlstm")
        default_mean, default_std = backbone_normalization(self.backbone)
        self.mean = _three_floats("mean", default_mean if self.mean is None else self.mean)
        self.std = _three_floats("std", default_std if self.std is None else self.std)
        if min(self.std) <= 0:
            raise UsageError(f"std must be positive (got {self.std})")
        if not isinstance(self.extra, dict):
            raise UsageError(f"extra must be a JSON object (got {type(self.extra).__name__})")
        self.dropout, self.temperature = float(self.dropout), float(self.temperature)
        if self.partner is not None:
            self.partner = _checked_partner(self)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def snaps_to_keyframes(self) -> bool:
        """Whether inference may take, in each segment, the frame cheapest to decode (keyframe-aware sampling) rather
        than the centre: where training saw frames shifted inside the segments (random-offset views), not for a
        statistics read-out, fitted on the segment centres alone. Snapped frames cost that read-out 2.7 points on
        pushfit's held-out folds (0.830 against 0.857; benchmarks/RESULTS.md, session 29)."""
        return snaps_to_keyframes(self.clip_head)

    @property
    def in_channels(self) -> int:
        """Channels the backbone's first conv takes: 3 for "rgb" and "diff", 6 for "rgb+diff"."""
        return INPUT_MODES[self.input_mode]

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (tuples become lists) that ``from_dict`` turns back into this config.
        ``stabilize`` and ``test_views`` are written only where not their defaults: a model that needs neither stays
        readable by a vidlstm without them, and one that needs one is refused there (an unknown key) rather than
        scored otherwise than it was chosen to be."""
        data = asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        if not self.stabilize:
            del data["stabilize"]
        if self.test_views == 1:
            del data["test_views"]
        if self.partner is None:  # older vidlstm reads a model without one; one with a partner it refuses
            del data["partner"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        """Inverse of ``to_dict``; unknown keys are refused (they mean a newer or foreign config)."""
        if not isinstance(data, dict):
            raise UsageError(f"a model config must be a JSON object (got {type(data).__name__})")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"unknown config keys: {', '.join(unknown)}")
        if "labels" not in data:
            raise UsageError("config has no labels")
        return cls(**data)


PARTNER_MUST_MATCH = ("labels", "num_frames", "sampling", "stabilize")
"""What a partner must share with the network it sits beside: it is served that network's frames, and its
probabilities are averaged label by label."""


def _checked_partner(config: ModelConfig) -> dict:
    """``config.partner`` checked, its config normalised (``to_dict``); UsageError naming what is wrong."""
    partner = config.partner
    if not isinstance(partner, dict) or set(partner) != {"weight", "config"}:
        raise UsageError(f"partner must be an object with keys weight and config (got {_describe_partner(partner)})")
    weight = partner["weight"]
    if isinstance(weight, (bool, str)) or not is_finite_number(weight) or not 0.0 < float(weight) < 1.0:
        raise UsageError(f"partner weight must be a number between 0 and 1 (got {weight!r})")
    if not isinstance(partner["config"], dict) or "labels" not in partner["config"]:
        raise UsageError("partner config must be a model config (with labels)")
    if partner["config"].get("partner") is not None:  # refused before it is read: a file can nest them deeply
        raise UsageError("a partner cannot have a partner of its own")
    try:
        inner = ModelConfig.from_dict(partner["config"])
    except UsageError as err:
        raise UsageError(f"partner config: {err}") from None
    for name in PARTNER_MUST_MATCH:
        if getattr(inner, name) != getattr(config, name):
            raise UsageError(f"partner {name} ({getattr(inner, name)!r}) differs from the model's "
                             f"({getattr(config, name)!r}); the partner is served the model's clips")
    return {"weight": float(weight), "config": inner.to_dict()}


def _describe_partner(value) -> str:
    return f"keys {', '.join(sorted(map(str, value)))}" if isinstance(value, dict) else type(value).__name__


def _three_floats(name: str, values) -> tuple[float, float, float]:
    given = list(values) if isinstance(values, (list, tuple)) else [values]
    result = tuple(float(v) for v in given if is_finite_number(v))
    if len(result) != 3 or len(given) != 3:
        raise UsageError(f"{name} must be 3 finite numbers, one per RGB channel (got {values!r})")
    return result


def _describe(value) -> str:
    return f"{len(value)} labels" if isinstance(value, (list, tuple)) else type(value).__name__
