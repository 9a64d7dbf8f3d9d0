"""Decoder backend registry: names -> modules, which are installed, and the order to try them in."""
from __future__ import annotations

import functools
import importlib
import os
from types import ModuleType

from vidlstm.errors import UsageError

# Measured (benchmarks/RESULTS.md, "Batch inference"): PyAV decodes sparse samples with the least CPU and its
# wall time holds up under load; decord next (it can abort on damaged files, so it is not first); OpenCV last.
DEFAULT_BACKENDS = ("pyav", "decord", "opencv")
BACKENDS_ENV = "VIDLSTM_BACKENDS"
# backend name -> (its module here, the package it needs)
BACKEND_MODULES = {
    "decord": ("vidlstm.io.decord_backend", "decord"),
    "opencv": ("vidlstm.io.opencv_backend", "cv2"),
    "pyav": ("vidlstm.io.pyav_backend", "av"),
}


@functools.lru_cache(maxsize=None)
def load_backend(name: str) -> ModuleType | None:
    """The backend's module, or None when the package it wraps is not installed (or fails to import)."""
    module_name, package = BACKEND_MODULES[name]
    try:
        return importlib.import_module(module_name)
    except ImportError as err:
        if err.name is not None and err.name.split(".")[0] != package:
            raise  # a broken import inside vidlstm is a bug, not a missing package
        return None
    except OSError:  # the package is there but its native library does not load (decord's libdecord.so)
        return None


def available_backends() -> tuple[str, ...]:
    """Names of the backends whose package imports here, in the default order."""
    return tuple(name for name in DEFAULT_BACKENDS if load_backend(name) is not None)


def requested_backends(backends=None) -> tuple[str, ...]:
    """The order to try: the ``backends`` argument, else $VIDLSTM_BACKENDS ("pyav,opencv"), else the default.

    Unknown names are a usage error; names whose package is missing stay in (and are skipped later).
    """
    source = "backends argument"
    if backends is None:
        env = os.environ.get(BACKENDS_ENV, "").strip()
        if not env:
            return DEFAULT_BACKENDS
        backends, source = env, BACKENDS_ENV
    if isinstance(backends, str):
        backends = backends.split(",")
    names = tuple(dict.fromkeys(str(name).strip().lower() for name in backends if str(name).strip()))
    unknown = [name for name in names if name not in BACKEND_MODULES]
    if unknown or not names:
        raise UsageError(
            f"{source}: unknown decoder backend {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(BACKEND_MODULES)}"
        )
    return names
