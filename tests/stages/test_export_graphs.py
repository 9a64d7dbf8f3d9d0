"""The export-friendly graphs compute what the eager LRCN computes (without packing, channels_last, nn.LSTM)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from vidlstm.models import LRCN, ModelConfig
from vidlstm.models.temporal import BiLSTMEncoder
from vidlstm.stages.export_graphs import (
    ClipEncoderGraph,
    LengthMaskedBiLSTM,
    OpLSTM,
    StreamStepGraph,
    TemporalGraph,
    graph_copy,
    reversal_index,
)

ATOL = 1e-5  # same float32 kernels on the same machine: only summation order differs


@pytest.fixture(scope="module", params=["last-stage keypoints", "fine, clip-centred keypoints"])
def model(request):
    torch.manual_seed(0)
    keypoints = {} if request.param == "last-stage keypoints" else dict(keypoint_stage=2, centred_keypoints=True)
    cfg = ModelConfig(labels=["a", "b", "c"], backbone="vidnet", image_size=32, num_frames=8,
                      proj_dim=24, hidden_size=16, num_layers=2, **keypoints)
    return LRCN(cfg).eval()


def test_reversal_index_reverses_within_each_length_and_is_its_own_inverse():
    index = reversal_index(torch.tensor([4, 2, 1]), 4)
    assert index.tolist() == [[3, 2, 1, 0], [1, 0, 2, 3], [0, 1, 2, 3]]
    assert torch.equal(index.gather(1, index), torch.arange(4).expand(3, 4))


@pytest.mark.parametrize("custom_lstm", [False, True])
def test_length_masked_bilstm_equals_the_packed_encoder(custom_lstm):
    torch.manual_seed(1)
    packed = BiLSTMEncoder(6, 5, num_layers=2).eval()
    x = torch.randn(3, 7, 6)  # (B, T, D)
    lengths = torch.tensor([7, 3, 1])
    mask = torch.arange(7)[None] < lengths[:, None]  # (B, T)
    with torch.no_grad():
        expected = packed(x, lengths)  # (B, T, 10)
        got = LengthMaskedBiLSTM(packed.lstm, custom_lstm=custom_lstm)(x, lengths, mask)
    assert got.shape == expected.shape == (3, 7, 10)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
    assert got[1, 3:].abs().max() == 0 and got[2, 1:].abs().max() == 0  # padding is exactly zero
    # Padding seen by the backward direction would change the last real step's backward half:
    with torch.no_grad():
        unpadded = LengthMaskedBiLSTM(packed.lstm)(x, torch.tensor([7, 7, 7]), torch.ones(3, 7, dtype=torch.bool))
    assert (unpadded[1, 2, 5:] - got[1, 2, 5:]).abs().max() > 1e-3


def test_op_lstm_equals_nn_lstm_with_and_without_state():
    torch.manual_seed(2)
    lstm = nn.LSTM(4, 6, num_layers=2, batch_first=True).eval()
    x = torch.randn(2, 5, 4)
    state = (torch.randn(2, 2, 6), torch.randn(2, 2, 6))  # (L, B, H) each
    for given in (None, state):
        with torch.no_grad():
            want_out, (want_h, want_c) = lstm(x, given)
            out, (h, c) = OpLSTM(lstm)(x, given)
        torch.testing.assert_close(out, want_out, atol=ATOL, rtol=0)
        torch.testing.assert_close(h, want_h, atol=ATOL, rtol=0)
        torch.testing.assert_close(c, want_c, atol=ATOL, rtol=0)


def test_clip_encoder_graph_equals_encode_frames(model):
    frames = torch.rand(2, 5, 3, 32, 32)  # (B, T, 3, H, W)
    before = torch.rand(2, 3, 32, 32)
    encoder = ClipEncoderGraph(graph_copy(model, custom_lstm=False))
    with torch.no_grad():
        torch.testing.assert_close(encoder(frames, before), model.encode_frames(frames, prev_frame=before),
                                   atol=ATOL, rtol=0)
        # prev_frame = the first frame reproduces encode_frames without a previous frame (zero first difference)
        torch.testing.assert_close(encoder(frames, frames[:, 0]), model.encode_frames(frames), atol=ATOL, rtol=0)
        one = frames[:1, :1]  # a single frame: the case channels_last would have made torch.export refuse
        torch.testing.assert_close(encoder(one, one[:, 0]), model.encode_frames(one), atol=ATOL, rtol=0)


@pytest.mark.parametrize("custom_lstm", [False, True])
def test_temporal_graph_equals_forward_features_on_padded_clips(model, custom_lstm):
    feats = torch.randn(3, 6, model.feature_dim)  # (B, T, D)
    lengths = torch.tensor([6, 4, 2])
    with torch.no_grad():
        expected = model.forward_features(feats, lengths)
        got = TemporalGraph(graph_copy(model, custom_lstm), custom_lstm=custom_lstm)(feats, lengths)
    assert len(got) == 4
    for have, want in zip(got, expected):
        torch.testing.assert_close(have, want, atol=ATOL, rtol=0)


def test_stream_step_graph_equals_stream_step(model):
    feats = torch.randn(2, 4, model.feature_dim)
    h, c = torch.randn(2, 2, 16), torch.randn(2, 2, 16)  # (L, B, H)
    with torch.no_grad():
        want_logits, (want_h, want_c) = model.stream_step(feats, (h, c))
        logits, h_next, c_next = StreamStepGraph(graph_copy(model, custom_lstm=True))(feats, h, c)
    torch.testing.assert_close(logits, want_logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(h_next, want_h, atol=ATOL, rtol=0)
    torch.testing.assert_close(c_next, want_c, atol=ATOL, rtol=0)
