"""Load a torchvision backbone's ImageNet weights (given file, hub cache or download); widen its first conv."""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision
from torch import nn

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


# Extra input channels (frame differences) start as the colour-blind mean of the RGB filters, scaled as
# timm's adapt_input_conv scales repeated filters (3 / in_channels); the RGB filters stay untouched, so on
# a still scene (zero differences) the backbone computes exactly its pretrained features.
def replace_first_conv(model: nn.Module, path: str, in_channels: int, keep_filters: bool) -> None:
    """Swap the conv at ``path`` for one taking ``in_channels`` inputs (>= 3).

    ``keep_filters``: copy the RGB filters (pretrained weights) and initialise the extra ones from
    their mean; otherwise (random init) keep the model's random RGB filters and draw the extra
    ones with the same spread, so the model's own initialisation scheme is respected.
    """
    old = model.get_submodule(path)
    if not isinstance(old, nn.Conv2d) or old.in_channels != 3:
        raise TypeError(f"{path} of {type(model).__name__} is not a 3-channel Conv2d (got {old})")
    new = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding, old.dilation,
                    old.groups, bias=old.bias is not None, padding_mode=old.padding_mode)
    with torch.no_grad():
        new.weight[:, :3] = old.weight  # (O, 3, k, k)
        if keep_filters:
            mean_filter = old.weight.mean(dim=1, keepdim=True)  # (O, 1, k, k)
            new.weight[:, 3:] = mean_filter * (3.0 / in_channels)
        else:
            new.weight[:, 3:] = torch.randn_like(new.weight[:, 3:]) * old.weight.std()
        if old.bias is not None:
            new.bias.copy_(old.bias)
    model.set_submodule(path, new)
