"""Where an export's files go: ``-o OUT`` a folder, or a file name whose parts are written beside it."""
from __future__ import annotations

from pathlib import Path

from vidlstm.errors import UsageError

FORMATS = {"onnx": ".onnx", "torch": ".pt2"}


def resolve_outputs(out, fmt: str, part_names) -> tuple[dict[str, Path], Path]:
    """({part name: file}, JSON path) for ``-o OUT`` (see the module docstring); checks OUT's folder exists."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if not str(out).strip():
        raise UsageError("-o names no folder or file (give a folder, or a file name ending in "
                         f"{FORMATS[fmt]})")
    suffix, out = FORMATS[fmt], Path(out)
    other = {s: f for f, s in FORMATS.items() if f != fmt}.get(out.suffix.lower())
    if other:  # it would have become a folder named like a file of the other format
        raise UsageError(f"{out}: ends in {out.suffix}, the suffix of --format {other}; for --format {fmt} give a "
                         f"folder or a file name ending in {suffix}")
    if out.suffix.lower() == suffix:
        folder, stem = out.parent, out.stem
        files = {name: folder / f"{stem}.{name}{suffix}" for name in part_names}
        card = folder / f"{stem}.json"
    else:
        if out.exists() and not out.is_dir():
            raise UsageError(f"{out}: exists and is not a folder (give a folder, or a file name ending in {suffix})")
        folder = out.parent if not out.is_dir() else out
        files = {name: out / f"{name}{suffix}" for name in part_names}
        card = out / "export.json"
    if not folder.is_dir():
        raise UsageError(f"{out}: the folder {folder} does not exist")
    before = _format_of(card)
    if before and before != fmt:  # `-o m.onnx` then `-o m.pt2`: one m.json, which would describe only the second
        raise UsageError(f"{card}: describes the --format {before} export there; give --format {fmt} another -o "
                         f"(another file name or folder), so each export keeps its card")
    if card.exists() and not before:  # someone's own data.json beside `-o data.onnx`
        raise UsageError(f"{card}: exists and is no export card of vidlstm's, which the export would write there; "
                         f"give another -o (another file name or folder)")
    return files, card


def _format_of(card: Path) -> str | None:
    """The format an existing export card describes, or None (no card, or not one of ours)."""
    import json

    try:
        value = json.loads(card.read_text())
    except (OSError, ValueError):
        return None
    return value.get("format") if isinstance(value, dict) and value.get("format") in FORMATS else None
