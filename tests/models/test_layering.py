"""The model layer's import direction (DESIGN): vidlstm.models never imports vidlstm.io or vidlstm.data."""
from __future__ import annotations

import ast
from pathlib import Path

import vidlstm.models

FORBIDDEN = ("vidlstm.io", "vidlstm.data", "vidlstm.stages", "vidlstm.cli")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_models_import_neither_io_nor_data():
    sources = sorted(Path(vidlstm.models.__file__).parent.glob("*.py"))
    assert len(sources) >= 7
    offenders = {f"{path.name}: {name}" for path in sources for name in imported_modules(path)
                 if name.startswith(FORBIDDEN)}
    assert not offenders
