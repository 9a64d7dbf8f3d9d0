"""A training run's folder before anything is decoded: a new run, a resumed one, and where its model may go."""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

from vidlstm.errors import UsageError
from vidlstm.files import atomic_write_text, locked_file
from vidlstm.logs import log as logger
from vidlstm.training.auto import saved_setting
from vidlstm.training.config import STATE_FILE, TrainConfig


@contextmanager
def holding(config: TrainConfig):
    """Hold the run folder while this process trains into it: a second `train` or `finetune` into it (a --resume in
    another terminal while the first still runs) is refused, where it would have resumed from the running one's state
    and written the model, metrics and state beside it. The lock is ``.NAME.lock`` beside the run folder (as predict's
    beside its output; flock: released when the process ends however it ends), removed when the run ends (a refused
    run left it beside no run folder); one a killed run left holds no lock. The run folder itself is not made here; a
    run folder it found absent, and parent folders made for the lock, are removed again where the run wrote no file
    into them (a run refused after it made RUN/last/). Re-entrant in one process (auto hands a torchrun or
    --val-fraction 0 run to vidnet in the same folder); under torchrun rank 0 holds it. A file system without locks
    (some NFS, Lustre) runs unguarded, with a warning."""
    run_dir = Path(os.path.realpath(config.run_dir))  # a symlinked run folder is one folder
    if os.environ.get("RANK", "0") != "0" or run_dir in _HELD:
        yield
        return
    made = [folder for folder in (run_dir.parent, *run_dir.parent.parents) if not folder.exists()]
    fresh = not run_dir.exists()
    lock = run_dir.parent / f".{run_dir.name}.lock"
    fd = None
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        fd = locked_file(lock)
    except BlockingIOError:
        raise UsageError(f"{config.run_dir}: another vidlstm train or finetune is writing this run folder; wait for it "
                         f"to end (--resume then continues it, if it was stopped) or choose another -o") from None
    except OSError as err:  # a folder that cannot be written (the run says so when it writes), or no flock there
        logger.warning(f"{config.run_dir}: cannot lock the run folder ({err.strerror or err}): a second train "
                       f"into it at the same time would not be refused")
    _HELD.add(run_dir)
    try:
        yield
    finally:
        _HELD.discard(run_dir)
        if fresh:  # a run refused before it wrote a file (a --val-fraction too high) leaves no empty folders
            _remove_empty(run_dir)
        if fd is not None or made:  # removed while still held: a run that opened it meanwhile opens it again
            lock.unlink(missing_ok=True)  # (files.locked_file); unheld (no flock there) only from a folder made for it
        if fd is not None:
            os.close(fd)
        if made and not run_dir.exists():  # refused before it made anything: leave no folders of ours
            for folder in made:  # innermost first
                try:
                    folder.rmdir()
                except OSError:
                    break


def _remove_empty(folder: Path) -> None:
    for sub, _, _ in sorted(os.walk(folder), key=lambda entry: -len(entry[0])):  # innermost first; files stay
        try:
            os.rmdir(sub)
        except OSError:
            pass


_HELD: set[Path] = set()
"""Run folders this process holds (``holding``), resolved."""


def check_run_kind(config: TrainConfig) -> None:
    """A run folder holds runs of one kind: `--backbone auto`'s candidates and choice, or one backbone's run. Another
    kind trained into it (resumed or not) replaced its model and left a folder of both (choice.json naming a model that
    was gone, the report mixing the two runs)."""
    run_dir = config.run_dir
    if (run_dir / "model.safetensors").is_file():  # a run's own config.json would have replaced the model's
        raise UsageError(f"{run_dir}: holds a model (model.safetensors), not a training run; -o names a run folder, "
                         f"whose model goes to RUN_DIR/model: choose another -o")
    if config.backbone == "auto":
        if (run_dir / STATE_FILE).is_file():
            backbone = saved_setting(run_dir, "backbone") or "?"
            raise UsageError(f"{run_dir}: already holds a training run of one backbone ({backbone}); "
                             + (f"resume it with --backbone {backbone}" if config.resume
                                else "train --backbone auto into another -o"))
        if not config.resume and any((run_dir / "candidates").glob(f"*/{STATE_FILE}")):
            # refused here, before the read-outs' decode (and before the run's clock.json is rewritten)
            raise UsageError(f"{run_dir}: already holds a training run; pass --resume to continue it or choose "
                             f"another -o")
    elif (run_dir / "choice.json").is_file() or (run_dir / "candidates").is_dir():
        raise UsageError(f"{run_dir}: already holds a --backbone auto run (its candidates and choice); "
                         f"{'resume it with --backbone auto' if config.resume else 'choose another -o'}")


def check_run_dir(config: TrainConfig) -> Path:
    check_run_kind(config)
    state_path = config.state_path
    if config.resume and not state_path.is_file() and not config.run_dir.is_dir():
        raise UsageError(f"{state_path}: no resume state to continue from; run without --resume")
    config.check_resumed_settings()
    if config.resume and not state_path.is_file():
        # Interrupted before its first epoch ended (decoding, the input search): nothing to continue, so it starts
        # over, as the interrupted command said --resume would do (its cached clips are kept).
        logger.info(f"{config.run_dir}: no epoch of the interrupted run had ended; starting it over")
        config.resume = False
    if not config.resume and state_path.exists():
        raise UsageError(f"{config.run_dir}: already holds a training run; pass --resume to continue it "
                         f"or choose another -o")
    check_model_out(config)
    return state_path


RUN_MARKERS = ("last", "candidates", "choice.json", "metrics.csv")
"""What a training run folder holds and a model folder never does."""
MODEL_MARKERS = ("config.json", "model.safetensors")
"""What a model folder holds (a one-backbone run folder has a config.json too)."""
MODEL_OUT_FILE = Path("candidates") / "model_out.json"
"""Where an auto run (which keeps no config.json of its own) records the --model-out it writes to."""


def _chosen_family(run_dir: Path) -> str | None:
    """The family an ``auto`` run's choice.json names as kept, or None (no choice yet, or unreadable)."""
    try:
        return json.loads((Path(run_dir) / "choice.json").read_text())["chosen"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def kept_candidate(run_dir: Path) -> Path | None:
    """RUN_DIR/candidates/FAMILY of an ``auto`` run (its choice.json names the kept family), or None."""
    chosen = _chosen_family(run_dir)
    if chosen is None:
        return None
    folder = Path(run_dir) / "candidates" / str(chosen)
    return folder if folder.is_dir() and folder.parent == Path(run_dir) / "candidates" else None


def auto_run_finished(run_dir: Path, model_dir: Path) -> bool:
    """The ``auto`` run in ``run_dir`` chose, and ``model_dir`` is the kept candidate's copy (a run's last step)."""
    chosen = _chosen_family(run_dir)
    try:
        metrics = json.loads((Path(model_dir) / "metrics.json").read_text())
        copied = metrics["chosen_from_data"]["family"]["chosen"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return chosen is not None and copied == chosen and (Path(run_dir) / "split.json").is_file()


def saved_model_out(config: TrainConfig) -> str | None:
    """The model folder the run being resumed writes to: its config.json's (or, for an auto run, MODEL_OUT_FILE's or
    choice.json's) --model-out; None where it wrote to RUN_DIR/model."""
    if (config.run_dir / "config.json").is_file():
        return saved_setting(config.run_dir, "model_out")
    for name, key in ((MODEL_OUT_FILE, "model_out"), (Path("choice.json"), "model_dir")):
        try:
            value = json.loads((config.run_dir / name).read_text()).get(key)
        except (OSError, ValueError, AttributeError):
            continue
        return value if value and Path(value).resolve() != (config.run_dir / "model").resolve() else None
    return None


def check_model_out(config: TrainConfig) -> None:
    """--model-out must not replace a model (without --replace-model), never the one it fine-tunes from, nor a run
    folder, a file, a folder of other files (the model's README.md, metrics.json ... replaced the user's) or the run's
    own folder; a resumed run writes where it started writing (another model there was silently replaced)."""
    if config.resume and any((config.run_dir / name).is_file() for name in ("config.json", MODEL_OUT_FILE,
                                                                           "choice.json")):
        saved = saved_model_out(config)
        if config.model_out and Path(config.model_out).resolve() != Path(saved or config.run_dir / "model").resolve():
            raise UsageError(f"{config.model_out}: the run being resumed writes its model to "
                             f"{saved or config.run_dir / 'model'}; resume it without --model-out")
        config.model_out = config.model_out or saved
        return
    if not config.model_out:
        return
    out = Path(config.model_out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{config.model_out}: a file, not a folder; name a folder for --model-out")
    if config.init_from and out.resolve() == Path(config.init_from).resolve():
        raise UsageError(f"{config.model_out}: --model-out is the model --from starts from; name another folder")
    if out.resolve() in (config.run_dir.resolve(), *config.run_dir.resolve().parents):
        raise UsageError(f"{config.model_out}: --model-out is the run folder -o or holds it; name another folder")
    if any((out / marker).exists() for marker in RUN_MARKERS):
        raise UsageError(f"{config.model_out}: a training run folder, not a model folder; name another --model-out")
    is_model = any((out / marker).is_file() for marker in MODEL_MARKERS)
    if is_model and not config.replace_model:
        raise UsageError(f"{config.model_out}: already holds a model; --model-out names a new folder (or pass "
                         f"--replace-model to replace it)")
    if out.is_dir() and not is_model and any(out.iterdir()):
        # the model's README.md, metrics.json ... would replace the user's own, or land among a data set's classes
        raise UsageError(f"{config.model_out}: a folder of other files, not a model; --model-out names a new or "
                         f"empty folder (or a model, with --replace-model)")


MODEL_FILES = ("config.json", "labels.json", "model.safetensors", "metrics.json", "README.md")
"""The files vidlstm.checkpoint.save_model writes into a model folder."""


def clear_model_folder(dest: Path, source: Path) -> None:
    """Removes the model files in ``dest`` before an auto run copies its kept model (``source``) there, and nothing
    else: the whole folder was once removed, with any files of the user's in it. They are an earlier model's (which
    --replace-model replaces) or a copy of ``source``'s cut short; a folder of other files is refused (check_model_out
    refuses it first)."""
    if not dest.exists():
        return
    if not dest.is_dir():
        raise UsageError(f"{dest}: a file, not a folder; the kept model is not copied over it")
    run = [marker for marker in RUN_MARKERS if (dest / marker).exists()]
    is_model = any((dest / marker).is_file() for marker in MODEL_MARKERS) and not run
    others = [] if is_model else sorted(p.name for p in dest.iterdir()
                                        if p.name not in MODEL_FILES or not _same(p, source))
    if others:
        raise UsageError(f"{dest}: not a model folder (it holds {others[0]}); the kept model is not copied into it")
    for name in MODEL_FILES:
        (dest / name).unlink(missing_ok=True)


def _same(path: Path, source: Path) -> bool:
    """``path`` is a copy of the same-named file in ``source``."""
    try:
        return path.read_bytes() == (source / path.name).read_bytes()
    except OSError:
        return False


def record_model_out(config: TrainConfig) -> None:
    """An auto run's --model-out, kept (absolute) for its resume: it has no config.json of its own."""
    if config.model_out and not config.resume:
        (config.run_dir / MODEL_OUT_FILE).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(config.run_dir / MODEL_OUT_FILE,
                          json.dumps({"model_out": str(Path(config.model_out).resolve())}) + "\n")


def check_outside_data(config: TrainConfig) -> None:
    """-o, --cache and --model-out outside a DATA folder: inside it (or DATA itself), the folder was made first, then
    read as a class folder with no videos, failing this run and every later one on that data."""
    for flag, folder in (("-o", config.out_dir), ("--cache", config.cache_dir), ("--model-out", config.model_out)):
        check_outside(config.data, flag, folder)


def check_outside(data, flag: str, folder) -> None:
    data = Path(data)
    if folder and data.is_dir() and data.resolve() in (Path(folder).resolve(), *Path(folder).resolve().parents):
        raise UsageError(f"{folder}: {flag} is inside DATA ({data}), where it would be read as a class folder; name "
                         f"a folder outside it")
