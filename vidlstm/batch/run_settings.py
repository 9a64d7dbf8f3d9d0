"""What shaped an output's records, kept beside it, so that a resumed `vidlstm predict` cannot mix two kinds.

A resumed run skips the files already recorded. Had it been given another model, another ``--top-k``, a timeline
where the first run had none (or the other way round), ``--min-score`` or ``--exact-frames``, the finished file would
hold records of two kinds, and nothing in it would say which is which. So the first run writes these settings to
``.NAME.settings.json`` beside the output (hidden, like its lock file), and a run that finds records made with
other settings refuses to add to them, naming what differs.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from vidlstm.defaults import snaps_to_keyframes
from vidlstm.errors import UsageError
from vidlstm.files import atomic_write_text

SHAPING = ("model", "top_k", "timeline_fps", "min_score", "exact_frames", "explain")
"""The settings a record depends on, in the order a refusal names them (one that a settings file written by an
older vidlstm lacks is not compared; the first run that resumes such an output adds its own)."""
_OPTION = {"top_k": "--top-k", "min_score": "--min-score"}  # the others are worded in _describe


def model_digest(model_dir: Path) -> str:
    """sha256 over a model folder's config and weights: the same model under any path, another one under the same."""
    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).glob("*.safetensors")) + [Path(model_dir) / "config.json"]:
        digest.update(path.name.encode())
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def record_settings(model_dir: Path, top_k: int, timeline_fps: float | None, min_score: float,
                    exact_frames: bool, explain: bool = False) -> dict:
    """The settings that shape a record (``timeline_fps`` None: no timeline; ``explain``: records name their
    explanation). ``exact_frames`` as the frames were sampled: a model that does not snap to keyframes (a
    statistics read-out) takes the segment centres with or without the flag, so both spellings are one setting,
    and records an older vidlstm snapped for it are told apart from the centres it is served now."""
    return {"model": model_digest(model_dir), "model_dir": str(Path(model_dir).resolve()), "top_k": top_k,
            "timeline_fps": timeline_fps, "min_score": min_score,
            "exact_frames": bool(exact_frames) or not snaps_to_keyframes(_clip_head(model_dir)),
            "explain": bool(explain)}


def _clip_head(model_dir: Path):
    config = _read(Path(model_dir) / "config.json") or {}
    return config.get("clip_head")


RECORDS_FROM = "records_from"
"""The settings key that says where an output's relative record paths start: the folder its first run started in,
relative to the output's own folder (so a copied or moved project keeps it: `..` for `-o out/p.jsonl`)."""


def records_base(target: Path) -> str:
    """The folder the relative paths of an output's records are relative to: where its first run started, found
    from the output's folder (``RECORDS_FROM``), so a run resumed from another folder finds them; the working
    folder where the settings do not say (a new output, or one an older vidlstm wrote)."""
    start = (_read(settings_path(target)) or {}).get(RECORDS_FROM)
    if not isinstance(start, str):
        return os.getcwd()
    base = os.path.realpath(os.path.join(_folder_of(target), start))
    return base if os.path.isdir(base) else os.getcwd()


def starting_at(settings: dict, base: str, target) -> dict:
    """``settings`` saying that the relative record paths of the output at ``target`` start at ``base``."""
    return dict(settings, **{RECORDS_FROM: os.path.relpath(os.path.realpath(base), _folder_of(target))})


def _folder_of(target) -> str:
    return os.path.realpath(os.path.dirname(os.path.abspath(target)))


def settings_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.settings.json")


def check_and_keep(output: Path, target: Path, settings: dict, has_records: bool) -> tuple[list[str], bool]:
    """Refuse to add records made with ``settings`` to an output whose records were made with others; else keep them
    beside it. ``target``: where the output's bytes are (a symlinked output's own file). An output with no records
    takes this run's settings; one with records but no settings file (copied without it, or written by an older
    vidlstm) cannot be checked, and takes them too. Returns warnings for the user (records that could not be
    checked), and whether the settings are kept beside the output (not where its folder cannot be written)."""
    path = settings_path(target)
    warnings = []
    if has_records:
        earlier = _read(path)
        if earlier is not None:
            differ = _differ(earlier, settings)
            if differ:
                raise UsageError(f"{output}: its records were made with {_describe(differ, earlier)}, this run asks "
                                 f"for {_describe(differ, settings)}; resume with the same settings, or write to "
                                 f"another -o")
            missing = {key: settings[key] for key in SHAPING if key not in earlier and key in settings}
            # An older vidlstm's file: what this run's records were made with is checked from now on, where the file
            # can be rewritten; where not, the older file is still there and checked on what it holds.
            if missing and not keep_beside(target, {**earlier, **missing}):
                warnings.append(f"{output}: its settings file ({path.name}) was written by an older vidlstm and its "
                                f"folder cannot be written, so a later run's {', '.join(sorted(missing))} is not "
                                f"checked against these records (this run's: {_describe(sorted(missing), settings)})")
            return warnings, True
        warnings.append(f"{output}: holds records but no settings file beside it ({path.name}, hidden: copy it with "
                        f"the output), so they are not checked against this run's model and settings, and their "
                        f"relative paths are read from this folder")
    else:  # a new output: its relative record paths start here (one with records, but no settings, says nothing)
        settings = starting_at(settings, os.getcwd(), target)
    return warnings, keep_beside(target, settings)  # not kept: the records are still written, unchecked


def common_settings(parts: list) -> dict | None:
    """The settings every part of a sharded run was made with (None: no part kept any); parts made with different
    settings are refused, naming two of them and what differs."""
    kept = {}
    for part in parts:
        settings = _read(settings_path(Path(part).resolve()))
        if settings is not None:
            kept[str(part)] = settings
    if not kept:
        return None
    (first, reference), *others = kept.items()
    for part, settings in others:
        differ = _differ(reference, settings)
        if differ:
            raise UsageError(f"{first} and {part} were made with different settings ({_describe(differ, reference)} "
                             f"against {_describe(differ, settings)}); merge the parts of one run")
    return reference


def other_settings(target: Path, settings: dict | None) -> tuple[str, str] | None:
    """Where the settings kept beside ``target`` differ from ``settings``: (theirs, these) in words; else None (the
    same, or either unknown)."""
    kept = _read(settings_path(Path(target).resolve()))
    differ = _differ(kept, settings) if kept is not None and settings is not None else []
    return (_describe(differ, kept), _describe(differ, settings)) if differ else None


def has_settings(output) -> bool:
    """Whether an output (or part) has its settings file beside it."""
    return _read(settings_path(Path(output).resolve())) is not None


def keep_beside(output: Path, settings: dict | None) -> bool:
    """Write ``settings`` beside ``output``: a predict run's, or a merged output's, so that a run resumed into it is
    checked like the parts were. None (parts that kept none): an earlier output's settings file is removed, as it
    would describe records that are no longer there. A folder that cannot be written keeps none (False)."""
    path = settings_path(Path(output).resolve())
    try:
        if settings is None:
            path.unlink(missing_ok=True)
        elif _read(path) != settings:
            atomic_write_text(path, json.dumps(settings, indent=1) + "\n")
    except OSError:
        return False
    return True


def _differ(earlier: dict, later: dict) -> list[str]:
    return [key for key in SHAPING if key in earlier and key in later and earlier[key] != later[key]]


def _read(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _describe(keys: list[str], settings: dict) -> str:
    words = []
    for key in keys:
        value = settings.get(key)
        if key == "model":
            words.append(f"the model {settings.get('model_dir') or '?'} ({str(value)[:12]})")
        elif key == "timeline_fps":
            words.append("--timeline at " + format(value, "g") + " fps" if value else "no --timeline")
        elif key == "exact_frames":  # the frames sampled: the flag, or a model served the centres anyway
            words.append("segment-centre frames (--exact-frames, or a read-out model)" if value
                         else "keyframe-aware frames")
        elif key == "explain":
            words.append("--explain" if value else "no --explain")
        else:
            words.append(f"{_OPTION[key]} {value}")
    return ", ".join(words)
