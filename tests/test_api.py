"""The Python API mirrors the Hugging Face video-classification pipeline: sorted [{"label", "score"}]."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from vidlstm import VideoClassifier
from vidlstm.errors import UsageError, VideoDecodeError, VidlstmError


def test_predict_returns_all_labels_sorted(make_video, tiny_model_dir):
    clf = VideoClassifier.load(tiny_model_dir)
    preds = clf.predict(make_video())
    assert sorted(p["label"] for p in preds) == ["left", "right", "up"]
    scores = [p["score"] for p in preds]
    assert scores == sorted(scores, reverse=True)
    assert math.isclose(sum(scores), 1.0, abs_tol=1e-4)
    assert len(clf.predict(make_video(), top_k=1)) == 1


def test_predict_same_input_same_output(make_video, tiny_model_dir):
    clf = VideoClassifier.load(tiny_model_dir)
    path = make_video()
    assert clf.predict(path) == clf.predict(path)


def test_unreadable_file_raises_decode_error(tmp_path, tiny_model_dir):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(VideoDecodeError, match="bad.mp4"):
        VideoClassifier.load(tiny_model_dir).predict(bad)


@pytest.mark.parametrize("workers", [0, 1])
def test_predict_many_keeps_order_and_turns_bad_files_into_error_records(tmp_path, make_video, tiny_model_dir,
                                                                         workers):
    clf = VideoClassifier.load(tiny_model_dir)
    good = [make_video(f"v{i}.mp4", seed=i) for i in range(3)]
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    paths = [good[0], bad, good[1], good[2]]
    records = list(clf.predict_many(paths, top_k=2, workers=workers, batch_size=2))
    assert [r["path"] for r in records] == [str(p) for p in paths]
    assert [r["status"] for r in records] == ["ok", "error", "ok", "ok"]
    assert records[1]["error"].startswith("cannot decode")  # a reason, not an exception
    for record, path in zip([records[0], records[2], records[3]], good):
        alone = clf.predict(path, top_k=2)
        assert [t["label"] for t in record["top_k"]] == [t["label"] for t in alone]
        assert record["top_k"][0]["score"] == pytest.approx(alone[0]["score"], abs=1e-5)


def test_a_list_gives_a_list_of_lists_in_order_and_a_bad_file_in_it_raises(tmp_path, make_video, tiny_model_dir):
    clf = VideoClassifier.load(tiny_model_dir)
    paths = [make_video(f"v{i}.mp4", seed=i) for i in range(3)]
    out = clf.predict(paths, top_k=2)
    assert len(out) == 3 and all(len(preds) == 2 for preds in out)
    for preds, path in zip(out, paths):
        alone = clf.predict(path, top_k=2)
        assert [p["label"] for p in preds] == [p["label"] for p in alone]
        assert preds[0]["score"] == pytest.approx(alone[0]["score"], abs=1e-5)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(VideoDecodeError, match="bad.mp4"):
        clf.predict([paths[0], bad])


def test_frames_array_in_is_sampled_and_resized_like_a_file(make_video, tiny_model_dir):
    import numpy as np

    from vidlstm.io import read_frames

    clf = VideoClassifier.load(tiny_model_dir)
    path = make_video("v.mp4", num_frames=24, height=48, width=64)
    clip = clf.predictor.load_clip(path, exact_frames=True)  # the model's own frames: T and size already right
    from_array = clf.predict(clip.frames, top_k=3)
    expected = clf.predictor.top_k(clf.predictor.score_frames([clip.frames])[0].probs, 3)
    assert from_array == expected
    full = read_frames(path, np.arange(24), size=None).frames  # (24, 48, 64, 3) native size, every frame
    preds = clf.predict(full, top_k=2)
    assert len(preds) == 2 and preds[0]["score"] >= preds[1]["score"] and 0 < preds[0]["score"] <= 1
    with pytest.raises(VidlstmError, match=r"\(T, H, W, 3\) uint8"):
        clf.predict(full.astype(np.float32))
    for empty in ((5, 0, 0, 3), (5, 0, 64, 3), (5, 48, 0, 3)):  # frames with no pixels: a cv2.error traceback
        with pytest.raises(UsageError, match=re.escape(f"(T, H, W, 3) uint8 RGB array, with T, H and W at least 1 "
                                                       f"(got uint8 {empty})")):
            clf.predict(np.zeros(empty, np.uint8))


def test_a_list_may_hold_frames_arrays_and_tensors_beside_paths(make_video, tiny_model_dir):
    import numpy as np
    import torch

    clf = VideoClassifier.load(tiny_model_dir)
    path = make_video("v.mp4")
    frames = np.random.default_rng(0).integers(0, 256, (12, 40, 40, 3), dtype=np.uint8)
    out = clf.predict([frames, path, torch.from_numpy(frames)], top_k=2)
    assert out == [clf.predict(frames, top_k=2), clf.predict(path, top_k=2), clf.predict(frames, top_k=2)]
    with pytest.raises(VidlstmError, match=r"video path or a \(T, H, W, 3\) uint8 frames array \(got int\)"):
        clf.predict([path, 3])


def test_predict_many_of_one_path_gives_one_record_not_one_per_character(make_video, tiny_model_dir):
    path = make_video("v.mp4")
    records = list(VideoClassifier.load(tiny_model_dir).predict_many(str(path), workers=0))
    assert [(r["path"], r["status"]) for r in records] == [(str(path), "ok")]


def test_predict_many_says_it_takes_paths(tiny_model_dir):
    """A frames array was refused as "a video path or a (T, H, W, 3) uint8 frames array (got ndarray)", the kind it
    had just named; None was a TypeError traceback."""
    import numpy as np

    clf = VideoClassifier.load(tiny_model_dir)
    with pytest.raises(UsageError, match=re.escape("a path must be a video path (predict takes frames arrays) (got "
                                                   "ndarray)")):
        list(clf.predict_many([np.zeros((5, 48, 48, 3), np.uint8)]))
    for bad in (None, np.zeros((5, 48, 48, 3), np.uint8), 3):
        with pytest.raises(UsageError, match=r"predict_many takes video paths \(a list, or one path; got "):
            list(clf.predict_many(bad))


def test_a_script_without_a_main_guard_runs_once_and_its_list_is_classified(tmp_path, make_video, tiny_model_dir):
    """Decode workers must not run the caller's script again (forkserver/spawn import ``__main__`` by default): the
    README's example, pasted into a file as is, would run twice and fail in the workers with its videos blamed."""
    import subprocess
    import sys

    paths = [make_video(f"v{i}.mp4", seed=i) for i in range(2)]
    script = tmp_path / "user_script.py"
    script.write_text("from vidlstm import VideoClassifier\n"
                      "print('BODY', flush=True)\n"
                      f"clf = VideoClassifier.load({str(tiny_model_dir)!r})\n"
                      f"for preds in clf.predict({[str(p) for p in paths]!r}, top_k=1):\n"
                      "    print('LABEL', preds[0]['label'])\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("BODY") == 1 and run.stdout.count("LABEL") == 2
    assert "bootstrapping" not in run.stderr


def test_top_k_of_another_type_an_empty_path_and_a_bytes_name(make_video, tiny_model_dir):
    """top_k=2.5 and None were raw TypeErrors; "" was reported as the directory "."; a bytes name (what
    os.listdir(b".") gives) was refused."""
    import os

    clf = VideoClassifier.load(tiny_model_dir)
    path = make_video()
    for top_k in (2.5, None, True, "3"):
        with pytest.raises(UsageError, match=f"top_k must be an integer >= 1 \\(got {re.escape(repr(top_k))}\\)"):
            clf.predict(path, top_k=top_k)
    assert clf.predict(path, top_k=np.int64(1)) == clf.predict(path, top_k=1)
    with pytest.raises(UsageError, match=r"an input is an empty path \(''\): give a video file"):
        clf.predict("")
    assert clf.predict(os.fsencode(path), top_k=2) == clf.predict(path, top_k=2)
    # predict_many and load alike: -1 gave one label, 0 all of them, "2" workers a TypeError; load("") was the shipped
    # model and bytes a TypeError.
    for bad in (dict(top_k=-1), dict(top_k=2.5), dict(workers="2"), dict(batch_size=0)):
        name, value = next(iter(bad.items()))
        with pytest.raises(UsageError, match=f"{name} must be an integer"):
            list(clf.predict_many([path], **bad))
    with pytest.raises(UsageError, match=r"model_dir is an empty path \(''\): give a folder"):
        VideoClassifier.load("")
    assert VideoClassifier.load(os.fsencode(tiny_model_dir)).labels == clf.labels
    from vidlstm.defaults import default_model_dir

    if (default_model_dir() / "config.json").is_file():  # `default` names the shipped model, as --model default does
        assert VideoClassifier.load("default").labels == VideoClassifier.load().labels



def test_a_device_this_machine_lacks_is_advised_in_the_api_s_own_terms(tiny_model_dir, make_video, monkeypatch,
                                                                       capsys):
    """The API said "use --device cpu", the command line's option, to a library user."""
    import torch

    from vidlstm.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError) as caught:
        VideoClassifier.load(tiny_model_dir, device="cuda")
    assert str(caught.value) == (f"device 'cuda': no cuda device is available here (torch {torch.__version__}); "
                                 f'use device="cpu"')
    path = make_video("clip.mp4", num_frames=8)
    assert main(["classify", str(path), "--model", str(tiny_model_dir), "--device", "cuda", "--workers", "0"]) == 2
    assert capsys.readouterr().err.strip().endswith(f"is available here (torch {torch.__version__}); use --device cpu")
