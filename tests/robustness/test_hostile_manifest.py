"""Training manifests that repeat or contradict themselves: a repeated row is collapsed with one warning (so a
clip never lands in both the training and the validation split); one file under two labels is a usage error."""
from __future__ import annotations

import pytest

from vidlstm.data.datasets import discover_dataset
from vidlstm.errors import UsageError

pytestmark = pytest.mark.robustness


@pytest.fixture
def clips(tmp_path):
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        (tmp_path / name).write_bytes(b"\0")  # discovery only checks that the file is there
    return tmp_path


def test_duplicate_rows_are_collapsed_with_one_warning(clips, capsys):
    manifest = clips / "m.csv"
    manifest.write_text("path,label\na.mp4,left\nb.mp4,right\n./a.mp4,left\nc.mp4,right\n" f"{clips}/a.mp4,left\n")
    dataset = discover_dataset(manifest)
    assert [item.path.name for item in dataset.items] == ["a.mp4", "b.mp4", "c.mp4"]
    warning, = capsys.readouterr().err.splitlines()
    assert warning == f"warning: {manifest}: 2 duplicate row(s) ignored (first: line 4 repeats line 2, ./a.mp4)"


def test_a_manifest_pasted_four_times_trains_on_each_clip_once(clips):
    manifest = clips / "m.csv"
    rows = "".join(f"{name},{label}\n" for name, label in [("a.mp4", "left"), ("b.mp4", "right"), ("c.mp4", "left")])
    manifest.write_text("path,label\n" + rows * 4)
    dataset = discover_dataset(manifest)
    assert len(dataset.items) == 3


def test_one_path_under_two_labels_is_a_usage_error_naming_both_rows(clips):
    manifest = clips / "m.csv"
    manifest.write_text("path,label\na.mp4,left\nb.mp4,right\nsub/../a.mp4,right\n")
    with pytest.raises(UsageError) as info:
        discover_dataset(manifest)
    assert str(info.value) == (f"{manifest}: sub/../a.mp4 is labelled 'left' on line 2 and 'right' on line 4; "
                               "give each video one label")
