"""LRCN behaviour: packed padding, masked attention, chunked encoding and streaming equal one pass, training."""
from __future__ import annotations

import pytest
import torch

from vidlstm.errors import UsageError
from vidlstm.models import LRCN, ModelConfig


def small_model(seed: int = 0, **overrides) -> LRCN:
    torch.manual_seed(seed)
    settings = dict(labels=["left", "right", "still"], proj_dim=16, hidden_size=12, image_size=32, num_frames=6)
    settings.update(overrides)
    return LRCN(ModelConfig(**settings)).eval()


def test_output_shapes_and_channels_last_backbone():
    model = small_model()
    out = model(torch.rand(2, 5, 3, 32, 32))
    assert out.logits.shape == (2, 3) and out.step_logits.shape == (2, 5, 3)
    assert out.attention.shape == (2, 5) and out.causal_step_logits.shape == (2, 5, 3)
    assert model.encode_frames(torch.rand(2, 5, 3, 32, 32)).shape == (2, 5, 128 + 16)
    conv = model.backbone.stages.stage1[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()


def test_padded_batch_equals_each_sequence_alone():
    model = small_model()
    lengths = [6, 4, 1]
    clips = [torch.rand(n, 3, 32, 32) for n in lengths]
    batch = torch.rand(3, 6, 3, 32, 32)  # padding holds random frames: they must not leak in
    for i, clip in enumerate(clips):
        batch[i, : len(clip)] = clip
    with torch.no_grad():
        out = model(batch, torch.tensor(lengths))
        for i, clip in enumerate(clips):
            alone = model(clip[None])
            n = len(clip)
            torch.testing.assert_close(out.logits[i], alone.logits[0], rtol=0, atol=1e-5)
            torch.testing.assert_close(out.step_logits[i, :n], alone.step_logits[0], rtol=0, atol=1e-5)
            torch.testing.assert_close(out.causal_step_logits[i, :n], alone.causal_step_logits[0], rtol=0, atol=1e-5)
            torch.testing.assert_close(out.attention[i, :n], alone.attention[0], rtol=0, atol=1e-6)
            assert (out.step_logits[i, n:] == 0).all() and (out.causal_step_logits[i, n:] == 0).all()


def test_attention_is_exactly_zero_on_padding_and_sums_to_one():
    model = small_model()
    feats = torch.randn(4, 7, model.feature_dim)
    lengths = torch.tensor([7, 5, 2, 1])
    attention = model.forward_features(feats, lengths).attention  # (4, 7)
    mask = torch.arange(7)[None] < lengths[:, None]
    assert (attention[~mask] == 0).all()
    assert (attention[mask] > 0).all()
    torch.testing.assert_close(attention.sum(1), torch.ones(4))
    assert attention[3, 0].item() == 1.0  # a one-step clip puts all weight on its only step


def test_lengths_none_equals_full_lengths():
    model = small_model()
    feats = torch.randn(2, 5, model.feature_dim)
    a = model.forward_features(feats)
    b = model.forward_features(feats, torch.tensor([5, 5]))
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=0)


def test_bad_lengths_are_refused():
    model = small_model()
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 3\]"):
        model.forward_features(torch.randn(2, 3, model.feature_dim), torch.tensor([3, 0]))


class InputRecorder(torch.nn.Module):
    """Stands in for the backbone: remembers what it was given, returns 4 numbers per frame."""

    def forward(self, x):
        self.seen = x.clone()
        return x.flatten(1)[:, :4]


def test_backbone_sees_normalised_frames_and_their_differences_in_channels_last():
    model = small_model()  # vidnet: mean 0.5, std 0.25
    model.backbone = InputRecorder()
    frames = torch.rand(2, 3, 3, 32, 32)
    assert model.encode_frames(frames).shape == (2, 3, 4)
    seen = model.backbone.seen.view(2, 3, 6, 32, 32)
    normalised = (frames - 0.5) / 0.25
    torch.testing.assert_close(seen[:, :, :3], normalised)
    assert (seen[:, 0, 3:] == 0).all()  # no frame before the first: zero difference
    torch.testing.assert_close(seen[:, 1:, 3:], normalised[:, 1:] - normalised[:, :-1])
    assert model.backbone.seen.is_contiguous(memory_format=torch.channels_last)


def test_diff_mode_shows_the_backbone_only_the_differences_through_three_channels():
    model = small_model(input_mode="diff")
    assert model.backbone.stages.stage1[0].in_channels == 3
    model.backbone = InputRecorder()
    frames, before = torch.rand(2, 4, 3, 32, 32), torch.rand(2, 3, 32, 32)
    normalised = (frames - 0.5) / 0.25  # vidnet: mean 0.5, std 0.25
    model.encode_frames(frames)
    seen = model.backbone.seen.view(2, 4, 3, 32, 32)
    assert (seen[:, 0] == 0).all()  # no frame before the first: zero difference
    torch.testing.assert_close(seen[:, 1:], normalised[:, 1:] - normalised[:, :-1])
    assert model.backbone.seen.is_contiguous(memory_format=torch.channels_last)
    model.encode_frames(frames, prev_frame=before)
    torch.testing.assert_close(model.backbone.seen.view(2, 4, 3, 32, 32)[:, 0], normalised[:, 0] - (before - 0.5) / 0.25)


def test_two_streams_pass_the_frames_then_their_differences_and_put_the_features_side_by_side():
    model = small_model(input_mode="rgb,diff")
    backbone = model.backbone
    assert backbone.stages.stage1[0].in_channels == 3 and model.streams == 2
    assert model.feature_dim == 2 * small_model(input_mode="rgb").feature_dim
    assert model.projection[0].in_features == model.feature_dim
    frames, before = torch.rand(2, 4, 3, 32, 32), torch.rand(2, 3, 32, 32)
    normalised = (frames - 0.5) / 0.25  # vidnet: mean 0.5, std 0.25
    with torch.no_grad():
        feats = model.encode_frames(frames, prev_frame=before)  # (2, 4, 2D)
        differences = torch.cat([normalised[:, :1] - (before[:, None] - 0.5) / 0.25,
                                 normalised[:, 1:] - normalised[:, :-1]], 1)
        alone = [backbone(x.flatten(0, 1).contiguous(memory_format=torch.channels_last)).view(2, 4, -1)
                 for x in (normalised, differences)]
    torch.testing.assert_close(feats, torch.cat(alone, -1), rtol=1e-5, atol=1e-5)
    model.backbone = InputRecorder()
    model.encode_frames(frames)
    seen = model.backbone.seen.view(2, 2, 4, 3, 32, 32)  # (stream, B, T, 3, H, W)
    torch.testing.assert_close(seen[0], normalised)
    assert (seen[1, :, 0] == 0).all()  # no frame before the first: zero difference
    torch.testing.assert_close(seen[1, :, 1:], normalised[:, 1:] - normalised[:, :-1])
    assert model.backbone.seen.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("mode", ["rgb+diff", "rgb,diff"])
def test_chunked_encoding_with_prev_frame_equals_one_pass(mode):
    model = small_model(input_mode=mode)
    frames = torch.rand(2, 8, 3, 32, 32)
    with torch.no_grad():
        whole = model.encode_frames(frames)  # (2, 8, D)
        first = model.encode_frames(frames[:, :5])
        second = model.encode_frames(frames[:, 5:], prev_frame=frames[:, 4])
        torch.testing.assert_close(torch.cat([first, second], 1), whole, rtol=1e-5, atol=1e-5)
        # Without prev_frame the chunk's first difference is zero: a different feature.
        cold = model.encode_frames(frames[:, 5:])
    assert (cold[:, 0] - whole[:, 5]).abs().max() > 1e-3


def test_rgb_mode_ignores_prev_frame_and_takes_uint8():
    model = small_model(input_mode="rgb")
    frames = torch.randint(0, 256, (1, 3, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        as_float = model.encode_frames(frames.float() / 255)
        as_uint8 = model.encode_frames(frames, prev_frame=torch.rand(1, 3, 32, 32))
    torch.testing.assert_close(as_uint8, as_float, rtol=0, atol=1e-6)
    assert model.backbone.stages.stage1[0].in_channels == 3


def test_stream_step_in_chunks_equals_the_causal_one_pass():
    model = small_model()
    feats = torch.randn(2, 9, model.feature_dim)
    with torch.no_grad():
        expected = model.forward_features(feats).causal_step_logits  # (2, 9, C)
        state, chunks = None, []
        for start, stop in [(0, 4), (4, 5), (5, 9)]:
            logits, state = model.stream_step(feats[:, start:stop], state)
            chunks.append(logits)
    torch.testing.assert_close(torch.cat(chunks, 1), expected, rtol=0, atol=1e-5)


def test_stream_step_needs_a_causal_head():
    model = small_model(causal_head=False)
    assert model(torch.rand(1, 2, 3, 32, 32)).causal_step_logits is None
    with pytest.raises(UsageError, match="no causal head"):
        model.stream_step(torch.randn(1, 2, model.feature_dim))


def test_predict_proba_divides_logits_by_the_temperature():
    model = small_model(temperature=2.0)
    frames = torch.rand(2, 4, 3, 32, 32)
    with torch.no_grad():
        logits = model(frames).logits
        proba = model.predict_proba(frames)
    torch.testing.assert_close(proba, torch.softmax(logits / 2.0, -1))
    torch.testing.assert_close(proba.sum(-1), torch.ones(2))


def moving_square_clips(direction: int, count: int, frames: int = 6, size: int = 32) -> torch.Tensor:
    """(count, T, 3, size, size) clips of a bright square moving left (-1) or right (+1) on noise."""
    generator = torch.Generator().manual_seed(direction + 10)
    clips = torch.rand(count, frames, 3, size, size, generator=generator) * 0.3
    for i in range(count):
        y = int(torch.randint(0, size - 8, (1,), generator=generator))
        for t in range(frames):
            x = 4 + 3 * t if direction > 0 else size - 12 - 3 * t
            clips[i, t, :, y:y + 8, x:x + 8] = 1.0
    return clips


def test_trains_from_scratch_to_tell_left_from_right():
    # A from-scratch backbone must learn (DESIGN: frozen random features are not features).
    model = small_model(labels=["left", "right"], dropout=0.0).train()
    clips = torch.cat([moving_square_clips(-1, 4), moving_square_clips(+1, 4)])  # (8, 6, 3, 32, 32)
    targets = torch.tensor([0] * 4 + [1] * 4)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        out = model(clips)
        loss = torch.nn.functional.cross_entropy(out.logits, targets) + torch.nn.functional.cross_entropy(
            out.causal_step_logits[:, -1], targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]
    with torch.no_grad():
        assert (model.eval()(clips).logits.argmax(1) == targets).all()


def test_centred_keypoints_see_the_path_not_where_it_was_filmed():
    """Shifting every keypoint of a clip by one offset leaves the clip-centred input unchanged, while the
    raw features (and so the model's output) do change; padding never enters the clip mean."""
    model = small_model(keypoint_stage=2, centred_keypoints=True)
    width = 2 * model.config.keypoints
    feats = torch.randn(2, 6, model.feature_dim)
    shifted = feats.clone()
    shifted[..., -width:] += 0.3
    mask = torch.ones(2, 6, dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(model.centred_keypoints(feats, mask), model.centred_keypoints(shifted, mask))
        padded = torch.cat([feats[:1], torch.randn(1, 3, model.feature_dim) * 100], dim=1)  # 3 padded steps
        mask = torch.tensor([[True] * 6 + [False] * 3])
        alone = model.centred_keypoints(feats[:1], torch.ones(1, 6, dtype=torch.bool))
        torch.testing.assert_close(model.centred_keypoints(padded, mask)[:, :6], alone)
        out = model.forward_features(feats)
        assert not torch.allclose(out.logits, model.forward_features(shifted).logits)


def test_centred_keypoints_keep_the_causal_head_causal():
    model = small_model(keypoint_stage=2, centred_keypoints=True)
    feats = torch.randn(1, 6, model.feature_dim)
    later = feats.clone()
    later[:, 4:] += 5.0  # only the future changes
    with torch.no_grad():
        a, b = model.forward_features(feats), model.forward_features(later)
    torch.testing.assert_close(a.causal_step_logits[:, :4], b.causal_step_logits[:, :4])


def test_models_saved_before_keypoint_stage_rebuild_as_they_were():
    old = ModelConfig.from_dict({"labels": ["a", "b"], "backbone": "vidnet"})  # no keypoint_stage key
    assert old.keypoint_stage is None and old.centred_keypoints is False
    model = LRCN(old)
    assert model.backbone.keypoint_stage == 4 and model.centred_keypoints is None
    with pytest.raises(UsageError, match="keypoint_stage"):
        ModelConfig(labels=["a", "b"], keypoint_stage=7)
    with pytest.raises(UsageError, match="centred_keypoints needs keypoints"):
        ModelConfig(labels=["a", "b"], keypoints=0, centred_keypoints=True)
