"""Synthetic motion data: the label is in the motion, files and manifest are written as promised."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from vidlstm.cli import main
from vidlstm.data.synth import MOTION_CLASSES, SynthConfig, generate_dataset, render_clip


def _centroid_of_change(frames: np.ndarray) -> np.ndarray:
    """x/y of the moving object per step, from where consecutive frames differ (the background is static)."""
    diffs = np.abs(np.diff(frames.astype(np.int16), axis=0)).sum(-1) > 60  # (T-1, H, W)
    out = []
    for d in diffs:
        ys, xs = np.nonzero(d)
        out.append((xs.mean(), ys.mean()))
    return np.array(out)


@pytest.mark.parametrize("label, axis, sign", [("left", 0, -1), ("right", 0, 1), ("up", 1, -1), ("down", 1, 1)])
def test_translation_classes_move_the_right_way(label, axis, sign):
    frames = render_clip(label, 12, 64, 96, np.random.default_rng(1))
    assert frames.shape == (12, 64, 96, 3) and frames.dtype == np.uint8
    track = _centroid_of_change(frames)[:, axis]
    assert sign * (track[-1] - track[0]) > 10  # pixels travelled along the axis


def test_first_frames_do_not_reveal_the_class():
    """grow and shrink start from the same kind of still image; only the change over time differs."""
    rng = np.random.default_rng(0)
    grow = render_clip("grow", 10, 64, 96, rng)
    area = [(np.abs(f.astype(int) - grow[0].astype(int)).sum(-1) > 60).sum() for f in grow]
    assert area[-1] > area[1]  # the object keeps growing


def test_generate_dataset_writes_folders_and_manifest(tmp_path):
    out = generate_dataset(tmp_path / "d", SynthConfig(per_class=2, size=32, min_frames=6, max_frames=8))
    with open(out / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * len(MOTION_CLASSES)
    assert {r["label"] for r in rows} == set(MOTION_CLASSES)
    for r in rows:
        assert (out / r["path"]).stat().st_size > 0
        assert r["path"].startswith(r["label"] + "/")


def test_same_seed_same_clips():
    a = render_clip("clockwise", 6, 32, 48, np.random.default_rng(5))
    b = render_clip("clockwise", 6, 32, 48, np.random.default_rng(5))
    assert np.array_equal(a, b)


def test_synth_cli(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "s"), "--per-class", "1", "--size", "32", "--min-frames", "4",
                 "--max-frames", "4"]) == 0
    assert "wrote 8 clips of 8 classes" in capsys.readouterr().out
    assert len(list((tmp_path / "s").rglob("*.mp4"))) == 8


def test_synth_replaces_its_own_set_but_never_writes_over_other_files(tmp_path, capsys):
    small = ["--size", "32", "--min-frames", "4", "--max-frames", "4"]
    out = tmp_path / "s"
    assert main(["synth", str(out), "--per-class", "2", *small]) == 0
    capsys.readouterr()
    assert main(["synth", str(out), "--per-class", "1", "--seed", "9", *small]) == 0  # an earlier set: replaced whole
    assert f"removed the earlier synthetic set in {out} (16 clips)" in capsys.readouterr().out  # said, not silent
    assert len(list(out.rglob("*.mp4"))) == 8 and len((out / "manifest.csv").read_text().splitlines()) == 9
    (out / "up" / "mine.mp4").write_bytes(b"a clip of the user's")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["synth", str(out), "--per-class", "1", *small]) == 2
    assert "s: holds files of its own; name a new folder for the clips (or pass --force" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main(["synth", str(out), "--per-class", "1", "--seed", "5", "--force", *small]) == 0
    assert (out / "up" / "mine.mp4").read_bytes() == b"a clip of the user's"
    # --force still replaced the earlier set's clips: left there, they joined the new set's class folders unlisted
    assert f"removed the earlier synthetic set in {out} (8 clips)" in capsys.readouterr().out
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mp4")) == sorted(
        [f"{c}/{c}_000.mp4" for c in MOTION_CLASSES] + ["up/mine.mp4"])


def test_synth_never_takes_a_users_data_set_for_an_earlier_synthetic_one(tmp_path, capsys):
    """A folder per class with a manifest.csv of the user's clips, the layout `train` takes, was deleted as "the
    earlier synthetic set" by `synth` and `demo --keep` (every file was listed by its manifest)."""
    out = tmp_path / "mine"
    for label, name in (("walk", "my_walk.mp4"), ("left", "left_000.avi"), ("up", "down_001.mp4")):
        (out / label).mkdir(parents=True)
        (out / label / name).write_bytes(b"the user's clip")
    manifest = "path,label\nwalk/my_walk.mp4,walk\nleft/left_000.avi,left\nup/down_001.mp4,up\n"
    (out / "manifest.csv").write_text(manifest)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    small = ["--per-class", "1", "--size", "32", "--min-frames", "4", "--max-frames", "4"]
    assert main(["synth", str(out), *small]) == 2
    assert capsys.readouterr().err.strip() == (f"vidlstm synth: error: {out}: holds files of its own; name a new "
                                               f"folder for the clips (or pass --force to write into it)")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main(["synth", str(out), "--force", *small]) == 2  # --force too: the set's manifest would replace theirs
    assert capsys.readouterr().err.strip() == (f"vidlstm synth: error: {out}: holds a manifest.csv of its own, which "
                                               f"the synthetic set's would replace; name a new folder for the clips")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    (out / "manifest.csv").unlink()
    assert main(["synth", str(out), "--force", *small]) == 0  # asked for: written beside their clips, none removed
    assert "removed" not in capsys.readouterr().out
    assert all(p.read_bytes() == content for p, content in before.items() if p.name != "manifest.csv")


def test_a_users_data_set_named_as_synth_names_its_clips_is_not_taken_for_a_synthetic_set(tmp_path, capsys):
    """A folder per class whose manifest.csv lists CLASS/CLASS_NNN.mp4 clips of motion classes (a user's own left and
    right gestures) was taken for an earlier synthetic set: `synth` and `demo --keep` deleted its clips."""
    out = tmp_path / "mine"
    rows = [(f"{label}/{label}_{i:03d}.mp4", label) for label in ("left", "right") for i in range(2)]
    for path, _ in rows:
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(b"the user's clip")
    (out / "manifest.csv").write_text("path,label\n" + "".join(f"{path},{label}\n" for path, label in rows))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    small = ["--per-class", "1", "--size", "32", "--min-frames", "4", "--max-frames", "4"]
    assert main(["synth", str(out), *small]) == 2
    assert capsys.readouterr().err.strip() == (f"vidlstm synth: error: {out}: holds files of its own; name a new "
                                               f"folder for the clips (or pass --force to write into it)")
    assert main(["demo", "--keep", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (f"vidlstm demo: error: {out}: holds files of its own; name a new "
                                               f"folder for the clips")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_set_is_known_by_its_marker_and_one_written_before_it_by_its_exact_manifest(tmp_path, capsys):
    import json

    from vidlstm.data.synth import MARKER

    small = ["--size", "32", "--min-frames", "4", "--max-frames", "4"]
    out = tmp_path / "s"
    assert main(["synth", str(out), "--per-class", "2", *small]) == 0
    assert json.loads((out / MARKER).read_text()) == {
        "written_by": "vidlstm synth", "classes": list(MOTION_CLASSES), "per_class": 2, "size": 32, "min_frames": 4,
        "max_frames": 4, "fps": 25.0, "seed": 0, "suffix": ".mp4"}
    (out / MARKER).unlink()  # as synth wrote a set before the marker: all 8 classes, in its order
    capsys.readouterr()
    assert main(["synth", str(out), "--per-class", "1", *small]) == 0
    assert f"removed the earlier synthetic set in {out} (16 clips)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted([*MOTION_CLASSES, "manifest.csv", MARKER])
    config = SynthConfig(per_class=1, size=32, min_frames=4, max_frames=4)
    few = generate_dataset(tmp_path / "few", config, classes=("left", "up", "down"))  # `demo --keep`, 3 classes
    assert main(["synth", str(few), "--per-class", "1", *small]) == 0
    assert f"removed the earlier synthetic set in {few} (3 clips)" in capsys.readouterr().out
    older = generate_dataset(tmp_path / "older", config, classes=("left", "up", "down"))
    (older / MARKER).unlink()  # fewer classes than synth writes, and no marker: as a user's set might be
    assert main(["synth", str(older), "--per-class", "1", *small]) == 2
    assert "older: holds files of its own" in capsys.readouterr().err
    (tmp_path / "stopped").mkdir()
    (tmp_path / "stopped" / MARKER).write_text((out / MARKER).read_text())  # stopped before its manifest was written
    assert main(["synth", str(tmp_path / "stopped"), "--per-class", "1", *small]) == 0
    lines = (out / "manifest.csv").read_text().splitlines()
    (out / "manifest.csv").write_text("\n".join(lines[:-1]) + "\n")  # no longer the manifest its marker writes
    (out / "anticlockwise" / "anticlockwise_000.mp4").unlink()
    assert main(["synth", str(out), "--per-class", "1", *small]) == 2
    assert "s: holds files of its own" in capsys.readouterr().err
    assert len(list(out.rglob("*.mp4"))) == 7


def test_a_set_interrupted_half_way_is_replaced_by_the_next_run(tmp_path, capsys, monkeypatch):
    """synth wrote its manifest last: a set stopped by Ctrl-C was then "files of its own", refused, and --force left
    its clips beside the new set's."""
    import vidlstm.io.encode as encode

    real, written = encode.write_video, []

    def interrupted(path, *args, **kwargs):
        if len(written) == 3:
            raise KeyboardInterrupt
        written.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(encode, "write_video", interrupted)
    out, small = tmp_path / "s", ["--size", "32", "--min-frames", "4", "--max-frames", "4"]
    assert main(["synth", str(out), "--per-class", "2", *small]) == 130
    monkeypatch.undo()
    assert len(list(out.rglob("*.mp4"))) == 3
    capsys.readouterr()
    assert main(["synth", str(out), "--per-class", "1", *small]) == 0
    assert f"removed the earlier synthetic set in {out} (3 clips)" in capsys.readouterr().out
    assert len(list(out.rglob("*.mp4"))) == 8


def test_synth_cli_bad_config_exit_2(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "s"), "--min-frames", "9", "--max-frames", "4"]) == 2
    assert "need 2 <= --min-frames <= --max-frames (got 9 and 4; --min-frames is 24 unless given)" in \
        capsys.readouterr().err


@pytest.mark.parametrize("flags, said", [
    (["--max-frames", "100000"], "--max-frames must be at most 7200 (got 100000)"),  # the kernel killed it at 23 GB
    (["--size", "100000"], "--size must be from 32 to 2160 pixels (got 100000)"),  # a 298 GiB numpy traceback
    (["--size", "2160", "--max-frames", "200"], "a clip of 200 frames at 2160 px would take 3.5 GiB of memory"),
    (["--size", "33"], "--size must be even, as H.264 frames' sides are (got 33)"),  # 34-pixel frames, unsaid
    (["--fps", "-3"], "--fps must be a number from 1 to 240 (got -3.0)"),  # an av traceback
    (["--fps", "nan"], "--fps must be a number from 1 to 240 (got nan)"),  # a ValueError traceback
    (["--fps", "0"], "--fps must be a number from 1 to 240 (got 0.0)"),  # written at 24 fps without a word
])
def test_synth_refuses_sizes_lengths_and_rates_it_cannot_write(tmp_path, capsys, flags, said):
    assert main(["synth", str(tmp_path / "s"), "--per-class", "1", *flags]) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()
