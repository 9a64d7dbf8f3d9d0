"""Training views decode in worker processes: a decoder that aborts or hangs costs its file, never the run."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from view_fault_decoders import faulty_training_views

from vidlstm.data.datasets import VideoItem
from vidlstm.data.views import decode_views
from vidlstm.logs import install_cli_handler
from vidlstm.training import prepare
from vidlstm.training.decode_jobs import ViewsRequest, decoded_views
from vidlstm.training.distributed import DistContext

FRAMES, SIZE, VIEWS = 4, 32, 2


def _requests(paths):
    return [ViewsRequest(i, str(p), f"{i:064x}", FRAMES, SIZE, VIEWS) for i, p in enumerate(paths)]


def _outcomes(requests, workers, **kwargs):
    """path name -> views array or failure reason, checking each request is answered exactly once."""
    out = {}
    for request, views, reason in decoded_views(requests, workers, **kwargs):
        name = request.path.rsplit("/", 1)[-1]
        assert name not in out, f"{name} answered twice"
        out[name] = views if views is not None else reason
    assert len(out) == len(requests)
    return out


def test_an_aborting_decoder_skips_its_file_and_the_caches_get_the_others(make_video, tmp_path, capsys,
                                                                           monkeypatch):
    paths = [make_video("a.mp4", num_frames=12, seed=1), make_video("abort_b.mp4", num_frames=12, seed=2),
             make_video("c.mp4", num_frames=12, seed=3)]
    shas = [f"{i:064x}" for i in range(3)]
    items = [VideoItem(p, "x") for p in paths]
    install_cli_handler()  # the CLI's log handler: library warnings as one "warning: ..." line on stderr
    # fill_caches as train runs it, with a decoder that aborts on one file, in the worker process.
    monkeypatch.setattr(prepare, "decoded_views", functools.partial(decoded_views, decode_fn=faulty_training_views))
    clips = prepare.clip_cache(tmp_path / "cache", FRAMES, SIZE)
    usable = prepare.fill_caches(items, shas, DistContext(), clips=clips, num_frames=FRAMES, image_size=SIZE,
                                 views=VIEWS, decode_workers=1, progress=False)
    assert usable == [True, False, True]
    err = capsys.readouterr().err
    assert f"warning: {paths[1]}: skipped, decoder crashed (signal 6, SIGABRT)" in err
    for i in (0, 2):
        expected = decode_views(paths[i], shas[i], FRAMES, SIZE, VIEWS)  # (V, T, S, S, 3)
        for v in range(VIEWS):
            assert np.array_equal(clips.get(shas[i], v)["frames"].numpy(), expected[v])
    assert not clips.has(shas[1], 0)


def test_a_hung_decoder_is_timed_out_and_the_next_file_still_decodes(make_video):
    paths = [make_video("hang.mp4", num_frames=8), make_video("ok.mp4", num_frames=8)]
    out = _outcomes(_requests(paths), workers=1, timeout=1.5, decode_fn=faulty_training_views)
    assert out["hang.mp4"] == "timed out after 1.5 s"
    assert out["ok.mp4"].shape == (VIEWS, FRAMES, SIZE, SIZE, 3) and out["ok.mp4"].dtype == np.uint8


def test_in_process_and_worker_decoding_give_the_same_views_and_reasons(make_video, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 64)
    requests = _requests([make_video("a.mp4", num_frames=10, seed=4), broken])
    inline, pooled = _outcomes(requests, workers=0), _outcomes(requests, workers=2)
    assert np.array_equal(inline["a.mp4"], pooled["a.mp4"])
    assert inline["a.mp4"].shape == (VIEWS, FRAMES, SIZE, SIZE, 3)
    assert inline["broken.mp4"] == pooled["broken.mp4"] and inline["broken.mp4"].startswith("cannot decode (")


def test_negative_worker_counts_are_refused():
    with pytest.raises(ValueError, match="decode workers must be >= 0"):
        list(decoded_views([], workers=-1))


def test_views_hold_the_sampled_frames_even_when_the_decoder_recounts_the_video(monkeypatch):
    """A backend that reports another frame count after decoding (PyAV on an index-less MKV) must not make
    the views be rebuilt from that count: each view holds exactly the frames the sampler chose."""
    import dataclasses

    from vidlstm.data import clips as clips_module, views as views_module
    from vidlstm.io.info import DecodeResult, VideoInfo

    info = VideoInfo("v.mkv", 32, 25.0, 1.28, 8, 8, 0, "h264", "pyav")

    def recounting_read(path, choose, size, backends=None, threads=0):
        indices = np.asarray(choose(info, None), dtype=np.int64)
        frames = np.stack([np.full((8, 8, 3), i, np.uint8) for i in indices])  # frame value = its index
        return DecodeResult(frames, "pyav", dataclasses.replace(info, num_frames=31), indices)  # recounted

    monkeypatch.setattr(clips_module, "read_sampled", recounting_read)  # the one read of every view (read_views)
    sha = "ab" * 32
    out = views_module.decode_views("v.mkv", sha, 4, 8, 3)
    for v in range(3):
        assert out[v, :, 0, 0, 0].tolist() == views_module.view_indices(32, 4, v, sha).tolist()


@pytest.mark.parametrize("workers", [0, 1])
def test_past_a_deadline_fill_caches_keeps_what_it_decoded_and_marks_the_rest_not_reached(make_video, tmp_path,
                                                                                         workers):
    paths = [make_video(f"v{i}.mp4", num_frames=8, seed=i) for i in range(5)]
    items, shas = [VideoItem(p, "x") for p in paths], [f"{i:064x}" for i in range(5)]
    clips = prepare.clip_cache(tmp_path / "cache", FRAMES, SIZE)
    clips.put(shas[4], 0, {"frames": torch.zeros(FRAMES, SIZE, SIZE, 3, dtype=torch.uint8)})
    # A deadline already past: the first two videos (at_least) are decoded, the others are left; v4 was cached.
    usable = prepare.fill_caches(items, shas, DistContext(), clips=clips, num_frames=FRAMES, image_size=SIZE,
                                 views=1, decode_workers=workers, progress=False, deadline=0.0, at_least=2)
    assert usable == [True, True, None, None, True]
    assert clips.has(shas[0], 0) and clips.has(shas[1], 0) and not clips.has(shas[2], 0)
    # Without a deadline nothing is left: every video is decoded (or found unusable, False).
    assert prepare.fill_caches(items, shas, DistContext(), clips=clips, num_frames=FRAMES, image_size=SIZE,
                               views=1, decode_workers=workers, progress=False) == [True] * 5


def test_features_are_extracted_by_a_folded_copy_and_match_the_models_own(make_video, tmp_path):
    from vidlstm.data.transforms import frames_to_tensor
    from vidlstm.models import LRCN, ModelConfig
    from vidlstm.models.fold import count_batch_norms

    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=["a", "b"], backbone="vidnet", image_size=SIZE, num_frames=FRAMES,
                             input_mode="rgb+diff"))
    for bn in model.backbone.modules():  # statistics far from the identity, so a wrong fold would show
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.2, 2.0)
    model.train()  # as train hands it over; the copy that extracts is put in eval mode
    paths = [make_video(f"v{i}.mp4", num_frames=8, seed=i) for i in range(2)]
    items, shas = [VideoItem(p, "x") for p in paths], [f"{i:064x}" for i in range(2)]
    features = prepare.feature_cache(tmp_path / "cache", model)
    usable = prepare.fill_caches(items, shas, DistContext(), clips=None, encoders=[(features, model)],
                                 num_frames=FRAMES, image_size=SIZE, views=VIEWS, decode_workers=0, progress=False)
    assert usable == [True, True]
    assert count_batch_norms(model.backbone) == 4  # the model itself keeps its batch norms
    for i in range(2):
        views = decode_views(paths[i], shas[i], FRAMES, SIZE, VIEWS)  # (V, T, S, S, 3)
        with torch.inference_mode():
            expected = model.eval().encode_frames(torch.stack([frames_to_tensor(v) for v in views]))  # (V, T, D)
        for v in range(VIEWS):
            got = features.get(shas[i], v)["features"]
            torch.testing.assert_close(got, expected[v], rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
