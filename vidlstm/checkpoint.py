"""Save and load model folders (config.json, labels.json, model.safetensors, metrics.json, README.md) and
training resume state; nothing is ever unpickled."""
from __future__ import annotations

import io
import json
import math
import os
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from vidlstm.defaults import (CLIP_HEAD_WORDS, INPUT_MODE_WORDS, MODEL_ENV, backbone_source, candidates_trained,
                              label_list)
from vidlstm.errors import ModelLoadError, VidlstmError
from vidlstm.files import atomic_write_bytes, atomic_write_text
from vidlstm.models import LRCN, ModelConfig
from vidlstm.models.safe_load import torch_load_weights_only

CONFIG_FILE = "config.json"
LABELS_FILE = "labels.json"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
CARD_FILE = "README.md"


# --- writing -----------------------------------------------------------------------------------------

def _write_text(path: Path, text: str) -> None:
    # A label from a folder name that is not UTF-8 (surrogate escapes) is shown escaped in the card;
    # labels.json and config.json keep it exactly (JSON escapes it).
    atomic_write_text(path, text, errors="backslashreplace")


def _write_json(path: Path, data) -> None:
    _write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def save_model(directory, model: LRCN, metrics: dict | None = None) -> Path:
    """Write ``model`` as a model folder (created if needed) and return its path.

    The weights go first and config.json last, so a folder with a config always has its weights.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # safetensors wants contiguous tensors; channels_last conv weights are copied to the default layout.
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    # Serialised to bytes and written by Python: safetensors' save_file creates files with mode 0600.
    atomic_write_bytes(directory / WEIGHTS_FILE, _weights_bytes(tensors))
    _write_json(directory / LABELS_FILE, list(model.config.labels))
    if metrics is not None:
        _write_json(directory / METRICS_FILE, metrics)
    else:
        (directory / METRICS_FILE).unlink(missing_ok=True)  # a re-saved model must not keep stale metrics
    _write_text(directory / CARD_FILE, model_card(model, metrics))
    _write_json(directory / CONFIG_FILE, model.config.to_dict())
    return directory


def _weights_bytes(tensors: dict) -> bytes:
    """The safetensors file of ``tensors``, byte for byte the same for the same weights. safetensors keeps the
    metadata in a Rust HashMap, whose order is drawn anew at each save: the same weights saved twice gave two files
    half the time, so two model digests (``batch.run_settings.model_digest``), and a merge or a resume took one model
    for another. The header is written again with the metadata's keys sorted, the tensors' entries as they were."""
    payload = save(tensors, metadata={"format": "pt", "vidlstm": "model"})
    size = int.from_bytes(payload[:8], "little")
    header = json.loads(payload[8:8 + size])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))  # first in the header still
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)  # padded as safetensors pads it: the tensors' data starts 8-byte aligned
    return len(text).to_bytes(8, "little") + text + payload[8 + size:]


def rewrite_metrics(directory, metrics: dict) -> None:
    """Replace a saved model folder's metrics.json, and its card with them."""
    directory = Path(directory)
    _write_json(directory / METRICS_FILE, metrics)
    _write_text(directory / CARD_FILE, model_card(load_model(directory), metrics))


def model_card(model: LRCN, metrics: dict | None = None) -> str:
    """A short Markdown card: what the model recognises, how it sees a video, its size and results."""
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    backbone_params = sum(p.numel() for p in model.backbone.parameters())
    source = backbone_source(cfg.pretrained, metrics)
    keypoints = f", {cfg.keypoints} soft-argmax keypoints" if cfg.keypoints else ""
    tags = ["video-classification", "cnn-lstm", "lrcn", cfg.backbone]
    lines = [
        # Hugging Face Hub front matter: the Hub files the folder under this library and task.
        "---",
        "library_name: vidlstm",
        "pipeline_tag: video-classification",
        "tags:",
        *[f"- {tag}" for tag in dict.fromkeys(tags)],
        "---",
        "",
        "# vidlstm model",
        "",
        f"CNN-LSTM video classifier: `{cfg.backbone}` backbone ({source}{keypoints}) per frame, "
        f"bidirectional LSTM ({cfg.num_layers} x {cfg.hidden_size}) with attention pooling"
        + (", plus a causal head for streaming." if cfg.causal_head else "."),
        *(["", f"A clip's label comes from {CLIP_HEAD_WORDS[cfg.clip_head]}"
               + ("; the LSTM gives the per-frame and streaming scores." if cfg.clip_head == "stats" else ".")]
          if cfg.clip_head != "lstm" else []),
        "",
        f"- labels ({cfg.num_classes}): {label_list(cfg.labels)}",
        f"- input: {cfg.num_frames} frames per clip, `{cfg.sampling}` sampling, {cfg.image_size}x{cfg.image_size} px, "
        f"input mode `{cfg.input_mode}`"
        + (f" ({INPUT_MODE_WORDS[cfg.input_mode]})" if cfg.input_mode in INPUT_MODE_WORDS else "")
        + (", the camera's pan undone in each clip (stabilized)" if cfg.stabilize else "")
        + (f"; {cfg.test_views} clips of each video scored and averaged (test views)" if cfg.test_views > 1 else ""),
        f"- parameters: {params:,} ({backbone_params:,} in the backbone)",
        f"- temperature: {cfg.temperature:g}",
        "",
        "Use with `vidlstm.VideoClassifier.load(folder).predict(\"clip.mp4\")` or "
        "`vidlstm classify clip.mp4 --model folder`.",
        "",
        "Load with `vidlstm.checkpoint.load_model(folder)`; files: config.json (architecture), labels.json, "
        "model.safetensors (weights).",
    ]
    if cfg.partner:
        lines += partner_card_lines(cfg)
    family = ((metrics or {}).get("chosen_from_data") or {}).get("family")
    if family:  # `train --backbone auto`: which candidates were trained, their estimates, what was kept and why
        scores, untrained = family["scores"], family.get("not_trained") or {}
        lines += ["", "## Chosen from data", "",
                  f"`vidlstm train` trained {candidates_trained(len(scores) - len(untrained), len(scores))} and kept "
                  f"`{family['chosen']}`.", "",
                  "| candidate | estimated accuracy |", "|---|---|"]
        for name, score in scores.items():  # None: no estimate
            why = untrained.get(name)
            lines.append(f"| {name}{' (kept)' if name == family['chosen'] else ''} | "
                         f"{'-' if score is None else format(score, '.3f')}{f' (not trained: {why})' if why else ''} |")
        lines += ["", f"Rule: {family['rule']}."]
        if family.get("clause"):
            lines += ["", f"Kept by: {family['clause']}."]
        if family.get("warning"):
            lines += ["", f"Warning: {family['warning']}."]
    if metrics:
        lines += ["", "## Metrics", "", "| metric | value |", "|---|---|"]
        for key, value in metrics.items():
            shown = f"{value:.4g}" if isinstance(value, float) else json.dumps(value) if isinstance(
                value, (dict, list)) else str(value)
            lines.append(f"| {key} | {shown} |")
    return "\n".join(lines) + "\n"


def partner_card_lines(cfg: ModelConfig) -> list[str]:
    """The card's words on a model's partner (``ModelConfig.partner``)."""
    weight, partner = cfg.partner["weight"], ModelConfig.from_dict(cfg.partner["config"])
    return ["", "## Partner", "",
            f"A second network sits beside this one: `{partner.backbone}` ({partner.image_size}x{partner.image_size} "
            f"px, input mode `{partner.input_mode}`). A clip's probabilities are {1 - weight:g} x this network's + "
            f"{weight:g} x the partner's, each calibrated; the partner is served this network's frames, resized to "
            f"its size. Per-frame scores, `--timeline`, `stream`, `--explain` and exported graphs are this network's "
            f"alone."]


# --- reading -----------------------------------------------------------------------------------------

MAX_JSON_BYTES = 16 << 20  # a model folder's config.json and labels.json are a few KB; 16 MB is no config


def _read_json(path: Path):
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise ModelLoadError(f"{path}: {path.stat().st_size} bytes, too large for a model folder's JSON file")
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ModelLoadError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from err
    except RecursionError:
        raise ModelLoadError(f"{path}: not valid JSON (nested too deeply)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ModelLoadError(f"{path}: cannot read ({err})") from err


SAVED_KEYS = ("labels", "backbone", "input_mode", "num_frames", "image_size", "sampling")
"""Keys every saved config.json holds (every version wrote them): the classes, the network and what it is shown."""


def load_config(directory) -> ModelConfig:
    """The ModelConfig of a model folder, checked; a ModelLoadError names the folder or file and the reason."""
    directory = Path(directory)
    if not directory.is_dir():
        if directory.exists():
            raise ModelLoadError(f"{directory}: not a folder; name the model folder (the one holding {CONFIG_FILE})")
        env = os.environ.get(MODEL_ENV)
        named = f" (named by ${MODEL_ENV})" if env and Path(env) == directory else ""
        raise ModelLoadError(f"{directory}: no such model folder{named}")
    for name in (CONFIG_FILE, LABELS_FILE, WEIGHTS_FILE):
        if not (directory / name).is_file():
            run = f"; a training run folder: its model is {directory / 'model'}" \
                if (directory / "model" / CONFIG_FILE).is_file() else ""
            if not run and (directory / "export.json").is_file():  # stages.export_paths.EXPORT_CARD
                run = (f"; a folder vidlstm export wrote (its graphs run in ONNX Runtime or torch): give the model "
                       f"folder it came from (`vidlstm info {directory}` names it)")
            raise ModelLoadError(f"{directory}: not a vidlstm model folder (missing {name}){run}")
    config_path = directory / CONFIG_FILE
    try:
        data = _read_json(config_path)
        missing = [key for key in SAVED_KEYS if isinstance(data, dict) and key not in data]
        if missing:  # every vidlstm that saved a model wrote these; a default would silently change what it sees
            raise ModelLoadError(f"{config_path}: invalid model config (no {', '.join(missing)})")
        config = ModelConfig.from_dict(data)
    except ModelLoadError:
        raise
    except (VidlstmError, TypeError, ValueError) as err:
        raise ModelLoadError(f"{config_path}: invalid model config ({err})") from err
    labels = _read_json(directory / LABELS_FILE)
    if labels != config.labels:
        raise ModelLoadError(f"{directory / LABELS_FILE}: labels differ from those in {CONFIG_FILE}")
    return config


def unfinished_note(directory, metrics: dict | None = None) -> str | None:
    """Where a model folder holds what a training run saved before it finished (interrupted, or still training: its
    metrics.json says ``"finished": false``), what a user of it should know; None otherwise. ``metrics``: the
    folder's metrics.json where the caller has read it already."""
    if metrics is None:
        try:
            metrics = json.loads((Path(directory) / METRICS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    if not isinstance(metrics, dict) or metrics.get("finished") is not False:
        return None
    return (f"saved at epoch {metrics.get('epoch', '?')} before its training run finished (interrupted, or still "
            f"training): its scores are not calibrated; continue the run with --resume")


def load_model(directory, device: str | torch.device = "cpu") -> LRCN:
    """Rebuild the model of a folder written by ``save_model``, in eval mode on ``device``."""
    directory = Path(directory)
    config = load_config(directory)
    weights_path = directory / WEIGHTS_FILE
    try:
        state = load_file(weights_path, device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        try:  # safetensors says "No such file or directory" of a file it may not read: ask the file system
            with open(weights_path, "rb"):
                pass
        except OSError as denied:
            raise ModelLoadError(f"{weights_path}: cannot read ({denied.strerror or denied})") from err
        reason = " ".join(str(err).split())[:200]
        raise ModelLoadError(f"{weights_path}: not a valid safetensors file ({reason})") from err
    model = LRCN(config, load_pretrained=False)  # the ImageNet start point is irrelevant: the weights overwrite it
    _check_state_matches(weights_path, model, state)
    model.load_state_dict(state)
    return model.to(device).eval()


def _check_state_matches(path: Path, model: LRCN, state: dict) -> None:
    """One clear line instead of load_state_dict's page when weights and config.json disagree."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = ([f"missing {len(missing)} tensors (e.g. {missing[0]})"] if missing else []) + (
            [f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})"] if unexpected else [])
        raise ModelLoadError(f"{path}: weights do not match {CONFIG_FILE}: {'; '.join(parts)}")
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise ModelLoadError(f"{path}: weights do not match {CONFIG_FILE}: shape mismatch for {name} "
                                 f"({tuple(state[name].shape)} in the file, {tuple(tensor.shape)} expected)")
        # A float64 sum of float32 weights cannot overflow: it is finite exactly when every weight is (and
        # costs a third of torch.isfinite(t).all(): ~30 ms for resnet18's 11.7M weights on one thread).
        if state[name].is_floating_point() and not math.isfinite(state[name].sum(dtype=torch.float64)):
            raise ModelLoadError(f"{path}: tensor {name} holds NaN or infinite values; the model would score nothing")


# --- training resume state ---------------------------------------------------------------------------

_SAFE_LEAF_TYPES = (torch.Tensor, str, bytes, int, float, bool, complex, type(None), torch.Size, torch.dtype,
                    torch.device)
_SAFE_MAPPING_TYPES = (dict, OrderedDict)  # exact types: e.g. a defaultdict is refused by weights_only


def _check_weights_only(value, where: str = "") -> None:
    """Refuse at save time what ``torch.load(weights_only=True)`` would refuse at resume time."""
    if type(value) in _SAFE_MAPPING_TYPES:
        for key, item in value.items():
            _check_weights_only(key, f"{where} key {key!r}")
            _check_weights_only(item, f"{where}[{key!r}]")
    elif type(value) in (list, tuple, set):
        for i, item in enumerate(value):
            _check_weights_only(item, f"{where}[{i}]")
    elif not isinstance(value, _SAFE_LEAF_TYPES):
        raise VidlstmError(f"train state{where}: {type(value).__module__}.{type(value).__qualname__} cannot be "
                           f"loaded with weights_only=True; store tensors, numbers, strings, lists or dicts")


def save_train_state(path, state: dict) -> Path:
    """Save training resume state (model/optimizer state dicts, epoch, RNG states...) atomically."""
    path = Path(path)
    if not isinstance(state, dict):
        raise VidlstmError(f"{path}: a train state must be a dict (got {type(state).__name__})")
    _check_weights_only(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Serialised in memory and written by Python: torch.save onto a full disk raises a RuntimeError naming no file.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getbuffer())
    return path


def load_train_state(path) -> dict:
    """Load what ``save_train_state`` wrote; weights_only=True, so a pickle payload is refused, never run."""
    state = torch_load_weights_only(path, what="train state")
    if not isinstance(state, dict):
        raise ModelLoadError(f"{path}: not a train state (a dict was expected, got {type(state).__name__})")
    return state
