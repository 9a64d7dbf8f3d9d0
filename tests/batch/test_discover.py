"""File discovery: video suffixes case-insensitive, sorted, recursive only when asked, junk skipped."""
from __future__ import annotations

import pytest

from vidlstm.batch.discover import find_videos, is_video_name
from vidlstm.errors import UsageError


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_finds_videos_sorted_case_insensitive_and_skips_other_files(tmp_path):
    for name in ["b.MP4", "a.avi", "c.MkV", "notes.txt", "._a.mp4", "sub/d.mp4"]:
        _touch(tmp_path / name)
    found = find_videos([tmp_path])
    assert [f.key for f in found] == ["a.avi", "b.MP4", "c.MkV"]
    assert [f.path for f in found] == [str(tmp_path / k) for k in ("a.avi", "b.MP4", "c.MkV")]


def test_recursive_walks_subdirectories_but_not_hidden_ones(tmp_path):
    for name in ["z.mp4", "sub/deeper/y.webm", "sub/x.mov", ".cache/w.mp4"]:
        _touch(tmp_path / name)
    keys = [f.key for f in find_videos([tmp_path], recursive=True)]
    assert keys == ["sub/deeper/y.webm", "sub/x.mov", "z.mp4"]


def test_explicit_files_taken_whatever_the_suffix_and_duplicates_dropped(tmp_path):
    odd = _touch(tmp_path / "recording.bin")
    clip = _touch(tmp_path / "clip.mp4")
    found = find_videos([odd, clip, tmp_path])
    assert [f.path for f in found] == [str(clip), str(odd)]
    assert found[1].key == "recording.bin"


def test_missing_input_is_a_usage_error_naming_it(tmp_path):
    with pytest.raises(UsageError, match="nope.mp4: no such file or directory"):
        find_videos([tmp_path / "nope.mp4"])
    with pytest.raises(UsageError, match="nope.mp4: no such file or directory"):
        find_videos([tmp_path / "nope.mp4", tmp_path / "gone"])


def test_a_missing_input_beside_others_is_listed_for_its_error_record(tmp_path):
    """One file of a command's list deleted since its first run: the whole batch was refused, so "re-run the same
    command" could no longer resume it."""
    clip = _touch(tmp_path / "clip.mp4")
    assert [f.path for f in find_videos([tmp_path / "nope.mp4", clip])] == [str(clip), str(tmp_path / "nope.mp4")]


@pytest.mark.parametrize("name, expected", [("A.MOV", True), ("x.gif", True), ("x.jpg", False),
                                            ("._x.mp4", False), (".hidden.mp4", False), ("mp4", False)])
def test_is_video_name(name, expected):
    assert is_video_name(name) is expected


def test_predict_and_train_discovery_follow_one_rule(tmp_path):
    """`predict -r` over a folder and `train`'s class folders take exactly the same files (one is_video_name)."""
    from vidlstm.data.datasets import discover_dataset

    names = ["a.mp4", "B.AVI", ".hidden.mp4", "._a.mp4", "notes.txt", "sub/c.mkv", ".cache/d.mp4"]
    for label in ("left", "right"):
        for name in names:
            _touch(tmp_path / label / name)
    predict_keys = {f.key for f in find_videos([tmp_path], recursive=True)}
    train_names = {item.path.relative_to(tmp_path).as_posix() for item in discover_dataset(tmp_path).items}
    expected = {f"{label}/{name}" for label in ("left", "right") for name in ("a.mp4", "B.AVI", "sub/c.mkv")}
    assert predict_keys == train_names == expected


def test_linked_folders_are_walked_once_and_a_link_back_up_ends(tmp_path):
    import os

    for name in ["data/a.mp4", "elsewhere/b.mp4", "elsewhere/deeper/c.mp4"]:
        _touch(tmp_path / name)
    os.symlink(tmp_path / "elsewhere", tmp_path / "data" / "linked")
    os.symlink(tmp_path / "data", tmp_path / "elsewhere" / "back_up")  # a loop through two links
    os.symlink(tmp_path / "elsewhere", tmp_path / "data" / "again")  # the same folder by a second link
    found = find_videos([tmp_path / "data"], recursive=True)
    names = sorted(os.path.basename(f.path) for f in found)
    assert names == ["a.mp4", "b.mp4", "c.mp4"]


def test_a_tree_deeper_than_pythons_recursion_limit_is_walked(tmp_path):
    import sys

    folders = [tmp_path / "d"]
    for _ in range(sys.getrecursionlimit() + 100):  # os.walk recursed once per level
        folders[-1].mkdir()
        folders.append(folders[-1] / "d")
    deepest = folders[-2]
    try:
        _touch(deepest / "deep.mp4")
        assert [f.path for f in find_videos([tmp_path], recursive=True)] == [str(deepest / "deep.mp4")]
    finally:  # from the bottom up: pytest's clean-up (shutil.rmtree) recurses too
        (deepest / "deep.mp4").unlink(missing_ok=True)
        for folder in reversed(folders[:-1]):
            folder.rmdir()


def test_a_folder_that_cannot_be_listed_is_named_and_the_rest_found(tmp_path, monkeypatch):
    import os

    from vidlstm.batch import discover

    for name in ["a.mp4", "locked/b.mp4", "open/c.mp4"]:
        _touch(tmp_path / name)
    real_scandir = os.scandir

    def scandir(path):
        if os.path.basename(path) == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(discover.os, "scandir", scandir)
    unlisted = []
    assert [f.key for f in find_videos([tmp_path], recursive=True, unlisted=unlisted)] == ["a.mp4", "open/c.mp4"]
    assert unlisted == [f"{tmp_path / 'locked'}: cannot list directory (Permission denied)"]
    with pytest.raises(UsageError, match="locked: cannot list directory"):
        find_videos([tmp_path], recursive=True)


def test_the_walk_order_and_so_a_linked_files_name_do_not_depend_on_the_file_system(tmp_path, monkeypatch):
    import os

    from vidlstm.batch import discover

    _touch(tmp_path / "data" / "real" / "a.mp4")
    for name in ("b_link", "c_link"):
        os.symlink(tmp_path / "data" / "real", tmp_path / "data" / name)
    first = [f.key for f in find_videos([tmp_path / "data"], recursive=True)]
    real_scandir = os.scandir

    class Reversed:
        def __init__(self, path):
            self.entries = list(real_scandir(path))[::-1]

        def __enter__(self):
            return iter(self.entries)

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(discover.os, "scandir", Reversed)
    assert [f.key for f in find_videos([tmp_path / "data"], recursive=True)] == first == ["b_link/a.mp4"]
