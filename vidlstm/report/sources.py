"""Read what a report is built from: a training run folder, an evaluate output, or a predictions JSONL/CSV.

Every part is optional: what cannot be found or read is listed in ``missing`` (for the page to say), never
raised, so a half-finished run still gets a report.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from vidlstm.batch.records import CSV_HEADERS as RECORD_HEADERS
from vidlstm.batch.record_lines import NotARecord
from vidlstm.batch.records import file_stamp, output_target, read_part, sort_and_dedup
from vidlstm.batch.run_settings import records_base
from vidlstm.errors import UsageError
from vidlstm.training.config import STATE_FILE
from vidlstm.training.run_folder import kept_candidate

EVALUATE_COLUMNS = ("path", "label", "predicted", "score", "correct", "top_k", "status", "error")
EXPLANATION_FOLDER = "explanations"  # looked for beside a predictions file and inside run/evaluate folders


@dataclass
class Evaluation:
    """An evaluate output folder: metrics.json, classification_report.txt, confusion_matrix.png, predictions.csv."""

    root: Path
    metrics: dict | None = None
    report_text: str | None = None
    confusion_png: Path | None = None
    rows: list[dict] = field(default_factory=list)  # predictions.csv rows
    missing: list[str] = field(default_factory=list)


@dataclass
class TrainingRun:
    """A training run folder (or a bare model folder): settings, epochs, model metrics, curves, evaluations."""

    root: Path
    config: dict | None = None
    epochs: list[dict] = field(default_factory=list)  # metrics.csv rows
    model_dir: Path | None = None
    model_metrics: dict | None = None
    labels: list[str] | None = None
    split: dict | None = None
    curves_png: Path | None = None
    evaluations: list[Evaluation] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    choice: dict | None = None  # choice.json of a `train --backbone auto` run: the candidates and the kept one


@dataclass
class Predictions:
    """A `vidlstm predict` record file (JSONL or CSV)."""

    path: Path
    records: list[dict] = field(default_factory=list)
    cut: int = 0  # bytes of a record cut off at the file's end (a predict killed, or still writing): left out


def _read_json(path: Path, missing: list[str], what: str):
    if not path.is_file():
        missing.append(f"{path.name} ({what})")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        missing.append(f"{path.name} ({what}): unreadable ({' '.join(str(err).split())})")
        return None


def _read_csv_rows(path: Path, missing: list[str], what: str) -> list[dict]:
    if not path.is_file():
        missing.append(f"{path.name} ({what})")
        return []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        missing.append(f"{path.name} ({what}): unreadable ({' '.join(str(err).split())})")
        return []


def _existing(path: Path, missing: list[str], what: str) -> Path | None:
    if path.is_file():
        return path
    missing.append(f"{path.name} ({what})")
    return None


def _csv_header(path: Path) -> list[str]:
    try:  # a record CSV keeps a file name that is not UTF-8 as its bytes (record_lines.decode_text)
        with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as f:  # -sig: a spreadsheet's BOM
            return next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UsageError(f"{path}: cannot read ({' '.join(str(err).split())})") from None


def is_evaluation_dir(path: Path) -> bool:
    return (path / "predictions.csv").is_file() or (path / "classification_report.txt").is_file()


def load_evaluation(root: Path, predictions_csv: Path | None = None) -> Evaluation:
    ev = Evaluation(root=root)
    ev.metrics = _read_json(root / "metrics.json", ev.missing, "accuracy and other metrics")
    report = root / "classification_report.txt"
    ev.report_text = report.read_text(encoding="utf-8", errors="replace") if report.is_file() else None
    if ev.report_text is None:
        ev.missing.append("classification_report.txt (precision / recall per class)")
    ev.confusion_png = _existing(root / "confusion_matrix.png", ev.missing, "confusion matrix")
    ev.rows = _evaluation_rows(predictions_csv or root / "predictions.csv", ev.missing)
    return ev


def _evaluation_rows(path: Path, missing: list[str]) -> list[dict]:
    """The rows of an evaluate predictions.csv. One that is there but is not evaluate's (another header, a row of
    other cells, unreadable) is refused naming the file and line: read as far as it went, it gave a page of per-class
    results from no file beside metrics.json's counts of them, and no word of why."""
    if not path.is_file():
        missing.append(f"{path.name} (per-file predictions)")
        return []
    advice = "run `vidlstm evaluate` again to write it"
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            if tuple(header[: len(EVALUATE_COLUMNS)]) != EVALUATE_COLUMNS:
                raise UsageError(f"{path}: header {','.join(header[:8]) or 'empty'} is not vidlstm evaluate's "
                                 f"({','.join(EVALUATE_COLUMNS)}); {advice}")
            rows = []
            for row in reader:
                if len(row) != len(header):
                    raise UsageError(f"{path}:{reader.line_num}: a row of {len(row)} cells where the header has "
                                     f"{len(header)}; {advice}")
                rows.append(dict(zip(header, row)))
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UsageError(f"{path}: unreadable ({' '.join(str(err).split())}); {advice}") from None


def load_run(root: Path) -> TrainingRun:
    run = TrainingRun(root=root)
    if is_model_dir(root):  # a model folder on its own (no run beside it): its metrics, no training history
        run.model_dir = root
        run.missing.append("training history (this is a model folder on its own: the run that trained it has "
                           "its curves and epochs)")
        run.config = _read_json(root / "config.json", run.missing, "the model's settings")
    else:
        history = kept_candidate(root) or root  # train --backbone auto: the kept family's own run folder
        if history != root:
            run.choice = _read_json(root / "choice.json", run.missing, "the choice between the candidates")
        run.config = _read_json(history / "config.json", run.missing, "training settings")
        model_out = (run.config or {}).get("model_out") or (run.choice or {}).get("model_dir")  # auto: its choice's
        run.model_dir = Path(model_out) if model_out and Path(model_out).is_dir() else root / "model"
        run.epochs = _read_csv_rows(history / "metrics.csv", run.missing, "per-epoch losses and accuracies")
        run.curves_png = _existing(history / "curves.png", run.missing, "training curves")
        run.split = _read_json(history / "split.json", run.missing, "train/validation split")
    if run.model_dir.is_dir():
        run.model_metrics = _read_json(run.model_dir / "metrics.json", run.missing, "final model metrics")
        run.labels = _read_json(run.model_dir / "labels.json", run.missing, "class labels")
    else:
        run.missing.append(f"{run.model_dir.name}/ (the trained model folder)")
    run.evaluations = [load_evaluation(sub) for sub in sorted(p for p in root.iterdir() if p.is_dir())
                       if is_evaluation_dir(sub)]
    if not run.evaluations and run.model_dir == root:  # never an evaluation written into the model folder
        run.missing.append(f"an evaluation: run `vidlstm evaluate DATA --model {root} -o EVAL` on clips the model did "
                           f"not train on and report on EVAL")
    elif not run.evaluations:
        run.missing.append("an evaluation (confusion matrix, per-class results): run `vidlstm evaluate DATA "
                           f"--model {run.model_dir} -o {root / 'evaluation'}` on clips the model did not train on "
                           f"(or with --split {root / 'split.json'} --subset val) and build the report again")
    return run


def _has_history(folder: Path) -> bool:
    """Something of a training run to report: its epochs, curves, model, choice or saved state (a last/ made before
    the first epoch ended holds none of it)."""
    markers = ("metrics.csv", "curves.png", "model", "model.safetensors", "choice.json")
    return any((folder / m).exists() for m in markers) or (folder / STATE_FILE).is_file()


def is_model_dir(path: Path) -> bool:
    return (path / "model.safetensors").is_file()


def _run_of_model(path: Path) -> Path | None:
    """The training run folder whose model ``path`` is (its ``model/``, beside the run's history), or None for a
    model folder on its own (copied, downloaded) or any other folder."""
    if not is_model_dir(path):
        return None
    run_dir = path.parent if path.name not in ("", "..") else path.resolve().parent
    kept = run_dir / "model"
    if not (kept.is_dir() and kept.samefile(path)):
        return None
    history = ("metrics.csv", "curves.png", "choice.json", STATE_FILE)
    return run_dir if any((run_dir / name).is_file() for name in history) or (run_dir / "last").is_dir() else None


def load_source(path) -> TrainingRun | Evaluation | Predictions:
    """Decide what ``path`` is from what it holds, and read it."""
    path = Path(path)
    if path.is_dir():
        if is_evaluation_dir(path):
            return load_evaluation(path)
        run_dir = _run_of_model(path)
        if run_dir is not None:  # its page said "training run" of a folder with no run in it
            raise UsageError(f"{path}: is the model folder of the training run {run_dir}; report on the run "
                             f"(`vidlstm report {run_dir}`): its page holds this model's metrics beside the epochs, "
                             f"curves and evaluations")
        if _has_history(path):
            return load_run(path)
        if (path / "last").is_dir():  # a run that ended before its first epoch: a page of "absent" said nothing
            raise UsageError(f"{path}: a training run with no epoch to report (no metrics.csv, model/ or saved "
                             f"state): it stopped before training, on an error or interrupted; train it again "
                             f"(with --resume where it was interrupted)")
        candidates = path / "candidates"
        if candidates.is_dir():  # an auto run interrupted before it chose: each candidate is a run of its own
            began = sorted(c.name for c in candidates.iterdir() if _has_history(c))
            raise UsageError(f"{path}: a --backbone auto run that has not chosen its model yet (where it was "
                             f"interrupted, resume it with the same train command and --resume); " + (
                                 f"each candidate reports on its own: "
                                 f"{', '.join(str(candidates / name) for name in began)}" if began
                                 else "no candidate has trained yet"))
        raise UsageError(f"{path}: neither a training run folder (metrics.csv, model/) nor an evaluate output "
                         "(predictions.csv, metrics.json)")
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return _predictions(path)
    if suffix == ".csv":
        header = _csv_header(path)
        if not header and not path.stat().st_size:  # empty: said as an empty .jsonl is
            return _predictions(path)
        if tuple(header[: len(EVALUATE_COLUMNS)]) == EVALUATE_COLUMNS:
            return load_evaluation(path.parent, predictions_csv=path)
        if tuple(header) in RECORD_HEADERS:
            return _predictions(path)
        raise UsageError(f"{path}: not a vidlstm predictions CSV (header {','.join(header[:6]) or 'empty'}); "
                         "expected `vidlstm predict` or `vidlstm evaluate` output")
    raise UsageError(f"{path}: expected a run folder, an evaluate folder, or a .jsonl/.csv predictions file")


def _predictions(path: Path) -> Predictions:
    """A predictions file's records, one per file as its finished form has them: an interrupted run's output (or one
    left unsorted) may still hold the records a resume replaced. A line that is no record is refused with advice
    for a report's input (predict's is for its output); a file with no complete record is refused, empty or cut off,
    JSONL as CSV: a page of nothing said less than one line."""
    try:
        records, cut = read_part(path, strict=True)
    except NotARecord as err:
        if err.line is None:  # the CSV header
            raise UsageError(f"{path}: {err.reason}; expected `vidlstm predict` output") from None
        raise UsageError(f"{path}:{err.line}: {err.reason}; fix or remove that line (or report on the predict "
                         f"output it was copied from), then report again") from None
    if not records:
        what = (f"it is {cut} bytes of a record cut off (a predict killed mid-write, or still writing); finish "
                f"that predict run (re-run it: it resumes), then report again") if cut else (
                    "it is empty" if not path.stat().st_size else "it holds no record line")
        raise UsageError(f"{path}: holds no complete vidlstm record: {what}")
    return Predictions(path, sort_and_dedup(records, records_base(output_target(path)), file_stamp), cut)


def cut_off_note(cut: int) -> str:
    return (f"ends in a record cut off ({cut} bytes: a predict killed mid-write, or still writing), left out of the "
            f"report; finish that predict run (re-run it: it resumes), then report again")


def explanation_dirs(source, extra: list | None = None) -> list[Path]:
    """Folders to search for explanation JSONs: those given, then the conventional one beside the source."""
    base = source.path.parent if isinstance(source, Predictions) else source.root
    found = [Path(d) for d in extra or []]
    if (base / EXPLANATION_FOLDER).is_dir():
        found.append(base / EXPLANATION_FOLDER)
    return found
