"""Splits: stratified, group-aware (no group on both sides), reproducible, saved and reloaded by name."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vidlstm.data.datasets import LabelledVideos, VideoItem, discover_dataset
from vidlstm.data.splits import cross_validation_folds, load_split, save_split, stratified_order, train_val_split
from vidlstm.errors import UsageError


def make_dataset(n_per_class=20, labels=("a", "b", "c"), groups_per_class=None, root=Path("/data")):
    items = []
    for label in labels:
        for i in range(n_per_class):
            group = f"actor{i % groups_per_class}" if groups_per_class else None
            items.append(VideoItem(root / label / f"{i}.mp4", label, group))
    return LabelledVideos(items, list(labels), root)


@pytest.mark.parametrize("seed", range(5))
def test_group_aware_split_never_shares_a_group(seed):
    ds = make_dataset(n_per_class=24, groups_per_class=8)
    train, val = train_val_split(ds, val_fraction=0.25, seed=seed)
    groups = ds.groups()
    assert set(groups[train]).isdisjoint(groups[val])
    assert len(train) + len(val) == len(ds.items) and len(val) > 0
    assert set(np.concatenate([train, val]).tolist()) == set(range(len(ds.items)))


def test_stratified_split_keeps_class_proportions_and_is_reproducible():
    ds = make_dataset(n_per_class=20)
    train, val = train_val_split(ds, val_fraction=0.2, seed=3)
    assert len(val) == 12
    assert np.bincount(ds.targets()[val]).tolist() == [4, 4, 4]
    again = train_val_split(ds, val_fraction=0.2, seed=3)
    assert np.array_equal(train, again[0]) and np.array_equal(val, again[1])
    assert not np.array_equal(val, train_val_split(ds, val_fraction=0.2, seed=4)[1])


def test_no_validation_when_fraction_is_zero():
    ds = make_dataset(n_per_class=3)
    train, val = train_val_split(ds, val_fraction=0.0)
    assert len(train) == 9 and len(val) == 0


def test_cross_validation_folds_cover_every_item_once_and_respect_groups():
    ds = make_dataset(n_per_class=20, groups_per_class=10)
    folds = cross_validation_folds(ds, folds=5, seed=0)
    assert len(folds) == 5
    seen = np.concatenate([val for _, val in folds])
    assert sorted(seen.tolist()) == list(range(len(ds.items)))
    groups = ds.groups()
    for train, val in folds:
        assert set(groups[train]).isdisjoint(groups[val])


def test_too_small_data_is_a_usage_error():
    ds = make_dataset(n_per_class=1, labels=("a", "b"))
    with pytest.raises(UsageError, match="class 'a' has 1 clip"):
        train_val_split(ds, 0.2)
    grouped = make_dataset(n_per_class=4, groups_per_class=2)
    with pytest.raises(UsageError, match="2 groups are too few"):
        train_val_split(grouped, 0.2)


def test_a_validation_fraction_that_leaves_too_few_to_train_names_the_fraction():
    """`--val-fraction 0.99` said only that the clips were too few for the classes."""
    ds = make_dataset(n_per_class=10, labels=("a", "b", "c"))
    with pytest.raises(UsageError) as err:
        train_val_split(ds, 0.99)
    assert str(err.value) == ("/data: 30 clips are too few for 3 classes with --val-fraction 0.99 (30 held out, 0 "
                              "left to train on, fewer than one per class); lower --val-fraction, add clips, or pass "
                              "--val-fraction 0")
    assert len(train_val_split(ds, 0.9)[0]) == 3  # one clip per class left to train on is allowed


def test_a_few_grouped_clips_per_class_still_split_with_fewer_folds():
    # 3 clips per class cannot fill 5 stratified folds: as many folds as the largest class has (3), not a crash.
    ds = make_dataset(n_per_class=3, labels=tuple("abcdefghij"), groups_per_class=3)
    train, val = train_val_split(ds, val_fraction=0.2, seed=0)
    groups = ds.groups()
    assert set(groups[train]).isdisjoint(groups[val])
    assert len(val) == 10 and len(train) == 20


def test_saved_split_reloads_onto_the_same_items(tmp_path):
    ds = make_dataset(n_per_class=10, root=tmp_path)
    train, val = train_val_split(ds, 0.3, seed=1)
    path = save_split(tmp_path / "split.json", ds, train, val, seed=1, val_fraction=0.3)
    loaded = load_split(path, ds)
    assert np.array_equal(loaded["train"], train) and np.array_equal(loaded["val"], val)
    smaller = ds.subset(range(5))
    with pytest.raises(UsageError, match="not in the data"):
        load_split(path, smaller)



@pytest.mark.parametrize("payload", ["[1, 2]", '{"val": "left/left_000.mp4"}', '{"train": [1]}', '"split"', "{}"])
def test_a_json_file_that_is_no_split_is_named_as_such(tmp_path, payload):
    """A list was an AttributeError traceback; a string for "val" was read letter by letter ("first: l")."""
    ds = make_dataset(n_per_class=3, root=tmp_path)
    (tmp_path / "other.json").write_text(payload)
    with pytest.raises(UsageError, match='other.json: not a split file .a JSON object whose "train" and "val" are '
                                         'lists of clip names'):
        load_split(tmp_path / "other.json", ds)


def test_a_split_of_files_listed_by_absolute_path_reloads_onto_the_data_folder(tmp_path):
    """auto's read-out fits on a manifest in the run folder that lists the videos by absolute path (its split says
    so); `evaluate DATA --split` with DATA the folder must find the same clips."""
    data = make_dataset(n_per_class=10, root=tmp_path / "data")
    listed = LabelledVideos(list(data.items), list(data.labels), tmp_path / "run")  # the files are outside its root
    train, val = train_val_split(listed, 0.3, seed=1)
    path = save_split(tmp_path / "split.json", listed, train, val, seed=1, val_fraction=0.3)
    assert Path(json.loads(path.read_text())["train"][0]).is_absolute()
    loaded = load_split(path, data)
    assert np.array_equal(loaded["train"], train) and np.array_equal(loaded["val"], val)


def test_a_stratified_order_keeps_every_class_in_its_share_in_every_prefix():
    targets = np.array([0] * 30 + [1] * 10 + [2] * 5)
    order, prefix = stratified_order(targets, seed=3, minimum=3)
    assert sorted(order.tolist()) == list(range(45))
    for length in range(9, 46, 9):  # each class within one item of its share (2/3, 2/9, 1/9) of any prefix
        counts = np.bincount(targets[order[:length]], minlength=3)
        assert np.all(np.abs(counts - length * np.array([30, 10, 5]) / 45) <= 1), (length, counts)
    assert np.bincount(targets[order[:prefix]], minlength=3).min() == 3  # the shortest prefix with 3 of each
    assert np.bincount(targets[order[:prefix - 1]], minlength=3).min() == 2
    again, _ = stratified_order(targets, seed=3, minimum=3)
    assert np.array_equal(order, again) and not np.array_equal(order, stratified_order(targets, seed=4)[0])
    assert stratified_order(np.array([0, 0, 1]), seed=0, minimum=5)[1] == 3  # a class smaller than the minimum: all of it


def test_a_class_whose_clips_share_one_group_is_named_before_anything_is_decoded():
    """The group-aware split sent the class's one group to validation, and training then said "no decodable training
    clip for class 'b' (0 file(s) skipped)" though every clip decoded."""
    items = [VideoItem(Path(f"/d/{label}/{i}.mp4"), label, f"{label}{i}" if label != "b" else "gB")
             for label in ("a", "b", "c") for i in range(6)]
    with pytest.raises(UsageError, match=r"class 'b' has all its clips in one group \(gB\), and a group stays on one "
                                         r"side of the split: none is left to train on; give the class clips of "
                                         r"other groups, lower --val-fraction \(now 0.5 of the groups\), or pass "
                                         r"--val-fraction 0"):
        for seed in range(50):  # whichever seed sends gB to validation
            train_val_split(LabelledVideos(items, ["a", "b", "c"], Path("/d")), 0.5, seed=seed)


def test_a_grouped_validation_fraction_over_a_half_is_refused_not_halved():
    """With groups, --val-fraction 0.9 held out about half the clips, and split.json still said 0.9."""
    grouped = make_dataset(n_per_class=10, groups_per_class=10)
    with pytest.raises(UsageError, match=r"--val-fraction 0.9 with groups: a group-aware split holds out one of k >= 2 "
                                         r"folds of the groups, about 1/k of the clips; give 0.5 or less"):
        train_val_split(grouped, 0.9)
    train, val = train_val_split(grouped, 0.5)
    assert len(val) == 15 and len(train) == 15


def test_a_manifests_split_errors_name_the_manifest(tmp_path):
    """With a manifest as DATA the split's errors named the manifest's folder ("." for one in the working
    directory), not the file the user gave."""
    rows = ["path,label,group"]
    for label in ("a", "b"):
        for i in range(4):
            (tmp_path / f"{label}{i}.mp4").write_bytes(b"x")
            rows.append(f"{label}{i}.mp4,{label},g{i % 2}")
    manifest = tmp_path / "clips.csv"
    manifest.write_text("\n".join(rows) + "\n")
    dataset = discover_dataset(manifest)
    assert dataset.root == tmp_path and dataset.source == manifest
    with pytest.raises(UsageError, match=rf"^{manifest}: 2 groups are too few"):
        train_val_split(dataset, 0.2)
    with pytest.raises(UsageError, match=rf"^{manifest}: 2 groups are too few"):
        train_val_split(dataset.subset(range(8)), 0.2)


def test_a_class_folder_linked_from_elsewhere_is_named_inside_data_from_any_working_directory(tmp_path, monkeypatch):
    """A class folder that is a symbolic link was named as given (relative to the working directory), so a resume or
    `evaluate --split` from another folder said its clips were "not in the data"."""
    elsewhere = tmp_path / "elsewhere" / "left"
    elsewhere.mkdir(parents=True)
    (tmp_path / "work" / "data" / "right").mkdir(parents=True)
    for i in range(4):
        (elsewhere / f"l{i}.mp4").write_bytes(b"x")
        (tmp_path / "work" / "data" / "right" / f"r{i}.mp4").write_bytes(b"x")
    (tmp_path / "work" / "data" / "left").symlink_to(elsewhere)
    monkeypatch.chdir(tmp_path / "work")
    ds = discover_dataset("data")
    train, val = train_val_split(ds, 0.25, seed=0)
    path = save_split(tmp_path / "split.json", ds, train, val, seed=0, val_fraction=0.25)
    names = json.loads(path.read_text())
    assert sorted(names["train"] + names["val"]) == [f"left/l{i}.mp4" for i in range(4)] + [f"right/r{i}.mp4"
                                                                                             for i in range(4)]
    monkeypatch.chdir(tmp_path)
    loaded = load_split(path, discover_dataset("work/data"))
    assert np.array_equal(loaded["train"], train) and np.array_equal(loaded["val"], val)
    # A split saved before, naming the linked clips as given in the run's working directory, still reloads there.
    old = dict(names, train=[f"data/{n}" if n.startswith("left/") else n for n in names["train"]],
               val=[f"data/{n}" if n.startswith("left/") else n for n in names["val"]])
    (tmp_path / "old_split.json").write_text(json.dumps(old))
    monkeypatch.chdir(tmp_path / "work")
    loaded = load_split(tmp_path / "old_split.json", discover_dataset("data"))
    assert np.array_equal(loaded["train"], train) and np.array_equal(loaded["val"], val)
