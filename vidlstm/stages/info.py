"""The info stage: a model folder's card as a dict (labels, backbone, sampling, metrics, parameters, size), or an
export's (its format, files, inputs and outputs, labels and the model it came from)."""
from __future__ import annotations

import json
from pathlib import Path

from vidlstm.checkpoint import CONFIG_FILE, METRICS_FILE, WEIGHTS_FILE, load_model
from vidlstm.errors import ModelLoadError
from vidlstm.stages.export_paths import EXPORT_CARD, FORMATS

# Top-level LRCN submodules -> the group their parameters are counted in (everything else: "temporal").
PARAMETER_GROUPS = {"backbone": "backbone", "causal": "causal_head", "partner": "partner"}


def parameter_counts(model) -> dict:
    """Parameters per part: backbone (CNN), temporal (projection, BiLSTM, attention, classifier), causal head, the
    partner (a second network, where the model has one), total."""
    counts = {"backbone": 0, "temporal": 0, "causal_head": 0, **({"partner": 0} if model.partner is not None else {})}
    for name, child in model.named_children():
        counts[PARAMETER_GROUPS.get(name, "temporal")] += sum(p.numel() for p in child.parameters())
    counts["total"] = sum(counts.values())
    return counts


def read_metrics(model_dir: Path) -> dict | None:
    """metrics.json of a model folder, or None where there is none."""
    path = model_dir / METRICS_FILE
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{path}: not valid JSON ({' '.join(str(err).split())})") from err
    if not isinstance(metrics, dict):
        raise ModelLoadError(f"{path}: a JSON object was expected, got {type(metrics).__name__}")
    return metrics


def model_info(model_dir) -> dict:
    """Everything `vidlstm info` shows, JSON-serialisable. Loads the model, so a broken folder fails here; a
    metrics.json that cannot be read does not (evaluate and classify never read it): the card goes without its
    metrics, and ``metrics_unreadable`` says why."""
    model_dir = Path(model_dir)
    model = load_model(model_dir)
    try:
        metrics, unreadable = read_metrics(model_dir), None
    except ModelLoadError as err:
        metrics, unreadable = None, str(err)
    cfg = model.config
    files = {p.name: p.stat().st_size for p in sorted(model_dir.iterdir()) if p.is_file()}
    return {
        "path": str(model_dir),
        "labels": list(cfg.labels),
        "num_classes": cfg.num_classes,
        "backbone": {"name": cfg.backbone, "pretrained": cfg.pretrained, "feature_dim": model.feature_dim,
                     "keypoints": cfg.keypoints},
        "input_mode": cfg.input_mode,
        "sampling": {"frames": cfg.num_frames, "method": cfg.sampling, "image_size": cfg.image_size,
                     "stabilize": cfg.stabilize, "test_views": cfg.test_views},
        "normalization": {"mean": list(cfg.mean), "std": list(cfg.std)},
        "temporal": {"proj_dim": cfg.proj_dim, "hidden_size": cfg.hidden_size, "num_layers": cfg.num_layers,
                     "bidirectional": True, "attention_pooling": True, "causal_head": cfg.causal_head,
                     "clip_head": cfg.clip_head},
        "temperature": cfg.temperature,
        **({"partner": partner_info(model)} if model.partner is not None else {}),
        "parameters": parameter_counts(model),
        "size_bytes": {"weights": files.get(WEIGHTS_FILE, 0), "total": sum(files.values())},
        "files": files,
        "metrics": metrics,
        **({"metrics_unreadable": unreadable} if unreadable else {}),
        "format_version": cfg.format_version,
        "extra": cfg.extra,
    }


def partner_info(model) -> dict:
    """What `vidlstm info` shows of a model's partner (``ModelConfig.partner``)."""
    cfg = model.partner.config
    return {"weight": model.config.partner["weight"], "backbone": cfg.backbone, "input_mode": cfg.input_mode,
            "image_size": cfg.image_size, "temperature": cfg.temperature, "test_views": cfg.test_views}


def export_card_of(path) -> Path | None:
    """The export card ``path`` names, or None where it names none: a folder `vidlstm export -o DIR` wrote (its
    export.json, and no model's config.json), or such a card itself (`-o NAME.onnx` writes NAME.json beside the
    parts)."""
    path = Path(path)
    if path.is_dir():
        card = path / EXPORT_CARD
        return card if card.is_file() and not (path / CONFIG_FILE).is_file() else None
    if path.suffix.lower() == ".json" and path.is_file():
        return path
    return None


def export_info(card: Path) -> dict:
    """What `vidlstm info` shows of an export: its card (everything in it), where it lies, and the size of each
    part's file (None where the card names a file that is not there)."""
    try:
        data = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ModelLoadError(f"{card}: not valid JSON ({' '.join(str(err).split())})") from err
    parts = data.get("parts") if isinstance(data, dict) else None
    if (not isinstance(parts, dict) or data.get("format") not in list(FORMATS)
            or not all(isinstance(part, dict) and isinstance(part.get("file"), str) for part in parts.values())):
        raise ModelLoadError(f"{card}: no export card of vidlstm's (a JSON object with a format and the files of its "
                             f"parts), nor a model folder")
    files = {}
    for part in parts.values():
        path = card.parent / Path(part["file"]).name  # a card names its parts beside it, never elsewhere
        files[path.name] = path.stat().st_size if path.is_file() else None
    folder = card.parent if card.name == EXPORT_CARD else card
    return {"path": str(folder), "export_card": str(card), **data, "files": files}
