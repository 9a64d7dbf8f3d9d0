"""Where an export's files go: ``-o OUT`` a folder, or a file name whose parts are written beside it; each written
first under a hidden name and put in place once every part is written and checked, so that an interrupted export
leaves the files there before it as they were; and held while the export runs, so that a second one into them waits
for none and is refused."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import threading
from pathlib import Path

from vidlstm.errors import UsageError
from vidlstm.files import atomic_write_text
from vidlstm.logs import log as logger

FORMATS = {"onnx": ".onnx", "torch": ".pt2"}
EXPORT_CARD = "export.json"
"""The card of an export into a folder (``-o DIR``); ``-o NAME.onnx`` writes NAME.json beside the parts instead."""
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
"""An export that fails with one of these failed for its -o (a full disk), not for its model's graphs."""


@contextlib.contextmanager
def held_outputs(out, fmt: str, part_names):
    """``resolve_outputs`` while this process holds the export's outputs: a second `vidlstm export` into the same
    card (the same folder, or ``-o m.onnx`` and ``-o m.pt2``) while this one runs is refused with a UsageError. Both
    had run to the end, and the card then described one export beside the other's graphs. The card's checks run once
    the lock is held, so an export that waited for none sees the card of one that just finished."""
    card = resolve_outputs(out, fmt, part_names)[1]  # a bad -o is said before a lock file is made beside it
    # Beside the card of `-o m.onnx`, beside the folder of `-o DIR` (which may not exist yet); one for every spelling.
    anchor = Path(os.path.realpath(card if card.name != EXPORT_CARD else card.parent))
    lock = anchor.parent / f".{anchor.name}.export-lock"
    fd, made = _take_lock(lock, anchor, out)
    try:
        yield resolve_outputs(out, fmt, part_names)
    finally:
        if made:
            lock.unlink(missing_ok=True)  # while held: an export that opened it finds it gone, and takes a new one
        if fd is not None:
            os.close(fd)


def _take_lock(lock: Path, anchor: Path, out) -> tuple[int | None, bool]:
    """(a descriptor holding the lock, whether it is the file ``lock``): flock, let go when the process ends however
    it ends. Where no file can be made beside ``anchor`` (its parent is read-only, as / is to `-o .` in /tmp), a
    folder ``anchor`` is locked itself, as every export into it then does. (None, False) where no lock can be had:
    a file system without locks (some NFS: said in a warning), or an -o that cannot be written (said when written)."""
    for _ in range(3):
        try:
            fd, made = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644), True
        except OSError:
            try:
                fd, made = os.open(anchor, os.O_RDONLY | os.O_DIRECTORY), False
            except OSError:
                return None, False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UsageError(f"{out}: another vidlstm export is writing there; wait for it to end, or give another "
                             f"-o") from None
        except OSError as err:
            os.close(fd)
            logger.warning(f"{out}: cannot lock the export's files ({err.strerror or err}): a second export there "
                           f"at the same time would not be refused")
            return None, False
        try:
            if not made or os.stat(lock).st_ino == os.fstat(fd).st_ino:
                return fd, made
        except FileNotFoundError:
            pass
        os.close(fd)  # the export that held it removed it meanwhile: the one there now is the lock
    raise UsageError(f"{out}: other vidlstm exports are writing there; wait for them to end, or give another -o")


def resolve_outputs(out, fmt: str, part_names) -> tuple[dict[str, Path], Path]:
    """({part name: file}, JSON path) for ``-o OUT`` (see the module docstring); checks OUT's folder exists."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if not str(out).strip():
        raise UsageError("-o names no folder or file (give a folder, or a file name ending in "
                         f"{FORMATS[fmt]})")
    as_folder = str(out).endswith(("/", os.sep))  # `-o m.onnx/`: a folder, as the slash says
    suffix, out = FORMATS[fmt], Path(out)
    if out.is_symlink() and not out.exists():
        raise UsageError(f"{out}: a symbolic link to nothing ({os.readlink(out)}); give a folder, or a file name "
                         f"ending in {suffix}")
    other = {s: f for f, s in FORMATS.items() if f != fmt}.get(out.suffix.lower())
    if other:  # it would have become a folder named like a file of the other format
        raise UsageError(f"{out}: ends in {out.suffix}, the suffix of --format {other}; for --format {fmt} give a "
                         f"folder or a file name ending in {suffix}")
    if out.suffix.lower() == suffix and not as_folder:
        folder, stem = out.parent, out.stem
        files = {name: folder / f"{stem}.{name}{suffix}" for name in part_names}
        card = folder / f"{stem}.json"
    else:
        if out.exists() and not out.is_dir():
            raise UsageError(f"{out}: exists and is not a folder (give a folder, or a file name ending in {suffix})")
        folder = out.parent if not out.is_dir() else out
        files = {name: out / f"{name}{suffix}" for name in part_names}
        card = out / EXPORT_CARD
    if not folder.is_dir():
        raise UsageError(f"{out}: the folder {folder} does not exist")
    before = _format_of(card)
    if before and before != fmt:  # `-o m.onnx` then `-o m.pt2`: one m.json, which would describe only the second
        raise UsageError(f"{card}: describes the --format {before} export there; give --format {fmt} another -o "
                         f"(another file name or folder), so each export keeps its card")
    if card.exists() and not before:  # someone's own data.json beside `-o data.onnx`
        raise UsageError(f"{card}: exists and is no export card of vidlstm's, which the export would write there; "
                         f"give another -o (another file name or folder)")
    foreign = [path for path in files.values() if path.exists()] if not before else []
    if foreign:  # someone's own encoder.onnx, replaced without a word
        raise UsageError(f"{foreign[0]}: exists, with no export card of vidlstm's ({card.name}) beside it, and the "
                         f"export would replace it; give another -o (another file name or folder)")
    return files, card


def temporary_files(out, files: dict[str, Path]) -> dict[str, Path]:
    """Where each part is written and checked first: a hidden name beside its file, with its suffix. A folder that
    cannot be written is said here, before any work, as the -o's fault (it read as the model's graph failing)."""
    temporary = {name: path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}") for name, path in files.items()}
    probe = next(iter(temporary.values()))
    try:
        probe.parent.mkdir(exist_ok=True)
        probe.open("wb").close()
    except OSError as err:
        raise UsageError(f"{out}: cannot write there ({err.strerror or err})") from None
    return temporary


def put_in_place(temporary: dict[str, Path], files: dict[str, Path], card: Path, text: str) -> None:
    """The parts written and checked: the earlier card goes first (a folder interrupted here holds no card, so reads
    as no export, never as one model's card beside another's graphs), then each part replaces its file (and an earlier
    export's part this one lacks goes), the card last."""
    with _signals_held():  # a Ctrl-C here comes once every file is in place: never half of one export, half another
        card.unlink(missing_ok=True)
        for name, path in files.items():  # a part this model has no graph for (stream: no causal head) is the earlier's
            if name not in temporary:
                path.unlink(missing_ok=True)
        for name, path in temporary.items():
            os.replace(path, files[name])
        atomic_write_text(card, text)


@contextlib.contextmanager
def _signals_held():
    """SIGINT and SIGTERM held back while the block runs, then acted on as they would have been (Python's handlers run
    in the main thread, so they are swapped there; a mask would not do: torch's threads would take the signal)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    before = {number: signal.signal(number, lambda signum, frame: caught.append(signum))
              for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)
    if caught:
        handler = before[caught[0]]
        if callable(handler):  # KeyboardInterrupt for Ctrl-C, the command line's Terminated for SIGTERM
            handler(caught[0], None)
        elif handler == signal.SIG_DFL:
            os.kill(os.getpid(), caught[0])


def _format_of(card: Path) -> str | None:
    """The format an existing export card describes, or None (no card, or not one of ours)."""
    import json

    try:
        value = json.loads(card.read_text())
    except (OSError, ValueError):
        return None
    return value.get("format") if isinstance(value, dict) and value.get("format") in FORMATS else None


def partner_left_out(model_dir, config) -> dict:
    """Where the model has a partner (``ModelConfig.partner``), which its graphs leave out: a warning now and the
    card's ``partner`` entry ({} otherwise), so that whoever runs the files knows their scores are the model's own
    network's, not vidlstm's mix of the two."""
    if not config.partner:
        return {}
    backbone = config.partner["config"]["backbone"]
    note = (f"not exported: vidlstm mixes {config.partner['weight']:g} of a {backbone} partner's probabilities into "
            f"each clip's; these graphs give the model's own network's alone")
    logger.warning(f"{model_dir}: its partner ({backbone}) is not exported; the graphs score clips with the model's "
                   f"own network alone")
    return {"partner": note}
