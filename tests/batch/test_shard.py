"""Shards: disjoint, covering, stable, balanced enough; parsing, torchrun environment, part file names."""
from __future__ import annotations

import pytest

from vidlstm.batch.discover import VideoFile
from vidlstm.batch.shard import Shard, part_of, resolve_shard, select_shard
from vidlstm.errors import UsageError


def _files(n):
    return [VideoFile(f"/data/v{i:04d}.mp4", f"v{i:04d}.mp4") for i in range(n)]


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_are_disjoint_and_cover_every_file(count):
    files = _files(500)
    slices = [select_shard(files, Shard(i, count)) for i in range(count)]
    seen = [f.path for s in slices for f in s]
    assert sorted(seen) == [f.path for f in files]  # covering, and no file twice
    assert len(set(seen)) == len(files)
    sizes = [len(s) for s in slices]
    assert min(sizes) >= 0.7 * len(files) / count  # a hash split: roughly balanced


def test_assignment_depends_on_the_key_only():
    shard = Shard(1, 4)
    before = {f.key for f in select_shard(_files(100), shard)}
    # Another machine mounts the data elsewhere and has more files: the first 100 keep their shard.
    moved = [VideoFile(f"/mnt/other/{f.key}", f.key) for f in _files(150)]
    after = {f.key for f in select_shard(moved, shard)}
    assert before == {k for k in after if int(k[1:5]) < 100}


def test_parse_and_errors():
    assert Shard.parse("2/5") == Shard(2, 5)
    assert Shard.parse(" 0 / 1 ") == Shard(0, 1)
    for bad in ["5/5", "1", "a/b", "-1/3", "1/0"]:
        with pytest.raises(UsageError):
            Shard.parse(bad)


def test_torchrun_environment_and_conflict():
    assert resolve_shard(None, {"RANK": "3", "WORLD_SIZE": "4"}) == Shard(3, 4)
    assert resolve_shard(None, {}) is None
    assert resolve_shard("1/2", {}) == Shard(1, 2)
    with pytest.raises(UsageError, match="torchrun"):
        resolve_shard("1/2", {"RANK": "0", "WORLD_SIZE": "2"})


def test_part_path_round_trip(tmp_path):
    part = Shard(2, 8).part_path(tmp_path / "preds.jsonl")
    assert part.name == "preds.part2-of-8.jsonl"
    assert part_of(part) == (2, 8)
    assert part_of(tmp_path / "preds.jsonl") is None


def test_a_name_that_is_not_utf8_has_a_shard():
    import os

    name = os.fsdecode(b"clips/lat\xe9in.mp4")  # as os.listdir gives it: a surrogate escape
    owners = [i for i in range(3) if Shard(i, 3).contains(name)]
    assert len(owners) == 1 and owners == [i for i in range(3) if Shard(i, 3).contains(name)]


def test_a_torchrun_of_one_process_is_no_shard():
    """WORLD_SIZE=1 splits nothing: the run writes its output itself, and --shard beside it is no conflict."""
    assert resolve_shard(None, {"RANK": "0", "WORLD_SIZE": "1"}) is None
    assert resolve_shard("1/2", {"RANK": "0", "WORLD_SIZE": "1"}) == Shard(1, 2)
