"""Find labelled videos: a folder per class, or a CSV (or TSV) manifest ``path,label[,group]`` -> items + sorted labels."""
from __future__ import annotations

import csv
import errno
import io
import os
import stat
import sys
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from vidlstm.errors import UsageError
from vidlstm.files import atomic_write_text
from vidlstm.io.info import VIDEO_EXTENSIONS, is_video_name
from vidlstm.io.reader import missing_file_reason

MANIFEST_COLUMNS = ("path", "label", "group")


@dataclass(frozen=True)
class VideoItem:
    """One labelled video. ``group`` (actor, session, device...) keeps related clips on one side of a split."""

    path: Path
    label: str
    group: str | None = None


@dataclass(frozen=True)
class SkippedEntry:
    """A class-folder entry named like a video but no regular file (a FIFO, a link loop ...): listed, never opened."""

    path: Path
    reason: str
    label: str | None = None  # the class folder it is in (evaluate counts it there, as a failed video)


@dataclass
class LabelledVideos:
    """What ``discover_dataset`` found: the items in a stable order, the sorted label list, and the entries
    named like videos that are no files to decode (``skipped``, in walk order)."""

    items: list[VideoItem]
    labels: list[str]
    root: Path  # relative names (split files, prediction CSVs) are written against this folder
    skipped: list[SkippedEntry] = field(default_factory=list)
    manifest: Path | None = None  # the manifest file the items were listed in, if any

    @property
    def source(self) -> Path:
        """What the user named: the manifest file, or the folder per class (messages name it)."""
        return self.manifest or self.root

    @property
    def has_groups(self) -> bool:
        return any(item.group is not None for item in self.items)

    def targets(self, labels: list[str] | None = None) -> np.ndarray:
        """(N,) int64 class index of each item in ``labels`` (default: this dataset's labels)."""
        index = {name: i for i, name in enumerate(labels or self.labels)}
        return np.array([index[item.label] for item in self.items], dtype=np.int64)

    def groups(self) -> np.ndarray | None:
        """(N,) group name of each item, or None when the data has no groups."""
        return np.array([item.group or "" for item in self.items]) if self.has_groups else None

    def relative_name(self, item: VideoItem | SkippedEntry) -> str:
        """The item's path relative to the dataset root (POSIX), or the absolute path when outside it: the same
        name from any working directory."""
        # As listed first (a class folder that is a link to elsewhere is still inside DATA), then with the folders
        # resolved, not the entry: a symbolic link is named by where it is (a link loop or a dangling link cannot be
        # resolved at all).
        resolved = item.path.parent.resolve() / item.path.name
        for path, root in ((Path(os.path.abspath(item.path)), Path(os.path.abspath(self.root))),
                           (resolved, self.root.resolve())):
            try:
                return path.relative_to(root).as_posix()
            except ValueError:
                continue
        return resolved.as_posix()

    def subset(self, indices) -> "LabelledVideos":
        return LabelledVideos([self.items[i] for i in indices], list(self.labels), self.root, manifest=self.manifest)

    def class_counts(self) -> dict[str, int]:
        counts = Counter(item.label for item in self.items)
        return {label: counts.get(label, 0) for label in self.labels}


def _in_sight(path: Path, class_dir: Path) -> bool:
    """A video name (vidlstm.io.info.is_video_name, as `predict` finds files) outside hidden folders."""
    folders = path.relative_to(class_dir).parts[:-1]
    return is_video_name(path.name) and not any(part.startswith(".") for part in folders)


def not_a_file_reason(path: Path) -> str | None:
    """Why ``path`` is no regular file a decoder could read, or None when it is one.

    Only stats the path, never opens it: opening a FIFO for reading blocks until someone writes to it.
    """
    try:
        mode = os.stat(path).st_mode  # follows links: a link to a good video is a good video
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOENT) and os.path.islink(path):
            return missing_file_reason(path)  # as classify, predict and stream say it
        return f"cannot stat ({err.strerror or err})"
    kinds = ((stat.S_ISREG, None), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe), not a file"),
             (stat.S_ISSOCK, "a socket, not a file"), (stat.S_ISCHR, "a character device, not a file"),
             (stat.S_ISBLK, "a block device, not a file"))
    return next((reason for is_kind, reason in kinds if is_kind(mode)), "not a regular file")


def _resolved(path: Path) -> str:
    """One key per file however the manifest spells it (``a.mp4``, ``./a.mp4``, ``sub/../a.mp4``, absolute)."""
    head, name = os.path.split(os.path.abspath(path))
    return os.path.join(os.path.realpath(head), name)


def discover_dataset(data, min_classes: int = 2) -> LabelledVideos:
    """Read DATA: a folder with one sub-folder of videos per class, or a CSV manifest.

    Raises UsageError (one line naming DATA) for anything a person must fix: a missing path, unknown
    CSV columns, missing files, an empty class folder, fewer than ``min_classes`` classes.
    """
    data = Path(data)
    if not data.exists():
        raise UsageError(f"{data}: no such file or folder (expected a folder per class or a CSV manifest)")
    dataset = _read_manifest(data) if data.is_file() else _walk_class_folders(data)
    if len(dataset.labels) < min_classes:
        found = ", ".join(dataset.labels) or "none"
        raise UsageError(f"{data}: needs at least {min_classes} classes to train a classifier, found {found}")
    return dataset


def without_empty_files(dataset: LabelledVideos) -> LabelledVideos:
    """``dataset`` with its zero-byte files moved to ``skipped`` (a stat each). Training splits the clips before it
    decodes them: an empty file drawn into training left its class's one good clip in validation and the run
    refused the class as having "no decodable training clip". A class whose every file is empty is refused here, and
    said so: the split said it "has 0 clip(s)" and advised --val-fraction 0, which failed too."""
    empty = {id(item) for item in dataset.items if _size(item.path) == 0}
    if not empty:
        return dataset
    for label in dataset.labels:  # a class left with no clip was refused by the split, as if it had too few
        dropped = [item for item in dataset.items if item.label == label]
        if dropped and all(id(item) in empty for item in dropped):
            names = [dataset.relative_name(item) for item in dropped]
            listed = _and_list(names[:3] + ([f"{len(names) - 3} more"] if len(names) > 3 else []))
            said = f"its file was left out: {listed} is" if len(names) == 1 else \
                f"its {len(names)} files were left out: {listed} are"
            raise UsageError(f"{dataset.source}: class {label!r} has no clip to train on: {said} empty (0 bytes); "
                             f"give the class videos, or take it out of the data")
    return replace(dataset, items=[item for item in dataset.items if id(item) not in empty],
                   skipped=dataset.skipped + [SkippedEntry(item.path, "an empty file (0 bytes)")
                                              for item in dataset.items if id(item) in empty])


def _and_list(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _size(path: Path) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _walk_class_folders(root: Path) -> LabelledVideos:
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    if not class_dirs:
        raise UsageError(f"{root}: no class folders (expected {root}/<class>/<video files>, or a CSV manifest)")
    loose = sorted(p.name for p in root.iterdir() if is_video_name(p.name) and not p.is_dir())
    if loose and _first_time(root):  # ignored without a word, where a user may have meant them to train
        print(f"warning: {root}: {len(loose)} video file(s) directly in DATA are left out (first: {loose[0]}); a "
              f"video trains in the folder named by its class", file=sys.stderr)
    items: list[VideoItem] = []
    skipped: list[SkippedEntry] = []
    for class_dir in class_dirs:
        videos, odd = _video_entries(class_dir)
        if not videos:
            found = f"; {len(odd)} skipped, first {odd[0].path.name}: {odd[0].reason}" if odd else ""
            raise UsageError(f"{class_dir}: class folder has no video files "
                             f"({', '.join(sorted(VIDEO_EXTENSIONS))}{found})")
        items.extend(VideoItem(path, class_dir.name) for path in videos)
        skipped.extend(replace(entry, label=class_dir.name) for entry in odd)
    return LabelledVideos(items, [d.name for d in class_dirs], root, skipped)


def _video_entries(class_dir: Path) -> tuple[list[Path], list[SkippedEntry]]:
    """(regular video files, other entries named like videos) under ``class_dir``, each sorted.

    A FIFO, socket, device, dangling link or link loop named clip.mp4 is the user's entry: it is listed
    with its reason rather than dropped without a word. A directory named x.mp4 is just a folder to walk.
    """
    videos, odd = [], []
    for path in sorted(p for p in class_dir.rglob("*") if _in_sight(p, class_dir) and not p.is_dir()):
        reason = not_a_file_reason(path)
        if reason is None:
            videos.append(path)
        else:
            odd.append(SkippedEntry(path, reason))
    return videos, odd


def _delimiter(f) -> str:
    """A tab where the manifest's header holds a tab and no comma, or splits into path and label at tabs whatever
    its other columns' names hold (a TSV manifest), else a comma; ``f`` rewound."""
    header = f.readline()
    f.seek(0)
    tab_separated = {"path", "label"} <= {c.strip() for c in header.split("\t")}
    return "\t" if "\t" in header and ("," not in header or tab_separated) else ","


_WARNED: set[str] = set()


def _first_time(manifest: Path, what: str = "") -> bool:
    """True the first time a process says ``what`` of ``manifest`` (a run reads it several times; once is enough)."""
    key = os.path.abspath(manifest) + (f"\0{what}" if what else "")
    fresh = key not in _WARNED
    _WARNED.add(key)
    return fresh


def _read_manifest(manifest: Path) -> LabelledVideos:
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, delimiter=_delimiter(f))
            columns = [c.strip() for c in reader.fieldnames or []]
            reader.fieldnames = columns  # tolerate "path, label" with spaces after the commas
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UsageError(f"{manifest}: cannot read the CSV manifest ({err})") from None
    unknown = [c for c in columns if c not in MANIFEST_COLUMNS]
    twice = sorted({c for c in columns if c in MANIFEST_COLUMNS and columns.count(c) > 1})
    if twice:
        raise UsageError(f"{manifest}: the column(s) {', '.join(map(repr, twice))} appear more than once; keep one")
    if "path" not in columns or "label" not in columns:
        detail = f"unknown column(s) {', '.join(map(repr, unknown))}; " if unknown else ""
        raise UsageError(f"{manifest}: {detail}the header must be path,label[,group] (found {','.join(columns)})")
    if unknown and _first_time(manifest):  # other columns (a source, a note ...) are the user's: read past them
        print(f"warning: {manifest}: column(s) {', '.join(map(repr, unknown))} ignored; vidlstm reads path, label and "
              f"group (only a column named group keeps related clips on one side of a split)", file=sys.stderr)
    if not rows:
        raise UsageError(f"{manifest}: the manifest lists no videos")
    ragged = [line for line, row in enumerate(rows, start=2) if row.get(None)]  # DictReader's key for extra cells
    if ragged and _first_time(manifest, "cells"):  # an unquoted comma in a label split it: read on, but say so
        print(f"warning: {manifest}: {len(ragged)} row(s) have more cells than the header (first: line {ragged[0]}); "
              f"the extra cells are ignored (quote a path or label that holds a comma)", file=sys.stderr)
    items, missing = [], []
    first_row: dict[str, tuple[int, VideoItem]] = {}  # resolved path -> (line, item) of its first row
    duplicates: list[tuple[int, int, str]] = []
    for line, row in enumerate(rows, start=2):
        rel, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
        if not rel or not label:
            raise UsageError(f"{manifest}: line {line} has an empty path or label")
        path = Path(rel) if Path(rel).is_absolute() else manifest.parent / rel
        group = (row.get("group") or "").strip() or None
        item = VideoItem(path, label, group)
        key = _resolved(path)
        if key in first_row:
            earlier_line, earlier = first_row[key]
            if earlier.label != label:  # which one is right only the author knows
                raise UsageError(f"{manifest}: {rel} is labelled {earlier.label!r} on line {earlier_line} and "
                                 f"{label!r} on line {line}; give each video one label")
            if earlier.group != group:
                raise UsageError(f"{manifest}: {rel} is in group {earlier.group!r} on line {earlier_line} and "
                                 f"{group!r} on line {line}; give each video one group")
            duplicates.append((line, earlier_line, rel))  # one clip must not land in both splits
            continue
        first_row[key] = (line, item)
        if not path.is_file():
            missing.append((rel, path))
        items.append(item)
    if duplicates:
        line, earlier_line, rel = duplicates[0]
        print(f"warning: {manifest}: {len(duplicates)} duplicate row(s) ignored (first: line {line} repeats line "
              f"{earlier_line}, {rel})", file=sys.stderr)
    if missing:
        folders = [rel for rel, path in missing if path.is_dir()]
        if folders:  # "missing" of a path that is there confused a user: a row names a file, never a folder
            raise UsageError(f"{manifest}: {len(folders)} listed path(s) are folders, not video files (first: "
                             f"{folders[0]}); list each video on its own row")
        raise UsageError(f"{manifest}: {len(missing)} listed file(s) are missing (first: {missing[0][0]})")
    if "group" in columns and any(item.group is None for item in items):
        empty = sum(item.group is None for item in items)
        raise UsageError(f"{manifest}: {empty} row(s) have an empty group; give every row a group or drop the column")
    return LabelledVideos(items, sorted({item.label for item in items}), manifest.parent, manifest=manifest)


def write_manifest(path, items: list[VideoItem]) -> Path:
    """Write ``items`` as a ``path,label[,group]`` CSV manifest (absolute paths) that ``discover_dataset`` reads back."""
    grouped = any(item.group is not None for item in items)
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS if grouped else MANIFEST_COLUMNS[:2])
    for item in items:
        writer.writerow([Path(item.path).resolve(), item.label, *([item.group or ""] if grouped else [])])
    atomic_write_text(Path(path), rows.getvalue())
    return Path(path)
