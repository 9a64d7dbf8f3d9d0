"""Train/validation splits and cross-validation folds (scikit-learn), group-aware when items have groups."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, StratifiedShuffleSplit

from vidlstm.data.datasets import LabelledVideos
from vidlstm.errors import UsageError
from vidlstm.files import atomic_write_text


def train_val_split(dataset: LabelledVideos, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, val indices), stratified by label; no group ever lands on both sides.

    With groups, StratifiedGroupKFold with round(1 / val_fraction) folds gives the first fold as
    validation (sizes follow the groups, so they are approximate; where even the largest class has fewer clips
    than that, as many folds as it has, so a few clips per class still split). ``val_fraction == 0`` -> no
    validation.
    """
    n = len(dataset.items)
    if val_fraction <= 0:
        return np.arange(n), np.array([], dtype=np.int64)
    if not 0 < val_fraction < 1:
        raise UsageError(f"validation fraction must be in [0, 1), got {val_fraction}")
    targets, groups = dataset.targets(), dataset.groups()
    if groups is not None:
        if val_fraction > 0.5:  # one of k >= 2 folds of the groups: 0.9 gave about half, and split.json said 0.9
            raise UsageError(f"{dataset.source}: --val-fraction {val_fraction:g} with groups: a group-aware split holds "
                             f"out one of k >= 2 folds of the groups, about 1/k of the clips; give 0.5 or less")
        folds = max(2, min(round(1 / val_fraction), int(np.bincount(targets).max())))
        return _first_fold(StratifiedGroupKFold(folds, shuffle=True, random_state=seed), targets, groups, dataset)
    n_val = max(len(dataset.labels), int(round(val_fraction * n)))
    _require_members(targets, 2, dataset, "a train/validation split", hint="; add clips or pass --val-fraction 0")
    if n - n_val < len(dataset.labels):
        raise UsageError(f"{dataset.source}: {n} clips are too few for {len(dataset.labels)} classes with "
                         f"--val-fraction {val_fraction:g} ({n_val} held out, {n - n_val} left to train on, fewer than "
                         f"one per class); lower --val-fraction, add clips, or pass --val-fraction 0")
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
    train, val = next(splitter.split(np.zeros(n), targets))
    return np.sort(train), np.sort(val)


def cross_validation_folds(dataset: LabelledVideos, folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``folds`` (train, val) index pairs covering every item once as validation; group-aware when grouped."""
    targets, groups = dataset.targets(), dataset.groups()
    _require_members(targets, folds if groups is None else 1, dataset, f"{folds}-fold cross-validation")
    return index_folds(targets, groups, folds, seed)


def index_folds(targets: np.ndarray, groups: np.ndarray | None, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The folds of cross_validation_folds over plain arrays (positions 0..N-1): stratified by ``targets``,
    and with ``groups`` no group on both sides of any fold."""
    if groups is not None:
        splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
        pairs = splitter.split(np.zeros(len(targets)), targets, groups)
    else:
        pairs = StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(targets)), targets)
    return [(np.sort(tr), np.sort(va)) for tr, va in pairs]


def _first_fold(splitter, targets, groups, dataset):
    n_groups = len(set(groups.tolist()))
    if n_groups < splitter.n_splits:
        raise UsageError(f"{dataset.source}: {n_groups} groups are too few for a group-aware split into "
                         f"{splitter.n_splits} folds; add groups or raise --val-fraction")
    train, val = next(splitter.split(np.zeros(len(targets)), targets, groups))
    for k in sorted(set(targets.tolist()) - set(targets[train].tolist())):  # every clip of class k went to validation
        held = sorted(set(groups[targets == k].tolist()), key=str)
        raise UsageError(f"{dataset.source}: class {dataset.labels[k]!r} has all its clips in "
                         f"{'one group' if len(held) == 1 else f'{len(held)} groups'} ({', '.join(map(str, held[:3]))}"
                         f"{', ...' if len(held) > 3 else ''}), and a group stays on one side of the split: none is "
                         f"left to train on; give the class clips of other groups, lower --val-fraction (now "
                         f"{1 / splitter.n_splits:.2g} of the groups), or pass --val-fraction 0")
    return np.sort(train), np.sort(val)


def _require_members(targets: np.ndarray, minimum: int, dataset: LabelledVideos, purpose: str,
                     hint: str = "") -> None:
    counts = np.bincount(targets, minlength=len(dataset.labels))
    if counts.min() < minimum:
        label = dataset.labels[int(counts.argmin())]
        raise UsageError(f"{dataset.source}: class {label!r} has {int(counts.min())} clip(s); "
                         f"{purpose} needs at least {minimum} per class{hint}")


def save_split(path, dataset: LabelledVideos, train: np.ndarray, val: np.ndarray, seed: int, val_fraction: float) -> Path:
    """Write the split as relative file names so resume and evaluate reuse exactly these clips."""
    path = Path(path)
    payload = {
        "seed": seed,
        "val_fraction": val_fraction,
        "labels": dataset.labels,
        "train": [dataset.relative_name(dataset.items[i]) for i in train],
        "val": [dataset.relative_name(dataset.items[i]) for i in val],
    }
    return atomic_write_text(path, json.dumps(payload, indent=1))


def record_train_content(path, dataset: LabelledVideos, train: np.ndarray, shas: list[str | None]) -> None:
    """Add to a saved split the training clips' content (``"train_content"``: [bytes, sha256] pairs), so that
    `evaluate` also knows copies of them under other names as in-sample; kept where the split already has it."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(payload, dict) or "train_content" in payload:
        return
    content = set()
    for i in train:
        try:
            size = dataset.items[i].path.stat().st_size
        except OSError:
            continue
        if shas[i] is not None:
            content.add((size, shas[i]))
    payload["train_content"] = sorted(map(list, content))
    atomic_write_text(path, json.dumps(payload, indent=1))


def trained_copies(payload: dict, paths: list[Path]) -> set[Path]:
    """Those of ``paths`` whose content is one of a split's training clips (``record_train_content``): a file is
    read only where its size is a training clip's, so held-out clips cost a stat each."""
    from vidlstm.data.cache import sha256_file

    content = payload.get("train_content") if isinstance(payload, dict) else None
    if not isinstance(content, list):
        return set()
    known = {(pair[0], pair[1]) for pair in content if isinstance(pair, list) and len(pair) == 2}
    sizes = {size for size, _ in known}
    copies = set()
    for path in paths:
        try:
            size = path.stat().st_size
            if size in sizes and (size, sha256_file(path)) in known:
                copies.add(path)
        except OSError:
            continue
    return copies


def load_split(path, dataset: LabelledVideos) -> dict[str, np.ndarray]:
    """Map a saved split back onto ``dataset``: {"train": indices, "val": indices}; files must still be there."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UsageError(f"{path}: cannot read the split file ({err})") from None
    lists = isinstance(payload, dict) and {"train", "val"} & set(payload) and all(
        isinstance(payload.get(name, []), list) and all(isinstance(n, str) for n in payload.get(name, []))
        for name in ("train", "val"))
    if not lists:
        raise UsageError(f"{path}: not a split file (a JSON object whose \"train\" and \"val\" are lists of clip "
                         f"names, as RUN/split.json)")
    index = {dataset.relative_name(item): i for i, item in enumerate(dataset.items)}
    # A name saved as an absolute path (its run's data listed files outside its own folder, as auto's
    # readout_clips.csv does) is found by where the file is, whatever DATA names it.
    index.update({str(item.path.parent.resolve() / item.path.name): i for i, item in enumerate(dataset.items)})
    for i, item in enumerate(dataset.items):  # how runs before the names held from anywhere named a linked class
        index.setdefault(item.path.as_posix(), i)  # folder's clips: as given, from the run's working directory
    subsets = {}
    for name in ("train", "val"):
        names = payload.get(name, [])
        names = [n if n in index or not Path(n).is_absolute() else str(Path(n).parent.resolve() / Path(n).name)
                 for n in names]
        missing = [n for n in names if n not in index]
        if missing:
            raise UsageError(f"{path}: {len(missing)} clip(s) of the saved {name} split are not in the data "
                             f"(first: {missing[0]}); pass the same DATA as the run used")
        subsets[name] = np.array([index[n] for n in names], dtype=np.int64)
    return subsets


def stratified_order(targets: np.ndarray, seed: int, minimum: int = 0) -> tuple[np.ndarray, int]:
    """(order, prefix): a seeded order of the items in which every prefix holds each class in about its share
    of the whole, and how long a prefix must be to hold ``minimum`` items of every class (all of a smaller one).

    Each class's items, shuffled, are spread evenly over [0, 1) and the items sorted by that position; what a
    time budget cuts from the end of the order then costs every class alike.
    """
    targets = np.asarray(targets)
    rng = np.random.default_rng(seed)
    position = np.empty(len(targets))
    for label in np.unique(targets):
        members = np.flatnonzero(targets == label)
        rng.shuffle(members)
        position[members] = (np.arange(len(members)) + 0.5) / len(members)
    order = np.argsort(position, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    prefix = 0
    for label in np.unique(targets) if minimum > 0 else ():
        ranks = np.sort(rank[targets == label])
        prefix = max(prefix, int(ranks[min(minimum, len(ranks)) - 1]) + 1)
    return order, prefix
