"""discover_dataset lists class-folder entries named like videos that are no files (FIFO, link loop ...)."""
from __future__ import annotations

import os
import socket

import pytest

from vidlstm.data.datasets import discover_dataset
from vidlstm.errors import UsageError


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not decoded here")
    return path


@pytest.mark.skipif(os.name != "posix", reason="FIFOs, sockets and symbolic links as POSIX makes them")
def test_fifos_sockets_and_broken_links_are_listed_with_a_reason_never_opened(tmp_path):
    touch(tmp_path / "a" / "good.mp4")
    os.mkfifo(tmp_path / "a" / "pipe.mp4")  # opening it would block: discovery must only stat it
    os.symlink("loop.mp4.other", tmp_path / "a" / "loop.mp4")
    os.symlink("loop.mp4", tmp_path / "a" / "loop.mp4.other")
    os.symlink("gone.mp4", tmp_path / "a" / "dangling.avi")
    os.symlink("good.mp4", tmp_path / "a" / "alias.mp4")  # a link to a video is that video
    (tmp_path / "a" / "folder.mp4").mkdir()  # a folder named like a video is walked, not listed
    touch(tmp_path / "a" / "folder.mp4" / "inner.mp4")
    touch(tmp_path / "b" / "x.mkv")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "b" / "sock.webm"))
        ds = discover_dataset(tmp_path)
    finally:
        server.close()
    names = [ds.relative_name(item) for item in ds.items]
    assert names == ["a/alias.mp4", "a/folder.mp4/inner.mp4", "a/good.mp4", "b/x.mkv"]
    assert [(ds.relative_name(e), e.reason) for e in ds.skipped] == [
        ("a/dangling.avi", f"a symbolic link to no file ({tmp_path / 'a' / 'gone.mp4'} does not exist)"),
        ("a/loop.mp4", "a symbolic link to no file (the links loop back on themselves)"),  # as classify says
        ("a/pipe.mp4", "a FIFO (named pipe), not a file"),
        ("b/sock.webm", "a socket, not a file"),
    ]


@pytest.mark.skipif(os.name != "posix", reason="FIFOs as POSIX makes them")
def test_a_class_of_only_odd_entries_is_a_usage_error_naming_one(tmp_path):
    touch(tmp_path / "a" / "good.mp4")
    (tmp_path / "b").mkdir()
    os.mkfifo(tmp_path / "b" / "pipe.mp4")
    with pytest.raises(UsageError) as info:
        discover_dataset(tmp_path)
    text = str(info.value)
    assert "b: class folder has no video files" in text and "1 skipped, first pipe.mp4: a FIFO" in text
    assert "\n" not in text
