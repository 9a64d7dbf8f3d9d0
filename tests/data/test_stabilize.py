"""The camera's pan undone (vidlstm.data.stabilize): recovered where the whole view moves, left alone where only
something in front of a still camera moves, and applied alike to training views and to every inference path."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidlstm.data import stabilize as st

SIZE = 48


def scene(seed: int = 0, size: int = 160) -> np.ndarray:
    """A textured still scene (blurred noise and a few blocks): corners everywhere, as a room has."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3)).astype(np.uint8), (0, 0), 1.5)
    for _ in range(12):
        x, y = rng.integers(0, size - 20, 2)
        img[y:y + 14, x:x + 14] = rng.integers(0, 256, 3)
    return img


def panned(offsets: np.ndarray, seed: int = 0) -> np.ndarray:
    """(T, SIZE, SIZE, 3) views of ``scene`` whose top-left corner sits at ``offsets`` (T, 2) x/y, sub-pixel."""
    img = scene(seed).astype(np.float32)
    frames = [cv2.warpAffine(img, np.float32([[1, 0, -x], [0, 1, -y]]), (SIZE, SIZE), flags=cv2.INTER_LINEAR)
              for x, y in offsets]
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def head_turn(num_frames: int = 16, seed: int = 0) -> np.ndarray:
    """(T, 2) a smooth pan of a few px per frame, as a turning head gives at 48 px."""
    rng = np.random.default_rng(seed)
    return 40 + np.cumsum(rng.normal(0, 1.5, (num_frames, 2)) + [1.2, -0.6], axis=0)


def moving_square(num_frames: int = 16, side: int = 10) -> np.ndarray:
    """A bright square sliding across a still scene: what moves is the subject, not the camera."""
    frames = panned(np.full((num_frames, 2), 40.0))
    for t, f in enumerate(frames):
        x = 4 + 2 * t
        f[18:18 + side, x:x + side] = (250, 240, 230)
    return frames


def test_a_pan_is_recovered_to_a_fraction_of_a_pixel():
    offsets = head_turn()
    path = st.camera_path(panned(offsets))
    truth = -(offsets - offsets[len(offsets) // 2])  # content moves against the view
    assert np.abs(truth).mean() > 2.0  # a real pan, not noise
    assert np.abs(path - truth).max() < 0.5, np.abs(path - truth).max()


def test_stabilized_frames_stand_still_about_the_middle_one():
    frames = panned(head_turn())
    steady = st.stabilize(frames).astype(np.float32)
    inner = (slice(None), slice(12, -12), slice(12, -12))  # away from the replicated edges
    before = np.abs(np.diff(frames.astype(np.float32), axis=0))[inner].mean()
    after = np.abs(np.diff(steady, axis=0))[inner].mean()
    assert after < 0.2 * before, (before, after)
    assert np.array_equal(steady[8], frames[8])  # the middle frame is the anchor
    assert st.camera_motion(frames) > 0.03 and st.camera_motion(steady) < 0.005


def test_a_still_camera_is_left_alone_while_its_subject_moves():
    frames = moving_square()
    assert not np.any(st.camera_path(frames))
    assert st.stabilize(frames) is frames
    assert st.camera_motion(frames) == 0.0


def test_a_large_subject_over_a_still_room_is_not_taken_for_a_pan():
    # A textured board covering a third of the frame slides right; the room behind it keeps still. Whatever the
    # median of the corners follows, a quarter or more of them stand still: the step is not the camera's.
    room = panned(np.full((12, 2), 40.0), seed=1)
    board = scene(seed=2, size=SIZE)[:, :SIZE // 3 + 4]
    frames = room.copy()
    for t, f in enumerate(frames):
        x = 2 * t
        f[4:44, x:x + board.shape[1]] = board[4:44, :SIZE - x][:, :min(board.shape[1], SIZE - x)]
    assert not np.any(st.camera_path(frames))


def test_frames_too_plain_to_track_are_left_alone():
    frames = np.full((8, SIZE, SIZE, 3), 128, np.uint8)
    assert st.stabilize(frames) is frames
    assert st.stabilize(frames[:1]) is not None


def test_large_frames_are_measured_on_a_small_copy_and_shifted_in_their_own_pixels():
    offsets = head_turn()
    big = np.stack([cv2.resize(f, (192, 192), interpolation=cv2.INTER_LINEAR) for f in panned(offsets)])
    path = st.camera_path(big)
    truth = -(offsets - offsets[8]) * 4  # 192 px frames: 4x the 48 px shifts
    assert np.abs(path - truth).mean() < 1.0, np.abs(path - truth).mean()


def test_the_stream_stabilizer_lines_up_consecutive_frames_whatever_the_chunks():
    t = np.arange(24)
    frames = panned(np.stack([40 + 5 * np.sin(t / 3), 40 + 4 * np.cos(t / 4)], axis=1))  # a head looking about
    whole = st.StreamStabilizer()(frames)
    pan = st.StreamStabilizer()
    chunked = np.concatenate([pan(frames[i:i + 5]) for i in range(0, len(frames), 5)])
    assert np.array_equal(whole, chunked)
    inner = (slice(None), slice(12, -12), slice(12, -12))
    before = np.abs(np.diff(frames.astype(np.float32), axis=0))[inner].mean()
    after = np.abs(np.diff(whole.astype(np.float32), axis=0))[inner].mean()
    assert after < 0.25 * before, (before, after)


def test_the_stream_stabilizer_starts_again_when_the_view_has_moved_on():
    offsets = np.stack([np.arange(30) * 1.0 + 20, np.full(30, 40.0)], axis=1)  # a steady pan to one side
    pan = st.StreamStabilizer()
    pan(panned(offsets))
    assert np.abs(pan.path).max() <= SIZE / 4


def test_the_stream_stabilizer_leaves_a_still_camera_alone():
    frames = moving_square()
    assert np.array_equal(st.StreamStabilizer()(frames), frames)


@pytest.fixture
def pan_videos(make_video):
    """Two clips filmed by a turning head and two from a still camera, 32 frames of 64 px each."""
    def big(frames):
        return np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_LINEAR) for f in frames])
    turning = [make_video(f"turn{i}.mp4", frames=big(panned(head_turn(32, seed=i), seed=i))) for i in range(2)]
    still = [make_video(f"still{i}.mp4", frames=big(moving_square(32))) for i in range(2)]
    return turning, still


def test_auto_turns_stabilizing_on_for_a_moving_camera_and_off_for_a_still_one(pan_videos):
    from vidlstm.training.auto import STABILIZE_BAR, auto_stabilize

    turning, still = pan_videos
    on, note = auto_stabilize(turning)
    assert on and note["median_pan"] >= STABILIZE_BAR and note["clips"] == 2
    off, note = auto_stabilize(still)
    assert not off and note["median_pan"] == 0.0
    assert auto_stabilize([turning[0].parent / "missing.mp4"]) == (False, {"rule": "no clip could be read: off",
                                                                          "stabilize": False})


def test_training_views_are_stabilized_as_inference_stabilizes_the_clip(pan_videos):
    from vidlstm.data.clips import load_clip
    from vidlstm.data.views import clip_spec, decode_views

    path = pan_videos[0][0]
    views = decode_views(path, "ab" * 32, 8, SIZE, 2, stabilize=True)
    plain = decode_views(path, "ab" * 32, 8, SIZE, 2)
    clip = load_clip(path, 8, SIZE)  # the evaluation sampling: view 0
    assert np.array_equal(plain[0], clip.frames)
    assert np.array_equal(views[0], st.stabilize(clip.frames))
    assert not np.array_equal(views[0], plain[0])
    assert clip_spec(8, SIZE) == {"num_frames": 8, "image_size": SIZE, "sampling": "segment", "view_rule": 1}
    assert clip_spec(8, SIZE, stabilize=True) == dict(clip_spec(8, SIZE), stabilize=1)


def test_a_stabilized_model_scores_what_it_was_trained_on(pan_videos):
    import torch

    from vidlstm.inference.predictor import Predictor
    from vidlstm.models import LRCN, ModelConfig

    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=["a", "b"], num_frames=8, image_size=SIZE, stabilize=True))
    plain = LRCN(ModelConfig.from_dict(dict(model.config.to_dict(), stabilize=False)))
    plain.load_state_dict(model.state_dict())
    steady, as_is = Predictor(model), Predictor(plain)
    frames = panned(head_turn(8))
    got = steady.score_frames([frames])[0].probs
    assert np.allclose(got, as_is.score_frames([st.stabilize(frames)])[0].probs, atol=1e-6)
    assert not np.allclose(got, as_is.score_frames([frames])[0].probs, atol=1e-4)
    # Chunks (stream, timeline) go through the stream stabilizer, which the plain model never gets.
    assert isinstance(steady.stream_stabilizer(), st.StreamStabilizer) and as_is.stream_stabilizer() is None
    feats, _ = steady.encode_chunk(frames, None, steady.stream_stabilizer())
    want, _ = as_is.encode_chunk(st.StreamStabilizer()(frames))
    assert torch.allclose(feats, want, atol=1e-6)


def test_a_cache_whose_spec_says_stabilized_gets_stabilized_views(pan_videos, tmp_path):
    # The spec decides, not the caller: train, extract and the benchmarks fill caches through the same function.
    from vidlstm.data.datasets import VideoItem
    from vidlstm.data.views import decode_views
    from vidlstm.training import prepare
    from vidlstm.training.distributed import DistContext

    items = [VideoItem(path, "turn") for path in pan_videos[0]]
    shas = prepare.content_hashes(items, tmp_path / "cache")
    steady = prepare.clip_cache(tmp_path / "cache", 8, SIZE, stabilize=True)
    plain = prepare.clip_cache(tmp_path / "cache", 8, SIZE)
    assert steady.folder != plain.folder
    for cache in (steady, plain):
        assert prepare.fill_caches(items, shas, DistContext(), clips=cache, num_frames=8, image_size=SIZE, views=2,
                                   decode_workers=0, progress=False) == [True, True]
    for item, sha in zip(items, shas):
        for cache, stabilize in ((steady, True), (plain, False)):
            want = decode_views(item.path, sha, 8, SIZE, 2, stabilize=stabilize)
            assert all(np.array_equal(cache.get(sha, v)["frames"].numpy(), want[v]) for v in range(2))
    with pytest.raises(ValueError, match="all hold stabilized views, or none"):
        prepare.fill_caches(items, shas, DistContext(), clips=steady, encoders=[(plain, None)], num_frames=8,
                            image_size=SIZE, views=2, decode_workers=0, progress=False)


def test_predict_and_evaluate_can_stabilize_each_clip_once_in_the_decoder(pan_videos, monkeypatch):
    # Off the CPU the pan is undone where the clip is decoded (a worker process), never again beside the model.
    import torch

    from vidlstm.batch.decode import DecodeRequest, decode_request
    from vidlstm.batch.engine import EngineOptions, predict_records
    from vidlstm.data.clips import load_clip
    from vidlstm.data.datasets import VideoItem
    from vidlstm.inference import predictor as predictor_module
    from vidlstm.inference.predictor import Predictor
    from vidlstm.models import LRCN, ModelConfig
    from vidlstm.stages.evaluate import EvaluateConfig, _score_dataset

    torch.manual_seed(0)
    steady = Predictor(LRCN(ModelConfig(labels=["a", "b"], num_frames=8, image_size=SIZE, stabilize=True)))
    assert not steady.decoders_stabilize()  # on a CPU the model's process has the slack: the pan is undone there
    steady.pan_in_decoders = True  # as off the CPU, where the model's process is what limits
    paths = pan_videos[0]
    real, calls = st.stabilize, []
    monkeypatch.setattr(st, "stabilize", lambda frames: calls.append(len(frames)) or real(frames))
    monkeypatch.setattr(predictor_module, "stabilize", lambda frames: pytest.fail("stabilized beside the model"))
    want = [steady.score_frames([real(load_clip(p, 8, SIZE, keyframe_snap=True).frames)], stabilized=True)[0].probs
            for p in paths]

    records = list(predict_records(steady, paths, EngineOptions(workers=0, top_k=2)))
    assert calls == [8, 8] and [r["status"] for r in records] == ["ok", "ok"]
    for record, probs in zip(records, want):
        assert {t["label"]: t["score"] for t in record["top_k"]} == pytest.approx(dict(zip("ab", probs)), abs=1e-5)

    calls.clear()
    probs, errors = _score_dataset(steady, [VideoItem(p, "a") for p in paths],
                                   EvaluateConfig(data="unused", workers=0, progress=False))
    assert calls == [8, 8] and errors == [None, None]
    assert np.allclose(probs, want, atol=1e-5)

    # A timeline's chunks go through one stream stabilizer per video, in the decoder, as one pass would.
    chunks = list(decode_request(DecodeRequest(0, str(paths[0]), 8, SIZE, timeline_fps=30.0, chunk_frames=8,
                                               stabilize=True)))
    plain = list(decode_request(DecodeRequest(0, str(paths[0]), 8, SIZE, timeline_fps=30.0, chunk_frames=8)))
    frames = np.concatenate([c.frames for c in chunks[:-1]])
    assert len(chunks) > 2 and all(c.stabilized for c in chunks[:-1]) and not plain[0].stabilized
    assert np.array_equal(frames, st.StreamStabilizer()(np.concatenate([c.frames for c in plain[:-1]])))
    timeline = list(predict_records(steady, paths[:1], EngineOptions(workers=0, timeline_fps=30.0, chunk_frames=8)))
    assert timeline[0]["status"] == "ok" and timeline[0]["segments"]
