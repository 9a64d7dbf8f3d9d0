"""LRCN: per-frame CNN features -> projection -> BiLSTM + attention -> clip and per-step logits (+ causal head)."""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from vidlstm.defaults import BACKBONE_MODES, DIFF_CHANNEL, FEATURE_STREAMS
from vidlstm.defaults import default_backbone_mode as _default_mode_rule
from vidlstm.errors import UsageError
from vidlstm.models.backbones import get_backbone
from vidlstm.models.config import ModelConfig
from vidlstm.models.temporal import (AttentionPooling, BiLSTMEncoder, CausalHead, CentredKeypoints, ClipStatistics,
                                     LSTMState, StatsStream, check_lengths, step_mask)



def calibrated_softmax(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Calibrated probabilities: softmax(logits / temperature) over the last dim, in float32."""
    return torch.softmax(logits.float() / float(temperature), dim=-1)


def combine_clip_logits(head: str, classifier: nn.Module, clip_stats: nn.Module | None, stats_classifier: nn.Module | None,
                        feats: torch.Tensor, mask: torch.Tensor, pooled: torch.Tensor,
                        dropout: nn.Module = nn.Identity()) -> torch.Tensor:
    """Clip logits (B, C) as ``head`` (config.clip_head) says: the BiLSTM's read-out of ``pooled`` (B, 2H), the
    statistics read-out of ``feats`` (B, T, D) over ``mask`` (B, T), or their sum. The LRCN and its exported
    temporal graph both call this."""
    logits = classifier(dropout(pooled)) if head != "stats" else 0.0
    if head != "lstm":
        logits = logits + stats_classifier(dropout(clip_stats(feats, mask)))  # (B, C)
    return logits


def side_by_side(feats: torch.Tensor, streams: int) -> torch.Tensor:
    """(S*N, D) backbone features of ``streams`` passes stacked along the batch -> (N, S*D), each row's passes side by
    side (input mode "rgb,diff": a frame's features, then its difference's). The LRCN and its exported encoder call it."""
    return torch.cat(feats.chunk(streams), dim=1) if streams > 1 else feats


class LRCNOutput(NamedTuple):
    """What a forward pass returns (a NamedTuple, so export tools can flatten it)."""

    logits: torch.Tensor  # (B, C) clip logits
    step_logits: torch.Tensor  # (B, T, C) per-step logits of the bidirectional model; 0 on padding
    attention: torch.Tensor  # (B, T) attention weights; sum to 1, exactly 0 on padding
    causal_step_logits: torch.Tensor | None  # (B, T, C) causal head's per-step logits; 0 on padding


class LRCN(nn.Module):
    """The video classifier. Input: frames (B, T, 3, H, W) RGB in [0, 1] (uint8 0-255 is also accepted).

    Normalisation and frame differences happen inside, so an exported model takes raw [0, 1] RGB.
    ``config.pretrained`` loads ImageNet backbone weights at construction (``weights_file`` or
    the torch hub cache) unless ``load_pretrained`` is False, as when a saved model is rebuilt.
    """

    def __init__(self, config: ModelConfig, *, weights_file=None, load_pretrained: bool = True):
        super().__init__()
        self.config = config
        backbone = get_backbone(config.backbone, pretrained=config.pretrained and load_pretrained,
                                in_channels=config.in_channels,
                                weights_file=weights_file if load_pretrained else None,
                                keypoints=config.keypoints, keypoint_stage=config.keypoint_stage)
        # channels_last: measured several times faster for CPU convolutions (DESIGN, performance).
        self.backbone = backbone.module.to(memory_format=torch.channels_last)
        self.backbone_meta = backbone.meta
        self.streams = FEATURE_STREAMS.get(config.input_mode, 1)  # 2: the frames and their differences, each a pass
        self.feature_dim = backbone.feature_dim * self.streams
        self.backbone_mode = "all"  # see set_backbone_trainable
        # Not persistent: mean/std live in config.json, the single source of truth.
        self.register_buffer("pixel_mean", torch.tensor(config.mean).view(3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(config.std).view(3, 1, 1), persistent=False)
        self.projection = nn.Sequential(
            nn.Linear(self.feature_dim, config.proj_dim),
            nn.LayerNorm(config.proj_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
        )
        # Clip-relative keypoints join the BiLSTM's input only (they need the whole clip's mean).
        self.centred_keypoints = (CentredKeypoints(config.keypoints, config.proj_dim)
                                  if config.centred_keypoints else None)
        self.temporal = BiLSTMEncoder(config.proj_dim, config.hidden_size, config.num_layers, config.dropout)
        self.attention = AttentionPooling(2 * config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(2 * config.hidden_size, config.num_classes)
        # A linear read-out of the clip's feature statistics beside or instead of the BiLSTM's (config.clip_head).
        with_stats = config.clip_head != "lstm"
        self.clip_stats = ClipStatistics(self.feature_dim) if with_stats else None
        self.stats_classifier = nn.Linear(3 * self.feature_dim, config.num_classes) if with_stats else None
        self.causal = (CausalHead(config.proj_dim, config.hidden_size, config.num_classes, config.num_layers,
                                  config.dropout) if config.causal_head else None)
        # A second network whose clip probabilities are averaged with this one's (config.partner); its weights are
        # this model's (state-dict keys "partner.*"), saved and loaded with them.
        self.partner = (LRCN(ModelConfig.from_dict(config.partner["config"]), load_pretrained=False)
                        if config.partner else None)

    # --- frames -> features --------------------------------------------------------------------------

    def normalize(self, frames: torch.Tensor) -> torch.Tensor:
        """(..., 3, H, W) RGB in [0, 1] (or uint8) -> normalised float, same shape."""
        if frames.dtype == torch.uint8:
            frames = frames.float() / 255.0
        return (frames - self.pixel_mean) / self.pixel_std  # pixel_mean/std: (3, 1, 1)

    def encode_frames(self, frames: torch.Tensor, prev_frame: torch.Tensor | None = None) -> torch.Tensor:
        """Per-frame backbone features (B, T, D) of frames (B, T, 3, H, W) RGB in [0, 1].

        ``prev_frame`` (B, 3, H, W): the frame just before ``frames[:, 0]``, so that encoding a long
        video chunk by chunk gives the same frame differences (and features) as one pass; without
        it the first frame's difference is zero. This is what a frozen-backbone feature cache stores.
        """
        if frames.dim() != 5 or frames.shape[2] != 3:
            raise ValueError(f"frames must be (B, T, 3, H, W) RGB, got {tuple(frames.shape)}")
        batch, steps, _, height, width = frames.shape
        x = self.normalize(frames)  # (B, T, 3, H, W)
        # Written straight into one channels_last buffer: measured ~1.5x faster than cat + contiguous,
        # which matters for a backbone as cheap as vidnet. Slice assignment keeps autograd working.
        # Two streams: the frames' pass then the differences' pass, stacked along the batch: (S*B*T, C, H, W).
        inputs = torch.empty(self.streams * batch * steps, self.config.in_channels, height, width, dtype=x.dtype,
                             device=x.device, memory_format=torch.channels_last)  # (S*B*T, C, H, W)
        if self.streams == 2:
            inputs[:batch * steps].view(batch, steps, 3, height, width)[:] = x  # the frames' pass
        by_clip = inputs[(self.streams - 1) * batch * steps:].view(batch, steps, -1, height, width)  # (B, T, C, H, W)
        diff_at = DIFF_CHANNEL[self.config.input_mode]  # None, or where the differences go
        if diff_at != 0:
            by_clip[:, :, :3] = x
        if diff_at is not None:
            diff = by_clip[:, :, diff_at:diff_at + 3]  # (B, T, 3, H, W), same memory
            diff[:, 1:] = x[:, 1:] - x[:, :-1]  # differences of consecutive frames
            if prev_frame is None:
                diff[:, 0] = 0.0  # no frame before the first: zero difference
            else:
                diff[:, 0] = x[:, 0] - self.normalize(prev_frame)  # (B, 3, H, W)
        feats = side_by_side(self.backbone(inputs), self.streams)  # (B*T, D)
        return feats.reshape(batch, steps, -1)  # (B, T, D)

    # --- features -> logits --------------------------------------------------------------------------

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor | None = None) -> LRCNOutput:
        """frames (B, T, 3, H, W) in [0, 1]; lengths (B,) real frames per clip (None = all T)."""
        return self.forward_features(self.encode_frames(frames), lengths)

    def forward_features(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> LRCNOutput:
        """The temporal model and heads on per-frame features (B, T, D), e.g. from the feature cache."""
        batch, steps = feats.shape[:2]
        lengths = check_lengths(lengths, batch, steps)
        mask = step_mask(lengths, batch, steps, feats.device)  # (B, T)
        z = self.projection(feats)  # (B, T, P)
        h = self.temporal(self.bilstm_input(z, feats, mask), lengths)  # (B, T, 2H), zero past each length
        pooled, attention = self.attention(h, mask)  # (B, 2H), (B, T)
        logits = self.clip_logits(feats, mask, pooled)  # (B, C)
        pad = ~mask[..., None]  # (B, T, 1)
        step_logits = self.classifier(self.dropout(h)).masked_fill(pad, 0.0)  # (B, T, C)
        causal = None
        if self.causal is not None:
            causal = self.causal(z)[0].masked_fill(pad, 0.0)  # (B, T, C)
        return LRCNOutput(logits, step_logits, attention, causal)

    def clip_logits(self, feats: torch.Tensor, mask: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        """Clip logits (B, C) from the pooled BiLSTM output (B, 2H) and/or the features' statistics (config.clip_head)."""
        return combine_clip_logits(self.config.clip_head, self.classifier, self.clip_stats, self.stats_classifier,
                                   feats, mask, pooled, self.dropout)

    def bilstm_input(self, z: torch.Tensor, feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The BiLSTM's input (B, T, P): the projection ``z``, plus the clip-centred keypoints if configured."""
        if self.centred_keypoints is None:
            return z
        return z + self.centred_keypoints(feats, mask)

    def stats_stream(self) -> StatsStream:
        """The statistics read-out over a stream, step by step (``StatsStream``): what streams a model whose clip
        logits are that read-out (``clip_head = "stats"``), in ``vidlstm stream`` and in its exported graph."""
        if self.config.clip_head != "stats":
            raise ValueError("the model's clip logits are not its statistics read-out")
        return StatsStream(self.clip_stats, self.stats_classifier)

    def stream_step(self, feats_chunk: torch.Tensor, state: LSTMState | None = None
                    ) -> tuple[torch.Tensor, LSTMState]:
        """Causal per-step logits (B, t, C) for the next chunk of features (B, t, D), carrying the LSTM state.

        Start with ``state=None``; feeding a sequence chunk by chunk gives the same logits as
        ``forward_features(...).causal_step_logits`` over the whole sequence.
        """
        if self.causal is None:
            raise UsageError("this model has no causal head (config.causal_head is false): it cannot stream")
        return self.causal(self.projection(feats_chunk), state)

    def logits_to_proba(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated class probabilities: softmax(logits / config.temperature) over the last dim."""
        return calibrated_softmax(logits, self.config.temperature)

    def predict_proba(self, frames: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Calibrated clip probabilities (B, C) for frames (B, T, 3, H, W) in [0, 1], the partner's mixed in."""
        return self.with_partner(self.logits_to_proba(self(frames, lengths).logits), self.partner_proba(frames))

    def partner_proba(self, frames: torch.Tensor) -> torch.Tensor | None:
        """The partner's calibrated clip probabilities (B, C) for this model's frames (B, T, 3, H, W), resized to
        the partner's image size; None without a partner."""
        if self.partner is None:
            return None
        if frames.dtype == torch.uint8:
            frames = frames.float() / 255.0
        batch, steps = frames.shape[:2]
        size = self.partner.config.image_size
        # "area": each output pixel the mean of the input pixels it covers, as a decoder's downscale to that size.
        small = F.interpolate(frames.flatten(0, 1).float(), size=(size, size), mode="area")  # (B*T, 3, s, s)
        return self.partner.predict_proba(small.reshape(batch, steps, 3, size, size))

    def with_partner(self, probs: torch.Tensor, partner: torch.Tensor | None) -> torch.Tensor:
        """This network's calibrated probabilities (..., C) mixed with the partner's by its weight."""
        if partner is None:
            return probs
        weight = self.config.partner["weight"]
        return (1.0 - weight) * probs.float() + weight * partner.float()

    # --- training modes ------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> "LRCN":
        """As nn.Module.train, but the frozen part of the backbone stays in eval (batch-norm statistics fixed)."""
        super().train(mode)
        if mode and self.backbone_mode != "all":
            self.backbone.eval()
            if self.backbone_mode == "last":
                for path in self.backbone_meta["last_stages"]:
                    self.backbone.get_submodule(path).train()
        return self


def set_backbone_trainable(model: LRCN, mode: str) -> LRCN:
    """Which backbone weights train: "frozen" (none; batch norm stays in eval), "last" (only the
    backbone's last stage(s), from its registry meta), or "all". The temporal model always trains.
    """
    if mode not in BACKBONE_MODES:
        raise UsageError(f"backbone mode must be one of {', '.join(BACKBONE_MODES)} (got {mode!r})")
    trainable = set()
    if mode == "all":
        trainable = {id(p) for p in model.backbone.parameters()}
    elif mode == "last":
        trainable = {id(p) for path in model.backbone_meta["last_stages"]
                     for p in model.backbone.get_submodule(path).parameters()}
    for param in model.backbone.parameters():
        param.requires_grad_(id(param) in trainable)
    model.backbone_mode = mode
    model.train(model.training)  # re-apply train/eval so the frozen part's batch norm switches now
    return model


def default_backbone_mode(config: ModelConfig) -> str:
    """The backbone mode a model of ``config`` trains in by default (vidlstm.defaults.default_backbone_mode)."""
    return _default_mode_rule(config.pretrained)
