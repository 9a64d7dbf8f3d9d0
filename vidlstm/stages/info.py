"""The info stage: a model folder's card as a dict (labels, backbone, sampling, metrics, parameters, size)."""
from __future__ import annotations

import json
from pathlib import Path

from vidlstm.checkpoint import METRICS_FILE, WEIGHTS_FILE, load_model
from vidlstm.errors import ModelLoadError

# Top-level LRCN submodules -> the group their parameters are counted in (everything else: "temporal").
PARAMETER_GROUPS = {"backbone": "backbone", "causal": "causal_head"}


def parameter_counts(model) -> dict:
    """Parameters per part: backbone (CNN), temporal (projection, BiLSTM, attention, classifier), causal head, total."""
    counts = {"backbone": 0, "temporal": 0, "causal_head": 0}
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
    """Everything `vidlstm info` shows, JSON-serialisable. Loads the model, so a broken folder fails here."""
    model_dir = Path(model_dir)
    model = load_model(model_dir)
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
        "parameters": parameter_counts(model),
        "size_bytes": {"weights": files.get(WEIGHTS_FILE, 0), "total": sum(files.values())},
        "files": files,
        "metrics": read_metrics(model_dir),
        "format_version": cfg.format_version,
        "extra": cfg.extra,
    }
