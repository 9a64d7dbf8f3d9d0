"""The one atomic write: the target holds the old content or the whole new one, and no temporary file stays."""
from __future__ import annotations

import errno

import pytest

from vidlstm.files import atomic_write, atomic_write_bytes, atomic_write_text


def test_replaces_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_text(target, "old\n")
    atomic_write_bytes(target, b"new\n")
    assert target.read_bytes() == b"new\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_failing_write_keeps_the_old_file_and_cleans_up(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old")

    def half_then_fail(tmp):
        tmp.write_bytes(b"ha")
        raise KeyboardInterrupt  # even an interrupt (Ctrl-C mid-save) must not leave a stray file

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_the_temporary_lives_beside_the_target(tmp_path):
    seen = []
    atomic_write(tmp_path / "a.txt", lambda tmp: seen.append(tmp) or tmp.write_text("x"))
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".a.txt.") and seen[0].suffix == ".tmp"


def test_a_failed_write_names_the_file_it_was_for(tmp_path):
    # A write onto a full disk raises an OSError naming no file; the command line's one line names the target.
    def full(tmp):
        tmp.write_bytes(b"ha")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as caught:
        atomic_write(tmp_path / "entry.safetensors", full)
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, str(tmp_path / "entry.safetensors"))
    assert list(tmp_path.iterdir()) == []


def test_an_error_naming_the_temporary_names_the_target_and_others_pass_as_they_are(tmp_path):
    def refused(tmp):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp))

    with pytest.raises(PermissionError) as caught:  # a read-only folder: the hidden temporary means nothing to a user
        atomic_write(tmp_path / "a.txt", refused)
    assert caught.value.filename == str(tmp_path / "a.txt")

    def elsewhere(tmp):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/gone/source")

    with pytest.raises(FileNotFoundError) as caught:
        atomic_write(tmp_path / "a.txt", elsewhere)
    assert caught.value.filename == "/gone/source"
