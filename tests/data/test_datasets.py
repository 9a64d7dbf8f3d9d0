"""discover_dataset: folder-per-class and CSV manifests, and the one-line errors for bad input."""
from __future__ import annotations

import pytest

from vidlstm.data.datasets import discover_dataset
from vidlstm.errors import UsageError


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not decoded here")
    return path


def test_class_folders_are_walked_recursively_with_case_insensitive_extensions(tmp_path):
    touch(tmp_path / "wave" / "a.MP4")
    touch(tmp_path / "wave" / "session2" / "b.avi")
    touch(tmp_path / "wave" / "notes.txt")
    touch(tmp_path / "wave" / ".hidden.mp4")
    touch(tmp_path / "clap" / "c.MoV")
    touch(tmp_path / ".git" / "x.mp4")  # hidden folders are not classes
    ds = discover_dataset(tmp_path)
    assert ds.labels == ["clap", "wave"]
    assert [(ds.relative_name(i), i.label) for i in ds.items] == [
        ("clap/c.MoV", "clap"), ("wave/a.MP4", "wave"), ("wave/session2/b.avi", "wave")]
    assert not ds.has_groups and ds.groups() is None
    assert ds.targets().tolist() == [0, 1, 1]


def test_csv_manifest_with_groups_resolves_paths_against_its_folder(tmp_path):
    touch(tmp_path / "v" / "1.mp4")
    touch(tmp_path / "v" / "2.mp4")
    touch(tmp_path / "v" / "3.mp4")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path, label, group\nv/1.mp4,up,ann\nv/2.mp4,down,bob\nv/3.mp4,up,bob\n")
    ds = discover_dataset(manifest)
    assert ds.labels == ["down", "up"]
    assert ds.items[0].path == tmp_path / "v" / "1.mp4"
    assert ds.groups().tolist() == ["ann", "bob", "bob"]
    assert ds.class_counts() == {"down": 1, "up": 2}


def test_tab_separated_manifests_read_as_csv_ones(tmp_path):
    for name in ("1.mp4", "2 b.mp4"):
        touch(tmp_path / "v" / name)
    manifest = tmp_path / "m.tsv"
    manifest.write_text("path\tlabel\tgroup\nv/1.mp4\tup\tann\nv/2 b.mp4\tdown\tbob\n")
    ds = discover_dataset(manifest)
    assert ds.labels == ["down", "up"]
    assert [item.path.name for item in ds.items] == ["1.mp4", "2 b.mp4"]
    assert ds.groups().tolist() == ["ann", "bob"]
    manifest.write_text("file\tlabel\nv/1.mp4\tup\n")  # columns are checked as in a CSV
    with pytest.raises(UsageError, match="unknown column.s. 'file'; the header must be path,label"):
        discover_dataset(manifest)


def test_other_columns_of_a_manifest_are_read_past_with_one_warning(tmp_path, capsys):
    for name in ("1.mp4", "2.mp4"):
        touch(tmp_path / "v" / name)
    manifest = tmp_path / "MANIFEST.tsv"  # as the shared data sets list their clips
    manifest.write_text("path\tlabel\tgroup\tsource\tactor\nv/1.mp4\tup\ts1\tgithub:x\tann\n"
                        "v/2.mp4\tdown\ts2\tgithub:y\tbob\n")
    for _ in range(2):
        ds = discover_dataset(manifest)
    assert ds.labels == ["down", "up"] and ds.groups().tolist() == ["s1", "s2"]
    warnings = capsys.readouterr().err.splitlines()
    assert warnings == [f"warning: {manifest}: column(s) 'source', 'actor' ignored; vidlstm reads path, label and "
                        f"group (only a column named group keeps related clips on one side of a split)"]


@pytest.mark.parametrize("content, message", [
    ("file,label\nv/1.mp4,up\n", "the header must be path,label[,group]"),
    ("path,label\n", "lists no videos"),
    ("path,label\nv/1.mp4,\n", "line 2 has an empty path or label"),
    ("path,label\nv/1.mp4,up\ngone/a.mp4,down\ngone/b.mp4,down\n", "2 listed file(s) are missing (first: gone/a.mp4)"),
    ("path,label\nv/1.mp4,up\n", "needs at least 2 classes to train a classifier, found up"),
])
def test_bad_manifests_give_one_line_usage_errors(tmp_path, content, message):
    touch(tmp_path / "v" / "1.mp4")
    manifest = tmp_path / "m.csv"
    manifest.write_text(content)
    with pytest.raises(UsageError) as info:
        discover_dataset(manifest)
    text = str(info.value)
    assert message in text and str(manifest) in text and "\n" not in text


def test_bad_folders_give_one_line_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no such file or folder"):
        discover_dataset(tmp_path / "missing")
    with pytest.raises(UsageError, match="no class folders"):
        discover_dataset(tmp_path)
    touch(tmp_path / "a" / "x.mp4")
    (tmp_path / "b").mkdir()
    touch(tmp_path / "b" / "readme.txt")
    with pytest.raises(UsageError, match=r"b: class folder has no video files"):
        discover_dataset(tmp_path)


def test_empty_files_are_set_aside_before_training_splits_the_clips(tmp_path):
    from vidlstm.data.datasets import without_empty_files

    for label, names in {"a": ["good.mp4", "empty.mp4"], "b": ["one.mp4", "two.mp4"]}.items():
        (tmp_path / label).mkdir()
        for name in names:
            (tmp_path / label / name).write_bytes(b"" if name == "empty.mp4" else b"\0" * 16)
    dataset = without_empty_files(discover_dataset(tmp_path))
    assert sorted(item.path.name for item in dataset.items) == ["good.mp4", "one.mp4", "two.mp4"]
    assert [(entry.path.name, entry.reason) for entry in dataset.skipped] == [("empty.mp4", "an empty file (0 bytes)")]
    assert dataset.labels == ["a", "b"]


def test_a_class_whose_every_file_is_empty_is_refused_and_says_why(tmp_path):
    """A class whose only file was 0 bytes "has 0 clip(s) ... pass --val-fraction 0": its file was dropped unsaid,
    and the advice failed too ("no decodable training clip")."""
    from vidlstm.data.datasets import without_empty_files

    for label, names in {"a": ["a.mp4"], "b": ["one.mp4", "two.mp4"]}.items():
        (tmp_path / label).mkdir()
        for name in names:
            (tmp_path / label / name).write_bytes(b"" if label == "a" else b"\0" * 16)
    with pytest.raises(UsageError) as refused:
        without_empty_files(discover_dataset(tmp_path))
    assert str(refused.value) == (f"{tmp_path}: class 'a' has no clip to train on: its file was left out: a/a.mp4 is "
                                  f"empty (0 bytes); give the class videos, or take it out of the data")
    for name in ("b.mp4", "c.mp4", "d.mp4", "e.mp4"):
        (tmp_path / "a" / name).write_bytes(b"")
    with pytest.raises(UsageError, match=r"class 'a' has no clip to train on: its 5 files were left out: a/a.mp4, "
                                         r"a/b.mp4, a/c.mp4 and 2 more are empty \(0 bytes\); give"):
        without_empty_files(discover_dataset(tmp_path))


def test_copies_under_two_labels_and_across_the_split_are_named_and_the_run_goes_on(tmp_path, caplog):
    import logging

    from vidlstm.training.prepare import check_copies

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(2):
            (tmp_path / label / f"{label}{i}.mp4").write_bytes(f"{label}{i}".encode())
    dataset = discover_dataset(tmp_path)  # a0 a1 b0 b1
    with caplog.at_level(logging.WARNING, logger="vidlstm"):
        assert check_copies(dataset, ["x", "y", "y", "z"], [0, 1, 2, 3], []) == 0  # a1 and b0: one file, two labels
        assert check_copies(dataset, ["x", "x", "y", "z"], [0, 2], [1, 3]) == 1  # a0 trains, its copy a1 validates
        assert check_copies(dataset, ["x", "x", "y", "z"], [0, 1, 2], [3]) == 0  # both copies train: nothing to say
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2
    assert warned[0].startswith("1 file(s) are byte-identical copies under another label (first: a/a1.mp4 (a) and "
                                "b/b0.mp4 (b))")
    assert warned[1].startswith("1 clip(s) have a byte-identical copy on the other side of the validation split "
                                "(first: a/a0.mp4 and a/a1.mp4)")


def test_a_tsv_whose_other_column_names_hold_commas_and_doubled_columns(tmp_path):
    for name in ("1.mp4", "2.mp4"):
        touch(tmp_path / "v" / name)
    manifest = tmp_path / "m.tsv"
    manifest.write_text("path\tlabel\tsource, commit\nv/1.mp4\tup\tx, y\nv/2.mp4\tdown\tz\n")
    assert discover_dataset(manifest).labels == ["down", "up"]
    manifest.write_text("path\tlabel\tlabel\nv/1.mp4\tup\tx\nv/2.mp4\tdown\ty\n")
    with pytest.raises(UsageError, match="m.tsv: the column.s. 'label' appear more than once; keep one"):
        discover_dataset(manifest)


def test_videos_directly_in_data_are_said_to_be_left_out_once(tmp_path, capsys):
    """Videos at the top of DATA, outside any class folder, were ignored without a word."""
    from vidlstm.data import datasets

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        (tmp_path / label / f"{label}.mp4").write_bytes(b"x")
    (tmp_path / "z_clip.mp4").write_bytes(b"x")
    (tmp_path / "c_clip.MOV").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("mine")
    datasets._WARNED.discard(str(tmp_path))
    assert len(discover_dataset(tmp_path).items) == 2
    discover_dataset(tmp_path)  # a run reads DATA several times: said once
    assert capsys.readouterr().err == (f"warning: {tmp_path}: 2 video file(s) directly in DATA are left out (first: "
                                       f"c_clip.MOV); a video trains in the folder named by its class\n")


def test_a_manifest_row_naming_a_folder_says_so(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "m.csv").write_text("path,label\na.mp4,a\nclips,b\n")
    with pytest.raises(UsageError, match=r"m.csv: 1 listed path\(s\) are folders, not video files \(first: clips\)"):
        discover_dataset(tmp_path / "m.csv")


def test_manifest_rows_with_more_cells_than_the_header_are_said_once(tmp_path, capsys):
    """`a.mp4,big,red` under `path,label` was read as label "big" without a word (an unquoted comma in a label)."""
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "m.csv").write_text('path,label\na.mp4,big,red\nb.mp4,small\nc.mp4,"big,red"\n')
    dataset = discover_dataset(tmp_path / "m.csv")
    discover_dataset(tmp_path / "m.csv")
    assert [item.label for item in dataset.items] == ["big", "small", "big,red"]
    assert capsys.readouterr().err == (f"warning: {tmp_path / 'm.csv'}: 1 row(s) have more cells than the header "
                                       f"(first: line 2); the extra cells are ignored (quote a path or label that "
                                       f"holds a comma)\n")


def test_a_copies_warning_is_said_once_per_run_though_each_candidate_prepares_the_clips(tmp_path, caplog):
    """`auto` printed "byte-identical copies under another label" twice, once per candidate."""
    import logging

    from vidlstm.training import prepare

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        (tmp_path / label / f"{label}.mp4").write_bytes(b"x")
    dataset = discover_dataset(tmp_path)
    with caplog.at_level(logging.WARNING, logger="vidlstm"):
        for _ in range(2):
            prepare.check_copies(dataset, ["same", "same"], [0, 1], [])
    assert len(caplog.records) == 1 and "copies under another label" in caplog.records[0].getMessage()
