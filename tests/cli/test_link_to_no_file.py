"""A video path that is a symbolic link to no file: every command that takes one says so in the same words.

`classify` and `predict` said "no such file" of a name the user sees listed, while `stream` said "a symbolic link
to no file (No such file or directory)"."""
from __future__ import annotations

import json
import os

import pytest

from vidlstm.cli import main
from vidlstm.errors import VideoDecodeError
from vidlstm.io import probe

pytestmark = pytest.mark.skipif(os.name != "posix", reason="symbolic links as POSIX makes them")


def dangling(tmp_path):
    link = tmp_path / "clip.mp4"
    os.symlink("gone.mp4", link)
    return link, f"a symbolic link to no file ({tmp_path / 'gone.mp4'} does not exist)"


def test_the_decoders_name_a_link_that_leads_nowhere_and_where_it_ends(tmp_path):
    link, reason = dangling(tmp_path)
    with pytest.raises(VideoDecodeError) as caught:
        probe(link)
    assert caught.value.reason == reason
    os.symlink("clip.mp4", tmp_path / "chain.mp4")  # a link to that link: where the chain ends is named
    with pytest.raises(VideoDecodeError) as caught:
        probe(tmp_path / "chain.mp4")
    assert caught.value.reason == reason
    os.symlink("loop.b", tmp_path / "loop.a")
    os.symlink("loop.a", tmp_path / "loop.b")
    with pytest.raises(VideoDecodeError) as caught:
        probe(tmp_path / "loop.a")
    assert caught.value.reason == "a symbolic link to no file (the links loop back on themselves)"
    with pytest.raises(VideoDecodeError) as caught:
        probe(tmp_path / "absent.mp4")
    assert caught.value.reason == "no such file"  # no link: as before


def test_classify_predict_and_stream_say_the_same_of_it(tmp_path, tiny_model_dir, make_video, capsys):
    link, reason = dangling(tmp_path)
    assert main(["classify", str(link), "--model", str(tiny_model_dir), "--workers", "0", "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"] == reason
    assert captured.err.strip() == f"vidlstm classify: error: {link}: {reason}"

    out = tmp_path / "preds.jsonl"
    predict = ["predict", str(link), "-o", str(out), "--model", str(tiny_model_dir), "--workers", "0",
               "--no-progress"]
    assert main(predict) == 1
    assert [(r["status"], r["error"]) for r in map(json.loads, out.read_text().splitlines())] == [("error", reason)]
    capsys.readouterr()

    assert main(["stream", str(link), "--model", str(tiny_model_dir)]) == 2
    assert capsys.readouterr().err.strip() == f"vidlstm stream: error: {link}: {reason}"

    # Once the link leads to a video, a resume of the same predict classifies it, as it does a file that appeared.
    make_video("gone.mp4", num_frames=12)
    assert main(predict) == 0
    assert [r["status"] for r in map(json.loads, out.read_text().splitlines())] == ["ok"]
