"""The content-addressed tensor cache: hashing once, keys that change with spec and content, atomic entries."""
from __future__ import annotations

import hashlib
import os

import torch

import vidlstm.data.cache as cache_mod
from vidlstm.data.cache import ContentHasher, TensorCache, module_fingerprint, sha256_file, spec_digest


def test_sha256_file_matches_hashlib(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)  # more than one read chunk
    path = tmp_path / "v.mp4"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_content_hasher_reads_a_file_once_until_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "v.mp4"
    path.write_bytes(b"first")
    calls = []
    real = cache_mod.sha256_file
    monkeypatch.setattr(cache_mod, "sha256_file", lambda p: calls.append(p) or real(p))
    hasher = ContentHasher(tmp_path / "index.json")
    first = hasher.digest(path)
    assert hasher.digest(path) == first and len(calls) == 1
    hasher.save()
    assert ContentHasher(tmp_path / "index.json").digest(path) == first and len(calls) == 1  # index persisted
    path.write_bytes(b"second, longer")
    assert hasher.digest(path) == hashlib.sha256(b"second, longer").hexdigest() and len(calls) == 2


def test_tensor_cache_hit_miss_and_spec_separation(tmp_path):
    sha = "ab" * 32
    cache = TensorCache(tmp_path, "features", {"backbone": "vidnet", "image_size": 64})
    assert cache.get(sha, 0) is None
    cache.put(sha, 0, {"features": torch.arange(6.0).view(2, 3)})
    got = cache.get(sha, 0)
    assert torch.equal(got["features"], torch.arange(6.0).view(2, 3))
    assert (cache.hits, cache.misses) == (1, 1)
    assert cache.get(sha, 1) is None  # another view is another entry
    other = TensorCache(tmp_path, "features", {"backbone": "vidnet", "image_size": 96})
    assert other.get(sha, 0) is None and other.folder != cache.folder
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporary files
    assert (cache.folder / "spec.json").is_file()


def test_damaged_entry_is_a_miss(tmp_path):
    cache = TensorCache(tmp_path, "clips", {"n": 1})
    path = cache.put("cd" * 32, 0, {"frames": torch.zeros(2, 2, dtype=torch.uint8)})
    path.write_bytes(b"garbage")
    assert cache.get("cd" * 32, 0) is None


def test_spec_digest_ignores_key_order_and_fingerprint_tracks_weights():
    assert spec_digest({"a": 1, "b": 2}) == spec_digest({"b": 2, "a": 1})
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    before = module_fingerprint(net)
    assert module_fingerprint(net) == before
    with torch.no_grad():
        net[0].weight[0, 0, 0, 0] += 1e-3
    assert module_fingerprint(net) != before


def test_training_clips_mix_views_per_segment_and_evaluation_uses_the_centre(tmp_path):
    """Each segment of a training clip takes its frame from some view's same segment, freshly per epoch;
    evaluation always gets view 0."""
    import numpy as np

    from vidlstm.data.loaders import CachedViewDataset

    cache = TensorCache(tmp_path, "clips", {"n": 2})
    views, steps = 4, 6
    for v in range(views):  # frame value = 10 * view + segment, so a frame says where it came from
        frames = torch.stack([torch.full((4, 4, 3), 10 * v + t, dtype=torch.uint8) for t in range(steps)])
        cache.put("a" * 64, v, {"frames": frames})
    train = CachedViewDataset(cache, ["a" * 64], np.array([0]), key="frames", views=views, train=True)
    seen = set()
    for epoch in range(6):
        train.set_epoch(epoch)
        x, _ = train[0]  # (T, 3, H, W) in [0, 1]
        values = (x[:, 0, 0, 0] * 255).round().int().tolist()
        assert [value % 10 for value in values] == list(range(steps))  # segment t's frame stays at t
        seen.add(tuple(value // 10 for value in values))
    assert len(seen) == 6 and len({v for combo in seen for v in combo}) == views  # fresh mixes of every view
    val = CachedViewDataset(cache, ["a" * 64], np.array([0]), key="frames", views=1, train=False)
    assert ((val[0][0][:, 0, 0, 0] * 255).round().int().tolist()) == list(range(steps))


def test_extract_records_the_most_views_it_cached_under_a_spec(tmp_path):
    """A second extract of fewer views rewrote the record to them, and a train of more views than that but fewer than
    were cached was then told "views 2, not 3" about a video it decoded for another reason."""
    cache = TensorCache(tmp_path, "features", {"backbone": "vidnet", "image_size": 64})
    sha = "ab" * 32
    cache.put(sha, 0, {"f": torch.zeros(2)})
    cache.record_extracted(6)
    cache.record_extracted(2)
    assert cache.extracted_with_other_settings([sha], views=3) is None
    assert cache.extracted_with_other_settings([sha], views=8) == "views 6, not 8"
