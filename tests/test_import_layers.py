"""The import direction of DESIGN.md over every module, lazy imports included, and the module size limit.

`cli -> stages -> training, report, batch -> inference -> data, checkpoint -> io, models -> defaults, errors`:
a module may import its own layer or a lower one, never a higher one, and packages never import in a circle.
Top-level modules sit where they are used: ``__main__`` and the package root (its lazy ``VideoClassifier``)
with the CLI, ``api`` with the stages (it drives the batch engine), ``explain`` with the inference core
(it explains a scored clip), ``files`` (atomic writes) and ``logs`` (the "vidlstm" logger) and ``limits`` (bounds on sizes read from files) at the bottom with ``defaults`` and ``errors``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import vidlstm

PACKAGE_DIR = Path(vidlstm.__file__).parent
LAYERS = [  # top to bottom
    {"cli", "__main__", "vidlstm"},
    {"stages", "api"},
    {"training", "report", "batch"},
    {"inference", "explain"},
    {"data", "checkpoint"},
    {"io", "models"},
    {"defaults", "errors", "files", "logs", "limits"},
]
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = ["vidlstm", *path.relative_to(PACKAGE_DIR).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(text: str, module: str, is_package: bool = False) -> set[str]:
    """Every vidlstm module the source ``text`` of ``module`` imports, at the top or inside a function."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(text)):  # ast.walk: function bodies (lazy imports) too
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from ..io import y
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join(base + ([node.module] if node.module else [])))
            else:
                found.add(node.module or "")
    return {m for m in found if m == "vidlstm" or m.startswith("vidlstm.")}


def imported_modules(path: Path) -> set[str]:
    return imports_of(path.read_text(), module_name(path), path.name == "__init__.py")


def unit(module: str) -> str:
    """The package or top-level module a module belongs to (``vidlstm`` for the package root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "vidlstm"


def layer(name: str) -> int:
    """0 for the top layer (cli), higher further down."""
    for depth, names in enumerate(LAYERS):
        if name in names:
            return depth
    raise AssertionError(f"{name} is in no layer of the declared order: place it in LAYERS")


def unit_edges() -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        source = module_name(path)
        for target in imported_modules(path):
            if unit(source) != unit(target):
                edges.setdefault((unit(source), unit(target)), []).append(f"{source} imports {target}")
    return edges


def test_every_unit_has_a_layer_and_no_import_goes_up():
    edges = unit_edges()
    assert ("batch", "inference") in edges and ("stages", "batch") in edges  # the scan sees real imports
    upward = [line for (a, b), lines in edges.items() if layer(b) < layer(a) for line in lines]
    assert not upward, "\n".join(upward)


def test_no_import_circle_between_packages():
    graph: dict[str, set[str]] = {}
    for a, b in unit_edges():
        graph.setdefault(a, set()).add(b)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and (seen.add(nxt) or reaches(nxt, goal, seen))):
                return True
        return False

    circles = sorted(f"{a} <-> {b}" for a, b in unit_edges() if reaches(b, a, set()))
    assert not circles


def test_the_scan_sees_lazy_and_relative_imports():
    lazy = "import os\n\ndef f():\n    from vidlstm.batch.engine import predict_records\n"
    assert imports_of(lazy, "vidlstm.inference.predictor") == {"vidlstm.batch.engine"}
    assert imports_of("from ..batch import engine\nfrom . import records\n", "vidlstm.inference.predictor") == {
        "vidlstm.batch", "vidlstm.inference"}
    assert layer(unit("vidlstm.batch.engine")) < layer(unit("vidlstm.inference.predictor"))  # would be upward


def test_modules_stay_under_the_size_limit():
    sizes = {module_name(p): len(p.read_text().splitlines()) for p in PACKAGE_DIR.rglob("*.py")}
    assert len(sizes) > 50
    assert {name: n for name, n in sizes.items() if n >= MAX_LINES} == {}

