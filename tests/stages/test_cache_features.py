"""The feature cache through `extract` and `train`: hits, and invalidation when any part of the key changes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidlstm.data.cache import sha256_file
from vidlstm.data.synth import SynthConfig, generate_dataset, render_clip
from vidlstm.data.transforms import frames_to_tensor
from vidlstm.data.views import decode_views
from vidlstm.io.encode import write_video
from vidlstm.stages import extract
from vidlstm.stages.extract import ExtractConfig
from vidlstm.training.model_setup import fresh_model

BASE = dict(backbone="vidnet", num_frames=4, image_size=32, views=2, progress=False)


@pytest.fixture
def data(tmp_path):
    return generate_dataset(tmp_path / "data", SynthConfig(per_class=2, size=32, min_frames=6, max_frames=8, seed=2),
                            classes=("left", "right"))


def entries(folder):
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*.safetensors")}


def test_second_extract_is_all_hits_and_features_are_the_models(data, tmp_path):
    cache = tmp_path / "cache"
    first = extract.run(ExtractConfig(data=str(data), cache_dir=str(cache), **BASE))
    assert (first.videos, first.already_cached, first.failed) == (4, 0, [])
    written = entries(first.feature_folder)
    assert len(written) == 4 * 2  # videos x views
    second = extract.run(ExtractConfig(data=str(data), cache_dir=str(cache), **BASE))
    assert second.already_cached == 4 and second.feature_folder == first.feature_folder
    assert entries(second.feature_folder) == written  # nothing rewritten

    # The stored features are what the model computes for that view of that file.
    from safetensors.torch import load_file

    path = sorted(data.rglob("*.mp4"))[0]
    sha = sha256_file(path)
    # The model train would build (vidnet's keypoints read stage 2), so extract and train share entries.
    model = fresh_model(["left", "right"], seed=0, num_frames=4, image_size=32, keypoint_stage=2,
                        centred_keypoints=True).eval()
    views = decode_views(path, sha, 4, 32, 2)
    with torch.inference_mode():
        expected = model.encode_frames(frames_to_tensor(views[1])[None])[0]  # (T, D)
    stored = load_file(first.feature_folder / sha[:2] / f"{sha}.v1.safetensors")["features"]
    assert torch.allclose(stored, expected, atol=1e-5)


@pytest.mark.parametrize("change", [
    {"num_frames": 6}, {"image_size": 48}, {"input_mode": "rgb"}, {"seed": 1}, {"backbone": "mobilenet_v3_small"},
])
def test_any_change_to_the_key_misses_the_cache(data, tmp_path, change):
    cache = tmp_path / "cache"
    first = extract.run(ExtractConfig(data=str(data), cache_dir=str(cache), **BASE))
    changed = extract.run(ExtractConfig(data=str(data), cache_dir=str(cache), **{**BASE, **change}))
    assert changed.already_cached == 0 and changed.feature_folder != first.feature_folder
    assert entries(first.feature_folder)  # the old entries are still there for the old settings


def test_changed_file_content_is_re_extracted(data, tmp_path):
    cache = tmp_path / "cache"
    extract.run(ExtractConfig(data=str(data), cache_dir=str(cache), **BASE))
    victim = sorted(data.rglob("*.mp4"))[0]
    write_video(victim, render_clip("right", 7, 32, 42, np.random.default_rng(99)), fps=25)
    again = extract.run(ExtractConfig(data=str(data), cache_dir=str(cache), **BASE))
    assert again.already_cached == 3
    assert (again.feature_folder / sha256_file(victim)[:2] / f"{sha256_file(victim)}.v0.safetensors").is_file()


@pytest.mark.slow
def test_frozen_training_reads_what_extract_wrote(data, tmp_path):
    from vidlstm.stages import train
    from vidlstm.training.config import TrainConfig

    cache = tmp_path / "cache"
    ext = extract.run(ExtractConfig(data=str(data), cache_dir=str(cache), **BASE))
    before = entries(ext.feature_folder)
    run_dir = train.run(TrainConfig(data=str(data), out_dir=str(tmp_path / "run"), cache_dir=str(cache),
                                    train_backbone="frozen", epochs=2, val_fraction=0.5, batch_size=4, **BASE))
    assert entries(ext.feature_folder) == before  # every feature came from the cache
    assert not (cache / "clips").exists()  # and no video was decoded into the clip cache
    assert (run_dir / "model" / "model.safetensors").is_file()


@pytest.mark.slow
def test_a_train_run_that_misses_what_extract_cached_says_why(data, tmp_path, caplog):
    """A `train --cache` with other settings than its `extract` decoded every video again, silently."""
    from vidlstm.stages import train
    from vidlstm.training.config import TrainConfig

    cache = tmp_path / "cache"
    extract.run(ExtractConfig(data=str(data), cache_dir=str(cache), **BASE))
    assert list(json.loads((cache / "extracted.json").read_text())) == [
        "features/" + extract.run(ExtractConfig(data=str(data), cache_dir=str(cache), **BASE)).feature_folder.name]
    common = dict(data=str(data), cache_dir=str(cache), train_backbone="frozen", epochs=1, val_fraction=0.5,
                  batch_size=4, **BASE)
    train.run(TrainConfig(out_dir=str(tmp_path / "same"), **common))
    assert not [r for r in caplog.records if "extract" in r.getMessage()]  # every feature was a hit
    train.run(TrainConfig(out_dir=str(tmp_path / "other"), **{**common, "num_frames": 6}))
    said = [r.getMessage() for r in caplog.records if "extract" in r.getMessage()]
    assert said == [f"{cache}: `vidlstm extract` cached these clips' features with other settings (num_frames 4, "
                    f"not 6); the 4 video(s) not cached as this run reads them are decoded again"]
    caplog.clear()  # more views per clip than extract cached: each video decoded again, and nothing said
    train.run(TrainConfig(out_dir=str(tmp_path / "views"), **{**common, "views": 3}))
    said = [r.getMessage() for r in caplog.records if "extract" in r.getMessage()]
    assert said == [f"{cache}: `vidlstm extract` cached these clips' features with other settings (views 2, not 3); "
                    f"the 4 video(s) not cached as this run reads them are decoded again"]


@pytest.mark.slow
def test_default_extract_fills_what_the_default_train_reads_out(tmp_path, monkeypatch, caplog):
    """`extract` as `train` defaults (auto): the read-out's features, so train decodes the videos for vidnet alone."""
    from vidlstm.stages import train
    from vidlstm.training import prepare
    from vidlstm.training.config import TrainConfig

    data = generate_dataset(tmp_path / "data", SynthConfig(per_class=6, size=32, min_frames=6, max_frames=8, seed=3),
                            classes=("left", "right"))
    cache = tmp_path / "cache"
    ext = extract.run(ExtractConfig(data=str(data), cache_dir=str(cache), num_frames=4, image_size=64,
                                    progress=False))
    assert (ext.videos, ext.already_cached, ext.failed) == (12, 0, [])
    assert len(entries(ext.feature_folder)) == 12  # one view per video, as the read-out caches
    before = entries(ext.feature_folder)
    decoded = []
    real_decoded_views = prepare.decoded_views

    def counting(jobs, *args, **kwargs):
        decoded.extend(job.image_size for job in jobs)
        return real_decoded_views(jobs, *args, **kwargs)

    monkeypatch.setattr(prepare, "decoded_views", counting)
    with caplog.at_level("INFO", logger="vidlstm"):
        run_dir = train.run(TrainConfig(data=str(data), out_dir=str(tmp_path / "run"), cache_dir=str(cache),
                                        num_frames=4, image_size=64, epochs=2, batch_size=8, progress=False))
    assert len(decoded) == 12  # vidnet's clips; the read-out's features all came from extract
    # and the run says so (it said "decoding the training videos once for 1 read-out(s)")
    assert f"auto: every training video's read-out features are cached in {cache}" in caplog.text
    assert "for 1 read-out(s)" not in caplog.text and "`vidlstm extract` cached" not in caplog.text
    # auto with other settings than its extract: said, as for one backbone (auto's shared decode was silent)
    caplog.clear()
    with caplog.at_level("INFO", logger="vidlstm"):
        train.run(TrainConfig(data=str(data), out_dir=str(tmp_path / "run6"), cache_dir=str(cache), num_frames=6,
                              image_size=64, epochs=1, batch_size=8, progress=False))
    said = [r.getMessage() for r in caplog.records if "`vidlstm extract` cached" in r.getMessage()]
    assert len(said) == 1 and "(num_frames 4, not 6)" in said[0], said
    assert entries(ext.feature_folder) == before
    saved = json.loads((run_dir / "candidates" / "pretrained" / "model" / "config.json").read_text())
    assert (saved["backbone"], saved["input_mode"], saved["num_frames"]) == ("efficientnet_lite0", "rgb,diff", 4)


def test_extract_from_a_model_refuses_settings_it_would_drop_and_says_when_train_would_not_read_it(data, tmp_path,
                                                                                                   caplog):
    """`extract --model M --frames 4 --backbone resnet18` took M's settings without a word; a random vidnet's features,
    which `train --backbone vidnet` never reads (it trains its backbone), were filled without one."""
    from vidlstm.errors import UsageError

    with pytest.raises(UsageError) as refused:
        ExtractConfig(data=str(data), cache_dir=str(tmp_path / "c"), model_dir="m", backbone="resnet18", num_frames=4)
    assert str(refused.value) == ("--model m gives the backbone, frames, image size and input mode of the features "
                                  "(what `finetune --from` reads); drop --backbone, --frames")
    extract.run(ExtractConfig(data=str(data), cache_dir=str(tmp_path / "c"), **BASE))
    assert [r.getMessage() for r in caplog.records if "trains its backbone" in r.getMessage()] == [
        "`train --backbone vidnet` trains its backbone (all) and decodes its clips; it reads these features only with "
        "--train-backbone frozen"]
