"""Load a torchvision backbone's ImageNet weights: a given file, the torch hub cache, or a download."""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision

from vidlstm.errors import ModelLoadError
from vidlstm.models.safe_load import torch_load_weights_only


def default_weights(name: str):
    """The torchvision weights enum member a backbone's ImageNet weights and preprocessing come from."""
    return torchvision.models.get_model_weights(name).DEFAULT


def cached_weights_path(name: str) -> Path:
    """Where torch hub keeps (and ``load_state_dict_from_url`` would put) this backbone's weights file."""
    file_name = os.path.basename(default_weights(name).url)
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


def load_imagenet_state_dict(name: str, weights_file=None) -> tuple[dict, Path]:
    """The ImageNet state dict of torchvision model ``name`` and the file it came from.

    Order: ``weights_file`` if given; else the torch hub cache; else a download into that cache
    (works with internet). Offline, the ModelLoadError says which file to put where.
    """
    weights = default_weights(name)
    if weights_file is not None:
        path = Path(weights_file)
        if not path.is_file():
            raise ModelLoadError(f"{path}: weights file not found (expected {os.path.basename(weights.url)}, "
                                 f"the {weights} weights of {name} from {weights.url})")
    else:
        path = cached_weights_path(name)
        if not path.is_file():
            _download(name, weights.url, path)
    state = torch_load_weights_only(path, what=f"ImageNet weights for {name}")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # checkpoints re-saved by training scripts wrap the weights
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path}: not a state dict of tensors (ImageNet weights for {name} expected)")
    return state, path


def _download(name: str, url: str, dest: Path) -> None:
    """Download ``url`` to ``dest`` with torch hub (hash-checked as torchvision does), or explain the manual fix."""
    match = torch.hub.HASH_REGEX.search(dest.name)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Looked up on the module at call time so that tests can block the network by monkeypatching it.
        torch.hub.download_url_to_file(url, str(dest), hash_prefix=match.group(1) if match else None,
                                       progress=False)
    except (OSError, RuntimeError) as err:  # URLError/timeouts are OSErrors; a hash mismatch is a RuntimeError
        raise ModelLoadError(
            f"no ImageNet weights for {name} and the download failed ({type(err).__name__}: {err}): "
            f"place {dest.name} (from {url}) at {dest}, or pass --weights-file PATH") from err
