"""Export-friendly views of an LRCN's three parts (clip encoder, temporal model, streaming step) for torch.export/ONNX.

Why not export ``LRCN.encode_frames`` / ``forward_features`` / ``nn.LSTM`` as they are:
- ``forward_features`` packs variable-length sequences (``pack_padded_sequence``) and checks the
  lengths with Python ``int()`` — both data-dependent, which torch.export refuses and which the
  legacy ONNX tracer silently bakes in (measured: logits off by 0.1). ``LengthMaskedBiLSTM`` below
  computes the same packed result with index arithmetic only: the backward direction runs over
  each sequence reversed *within its own length*, so it starts on the last real step, as packing does.
- ``encode_frames`` makes the conv input channels_last, for which torch.export's shape reasoning
  adds the guard "batch * time > 1" (a one-frame chunk would be refused); the encoder here is the
  same computation on a contiguous tensor.
- torch.export decomposes ``nn.LSTM`` into a Python loop over time steps, which fixes the clip
  length to the traced one (pytorch/pytorch#115092). For ``.pt2`` programs every LSTM goes through
  the custom operator ``vidlstm::lstm`` (``OpLSTM``), which export keeps whole, so time stays
  dynamic and the fused LSTM kernel runs; loading such a program needs ``import vidlstm.stages.export_graphs``
  (which registers the operator). Measured alternative: ``torch._higher_order_ops.scan`` gives a
  self-contained program, but it took 10 s to load and ~2.5 s per call on a 30-step clip.
  ONNX keeps ``nn.LSTM``, which the TorchScript-based ONNX exporter maps to ONNX's LSTM operator.
Both are checked against the eager model in tests/stages/test_export_graphs.py, so they cannot drift.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from vidlstm.defaults import DIFF_CHANNEL
from vidlstm.models import LRCN
from vidlstm.models.classifier import combine_clip_logits, side_by_side


def reversal_index(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, T) index that reverses each sequence within its length and leaves its padding in place.

    Applying it twice is the identity, so the same index also undoes the reversal.
    """
    positions = torch.arange(steps, device=lengths.device)[None, :]  # (1, T)
    last = lengths.to(positions.dtype)[:, None] - 1  # (B, 1)
    return torch.where(positions <= last, last - positions, positions)  # (B, T)


def gather_steps(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, T, D) reordered along time by index (B, T)."""
    return x.gather(1, index[..., None].expand(-1, -1, x.shape[-1]))  # (B, T, D)


def _direction(lstm: nn.LSTM, layer: int, suffix: str, custom_lstm: bool) -> nn.Module:
    """One direction of one layer of ``lstm`` as its own single-layer, unidirectional LSTM (weights copied)."""
    input_size = lstm.input_size if layer == 0 else 2 * lstm.hidden_size
    single = nn.LSTM(input_size, lstm.hidden_size, num_layers=1, bias=lstm.bias, batch_first=True)
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if lstm.bias else [])
    single.load_state_dict({f"{name}_l0": getattr(lstm, f"{name}_l{layer}{suffix}").detach().clone() for name in names})
    return OpLSTM(single) if custom_lstm else single


@torch.library.custom_op("vidlstm::lstm", mutates_args=())
def lstm_op(x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, weights: list[torch.Tensor],
            has_biases: bool, num_layers: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A unidirectional batch-first LSTM as one opaque operator: torch.export keeps it whole (time stays
    dynamic) and it runs the fused kernel nn.LSTM runs. x (B, T, D), h0/c0 (L, B, H) -> out (B, T, H), h, c."""
    out, h, c = torch.lstm(x, (h0, c0), weights, has_biases, num_layers, 0.0, False, False, True)
    return out, h, c


@lstm_op.register_fake
def _lstm_op_shapes(x, h0, c0, weights, has_biases, num_layers):
    return x.new_empty(x.shape[0], x.shape[1], h0.shape[-1]), torch.empty_like(h0), torch.empty_like(c0)


class OpLSTM(nn.Module):
    """A unidirectional batch-first nn.LSTM (its weights, any number of layers) called through ``vidlstm::lstm``.

    Same call as nn.LSTM: ``(x (B, T, D), (h, c) (L, B, H) or None) -> (out (B, T, H), (h, c))``.
    """

    def __init__(self, lstm: nn.LSTM):
        super().__init__()
        if lstm.bidirectional or not lstm.batch_first or lstm.proj_size:
            raise ValueError("OpLSTM expects a unidirectional, batch_first nn.LSTM without projections")
        self.lstm = lstm  # keeps the parameters (and their names) of the original

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        lstm = self.lstm
        if state is None:
            zeros = x.new_zeros(lstm.num_layers, x.shape[0], lstm.hidden_size)  # (L, B, H)
            state = (zeros, zeros)
        weights = [getattr(lstm, name) for name in lstm._flat_weights_names]
        out, h, c = torch.ops.vidlstm.lstm(x, state[0], state[1], weights, lstm.bias, lstm.num_layers)
        return out, (h, c)  # (B, T, H), (L, B, H) x 2


def graph_copy(model: LRCN, custom_lstm: bool) -> LRCN:
    """An eval-mode float32 copy of ``model`` ready to trace: contiguous weights, and with ``custom_lstm``
    the causal head's LSTM behind the ``vidlstm::lstm`` operator (see the module docstring for both)."""
    graph_model = copy.deepcopy(model).float().eval().to(memory_format=torch.contiguous_format)
    if custom_lstm and graph_model.causal is not None:
        graph_model.causal.lstm = OpLSTM(graph_model.causal.lstm)
    return graph_model


class LengthMaskedBiLSTM(nn.Module):
    """A bidirectional batch-first nn.LSTM over padded sequences with lengths, without packing.

    Equal to ``BiLSTMEncoder`` (packed) on every real step, zero past each length. Inference only:
    the inter-layer dropout of the original is not applied.
    """

    def __init__(self, lstm: nn.LSTM, custom_lstm: bool = False):
        super().__init__()
        if not (lstm.bidirectional and lstm.batch_first) or lstm.proj_size:
            raise ValueError("LengthMaskedBiLSTM expects a bidirectional, batch_first nn.LSTM without projections")
        self.forward_layers = nn.ModuleList(_direction(lstm, k, "", custom_lstm) for k in range(lstm.num_layers))
        self.backward_layers = nn.ModuleList(_direction(lstm, k, "_reverse", custom_lstm)
                                             for k in range(lstm.num_layers))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, D_in), lengths (B,) in [1, T], mask (B, T) True on real steps -> (B, T, 2H)."""
        reverse = reversal_index(lengths, x.shape[1])  # (B, T)
        for forward_lstm, backward_lstm in zip(self.forward_layers, self.backward_layers):
            ahead = forward_lstm(x)[0]  # (B, T, H): padding only follows real steps, so they are unaffected
            behind = gather_steps(backward_lstm(gather_steps(x, reverse))[0], reverse)  # (B, T, H)
            x = torch.cat([ahead, behind], dim=-1)  # (B, T, 2H)
        return x * mask[..., None].to(x.dtype)  # (B, T, 2H), zero on padding like pad_packed_sequence


class ClipEncoderGraph(nn.Module):
    """frames (B, T, 3, H, W) RGB in [0, 1] [+ prev_frame (B, 3, H, W)] -> features (B, T, D).

    ``prev_frame`` (models with frame differences in their input: "rgb+diff", "diff", "rgb,diff") is the frame
    just before ``frames[:, 0]``; pass ``frames[:, 0]`` itself for the start of a clip (its difference is then
    zero, as in ``LRCN.encode_frames`` without a previous frame). Holds only the backbone, so an exported file
    carries only the weights it uses.
    """

    def __init__(self, model: LRCN):
        super().__init__()
        self.backbone = model.backbone
        self.register_buffer("pixel_mean", model.pixel_mean.clone())  # (3, 1, 1)
        self.register_buffer("pixel_std", model.pixel_std.clone())  # (3, 1, 1)
        diff_at = DIFF_CHANNEL[model.config.input_mode]  # None, or where the differences go (as LRCN.encode_frames)
        self.uses_prev_frame = diff_at is not None
        self.diff_only = diff_at == 0  # the differences alone, not beside the frames (or in a pass of their own)
        self.streams = model.streams  # 2: the frames' pass, then the differences' pass, features side by side
        self.feature_dim = model.feature_dim

    def forward(self, frames: torch.Tensor, prev_frame: torch.Tensor | None = None) -> torch.Tensor:
        batch, steps = frames.shape[:2]
        x = (frames - self.pixel_mean) / self.pixel_std  # (B, T, 3, H, W), as LRCN.normalize
        if self.uses_prev_frame:
            before = ((prev_frame - self.pixel_mean) / self.pixel_std)[:, None]  # (B, 1, 3, H, W)
            # roll + where instead of cat([before, x[:, :-1]]): a (T - 1)-long slice makes torch.export
            # specialise "T - 1 != 1", refusing two-frame chunks.
            is_first = torch.arange(steps, device=x.device).view(1, -1, 1, 1, 1) == 0  # (1, T, 1, 1, 1)
            previous = torch.where(is_first, before, x.roll(1, dims=1))  # (B, T, 3, H, W)
            if self.streams == 2:
                x = torch.cat([x, x - previous], dim=0)  # (2B, T, 3, H, W): the frames, then their differences
            else:
                x = x - previous if self.diff_only else torch.cat([x, x - previous], dim=2)  # (B, T, 3 or 6, H, W)
        feats = self.backbone(x.flatten(0, 1))  # (S*B*T, D / S), contiguous input: see the module docstring
        return side_by_side(feats, self.streams).reshape(batch, steps, self.feature_dim)  # (B, T, D), as LRCN


class TemporalGraph(nn.Module):
    """features (B, T, D) + lengths (B,) int64 -> logits (B, C), step_logits (B, T, C), attention (B, T)
    [, causal_step_logits (B, T, C)]: ``LRCN.forward_features`` in eval mode, packing-free."""

    def __init__(self, model: LRCN, custom_lstm: bool = False):
        super().__init__()
        self.projection, self.attention, self.classifier = model.projection, model.attention, model.classifier
        self.centred_keypoints = model.centred_keypoints
        self.clip_head, self.clip_stats, self.stats_classifier = model.config.clip_head, model.clip_stats, model.stats_classifier
        self.bilstm = LengthMaskedBiLSTM(model.temporal.lstm, custom_lstm=custom_lstm)
        self.causal = model.causal

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mask = torch.arange(features.shape[1], device=features.device)[None, :] < lengths[:, None]  # (B, T)
        z = self.projection(features)  # (B, T, P)
        x = z if self.centred_keypoints is None else z + self.centred_keypoints(features, mask)  # LRCN.bilstm_input
        h = self.bilstm(x, lengths, mask)  # (B, T, 2H)
        pooled, attention = self.attention(h, mask)  # (B, 2H), (B, T)
        logits = combine_clip_logits(self.clip_head, self.classifier, self.clip_stats, self.stats_classifier,
                                     features, mask, pooled)  # (B, C), as LRCN.clip_logits in eval mode
        pad = ~mask[..., None]  # (B, T, 1)
        step_logits = self.classifier(h).masked_fill(pad, 0.0)  # (B, T, C)
        if self.causal is None:
            return logits, step_logits, attention
        causal = self.causal(z)[0].masked_fill(pad, 0.0)  # (B, T, C)
        return logits, step_logits, attention, causal


class StreamStepGraph(nn.Module):
    """features (B, t, D) + LSTM state h, c (L, B, H) -> causal step_logits (B, t, C), next h, c.

    ``LRCN.stream_step`` with the state as plain tensors; start a stream with zeros.
    """

    def __init__(self, model: LRCN):
        super().__init__()
        if model.causal is None:
            raise ValueError("the model has no causal head to stream with")
        self.projection, self.causal = model.projection, model.causal

    def forward(self, features: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, ...]:
        step_logits, (h_next, c_next) = self.causal(self.projection(features), (h, c))  # (B, t, C), (L, B, H)
        return step_logits, h_next, c_next


def dynamic_shapes(shapes) -> tuple:
    """torch.export dynamic_shapes for a graph whose inputs have ``shapes`` (ints, or names of dynamic axes): every
    named axis is a Dim (>= 1), shared by name."""
    dims = {name: torch.export.Dim(name, min=1) for shape in shapes for name in shape if isinstance(name, str)}
    return tuple({axis: dims[name] for axis, name in enumerate(shape) if isinstance(name, str)} for shape in shapes)
