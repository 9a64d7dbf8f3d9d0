"""Whether clips a model scores trained it: its run's split.json (and its fine-tune base's), by name or content.

`evaluate` and `demo` both say so where they do: an accuracy on a model's own training clips is not what new clips
get (`demo --model MINE --seed S` drew clips byte-identical to a run's `synth --seed S` training set without a word).
"""
from __future__ import annotations

import json
from pathlib import Path

from vidlstm.data.splits import trained_copies
from vidlstm.logs import log as logger
from vidlstm.training.auto import saved_setting
from vidlstm.training.run_folder import kept_candidate


def warn_in_sample(model_dir, items, what: str, advice: str) -> set[Path]:
    """Warn where any of ``items`` (the ``what``: "clips evaluated") trained the model in ``model_dir``, or where the
    runs it records are gone so none can tell, with ``advice`` on what to score instead; the paths that trained it."""
    trained, splits, gone = trained_on(model_dir, items)
    count = len(trained)
    if gone:
        logger.warning(f"{model_dir}: the training run or base model it records is not there ({gone[0]}): whether "
                       f"the {what} trained it cannot be told")
    if count:
        logger.warning(f"{count} of the {len(items)} {what} trained this model "
                       f"({', '.join(map(str, splits))}): the accuracy is in-sample, not what new "
                       f"clips would get; {advice}")
    return trained


def trained_on(model_dir, items) -> tuple[set[Path], list[Path], list[str]]:
    """The paths of those of ``items`` that trained the model in ``model_dir``, the split.json files that say so, and
    the runs or models its config records that are not there (so the check could not look): its run's split.json (the
    run its config.json records, else RUN/model's RUN), then, for a fine-tuned model, its base's run, and so on."""
    runs, gone = training_runs(Path(model_dir))
    left, splits = {item.path: item for item in items}, []
    for run in runs:
        hit = trained_in_run(run, list(left.values()))
        if hit:
            splits.append(run / "split.json")
            for path in hit:
                del left[path]
    return {item.path for item in items} - set(left), splits, gone


def training_runs(model_dir: Path, depth: int = 8) -> tuple[list[Path], list[str]]:
    """The run folders whose training clips taught ``model_dir`` (its own, then its fine-tune base's, and on), and
    the recorded runs and base models that are not there. The shipped model records none: it trained on synthetic
    clips of another seed."""
    runs: list[Path] = []
    gone: list[str] = []
    model: Path | None = model_dir
    while model is not None and len(runs) < depth:
        try:
            training = json.loads((model / "config.json").read_text()).get("extra", {}).get("training", {})
        except (OSError, ValueError, AttributeError):
            training = {}
        training = training if isinstance(training, dict) else {}
        recorded = training.get("run_dir")
        if isinstance(recorded, str) and (Path(recorded) / "split.json").is_file():
            run = Path(recorded)  # where the model was written, whatever folder it sits in now
        elif (model.parent / "split.json").is_file() and (not isinstance(recorded, str) or model.name == "model"):
            run = model.parent  # RUN/model: a model of an older vidlstm, or a run moved with its model
        else:
            run = None
            if isinstance(recorded, str):
                gone.append(recorded)
        if run is not None and run.resolve() in {r.resolve() for r in runs}:
            break
        if run is not None:
            runs.append(run)
        base = training.get("init_dir")
        model = Path(base) if isinstance(base, str) and Path(base).is_dir() else None
        if isinstance(base, str) and model is None:
            gone.append(base)
    return runs, gone


def trained_in_run(run: Path, items) -> set[Path]:
    """Those of ``items`` that ``run``'s split.json lists as training clips (names absolute, or relative to the
    run's DATA as its config.json, or its kept candidate's, records it; or the same content under another name)."""
    try:
        payload = json.loads((run / "split.json").read_text())
        names = payload["train"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    # An auto run keeps no settings of its own: its kept candidate's, whose split.json it copied.
    settings = run if (run / "config.json").is_file() else kept_candidate(run)
    resolved = saved_setting(settings, "resolved") if settings else None
    data = (resolved.get("data") if isinstance(resolved, dict) else None) or (
        saved_setting(settings, "data") if settings else None)
    root = Path(data).parent if data and Path(data).is_file() else Path(data) if data else None
    trained = {str((Path(n) if Path(n).is_absolute() else root / n).resolve()) for n in names
               if isinstance(n, str) and (Path(n).is_absolute() or root is not None)}
    by_name = {item.path for item in items if str(item.path.resolve()) in trained}
    # Copies of training clips under other names (a folder of "new" clips that holds some of them) count too.
    return by_name | trained_copies(payload, [item.path for item in items if item.path not in by_name])
