"""Load torch files without running their pickled code: weights_only=True, one-line errors naming the file."""
from __future__ import annotations

import pickle
from pathlib import Path

import torch

from vidlstm.errors import ModelLoadError


def torch_load_weights_only(path, what: str = "file"):
    """``torch.load(path, weights_only=True)`` on CPU; any failure is a ModelLoadError naming ``path``.

    weights_only=True makes the unpickler accept tensors, containers and primitives only, so a
    file carrying a pickle payload (an object whose ``__reduce__`` runs code) is refused unrun.
    ``what`` names the file's role in the message ("train state", "ImageNet weights", ...).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: {what} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        blocked = _blocked_global(err)
        if blocked:
            raise ModelLoadError(f"{path}: refused to load {what}: it holds Python objects other than tensors "
                                 f"and plain containers ({blocked})") from err
        unsupported = [line.strip() for line in str(err).splitlines() if line.startswith("Unsupported")]
        reason = unsupported[0] if unsupported else _first_line(err)
        raise ModelLoadError(f"{path}: cannot read {what}: not a torch file or damaged ({reason})") from err
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file fails in many ways (KeyError, EOFError...)
        raise ModelLoadError(f"{path}: cannot read {what}: not a torch file or damaged "
                             f"({type(err).__name__}: {_first_line(err)})") from err


def _first_line(err: Exception) -> str:
    return ((str(err).strip().splitlines() or [""])[0] or type(err).__name__)[:160]


def _blocked_global(err: Exception) -> str | None:
    """From torch's multi-paragraph weights_only error, the sentence naming the refused Python object, if any.

    A refused GLOBAL means the file is a real pickle asking for code; other unpickling errors mean
    the bytes are not a pickle torch wrote (damaged or foreign file).
    """
    for line in str(err).splitlines():
        if "GLOBAL" in line:
            sentence = line.split("GLOBAL", 1)[1].split(". ")[0]
            return f"GLOBAL{sentence}".strip()[:200]
    return None
