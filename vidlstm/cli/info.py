"""`vidlstm info [DIR]`: print a model folder's card (labels, backbone, sampling, metrics, parameters, size), or an
export's (format, files, inputs and outputs, labels, the model it came from); --json."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from vidlstm.cli.common import model_folder
from vidlstm.defaults import CLIP_HEAD_WORDS, INPUT_MODE_WORDS, backbone_source, label_list


def add_arguments(p):
    p.add_argument("model", nargs="?", metavar="DIR", default=None, type=model_folder,
                   help="model folder (default, or `default`: the shipped default model), or an export's folder "
                        "(or its card, NAME.json beside -o NAME.onnx)")
    p.add_argument("--json", action="store_true", help="print the card as one JSON object")


def human_bytes(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024


def format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def partner_words(partner: dict) -> str:
    """The card's line on a model's partner: what it is and its share of each clip's probabilities."""
    return (f"{partner['backbone']} ({partner['image_size']}x{partner['image_size']} px, input mode "
            f"{partner['input_mode']}), {partner['weight']:g} of each clip's probabilities (served this model's "
            f"frames; per-frame, timeline and streaming scores are the model's own)")


def format_card(info: dict) -> str:
    """The card as aligned text lines."""
    bb, sampling, temporal, params = info["backbone"], info["sampling"], info["temporal"], info["parameters"]
    source = backbone_source(bb["pretrained"], info["metrics"])
    keypoints = f", {bb['keypoints']} keypoints" if bb["keypoints"] else ""
    rows = [
        ("model", info["path"]),
        ("labels", f"{info['num_classes']}: {label_list(info['labels'])}"),
        ("backbone", f"{bb['name']} ({source}{keypoints}), {bb['feature_dim']} features per frame"),
        ("input mode", info["input_mode"] + (f" ({INPUT_MODE_WORDS[info['input_mode']]})"
                                             if info["input_mode"] in INPUT_MODE_WORDS else "")),
        ("sampling", f"{sampling['frames']} frames ({sampling['method']}), {sampling['image_size']}x"
                     f"{sampling['image_size']} px" + (", stabilized (the camera's pan undone)"
                                                       if sampling.get("stabilize") else "")
                     + (f"; {sampling['test_views']} views of each video averaged"
                        if sampling.get("test_views", 1) > 1 else "")),
        ("temporal", f"BiLSTM {temporal['num_layers']} x {temporal['hidden_size']} + attention"
                     + (", causal head (streaming)" if temporal["causal_head"] else "")),
        ("clip logits", CLIP_HEAD_WORDS[temporal["clip_head"]]),
        ("temperature", f"{info['temperature']:g}"),
        *([("partner", partner_words(info["partner"]))] if info.get("partner") else []),
        ("parameters", f"{params['total']:,} (backbone {params['backbone']:,}, temporal {params['temporal']:,}, "
                       f"causal head {params['causal_head']:,}"
                       + (f", partner {params['partner']:,}" if "partner" in params else "") + ")"),
        ("size", f"{human_bytes(info['size_bytes']['total'])} (weights {human_bytes(info['size_bytes']['weights'])})"),
    ]
    metrics = info["metrics"] or {}
    family = (metrics.get("chosen_from_data") or {}).get("family") if isinstance(metrics, dict) else None
    if isinstance(family, dict) and family.get("chosen"):  # `train --backbone auto`: which candidate, and why
        rows.append(("kept", f"the {family['chosen']} candidate of `train --backbone auto`"
                             + (f": {family['clause']}" if family.get("clause") else "")))
    width = max(len(key) for key, _ in rows)
    lines = [f"{key:<{width}}  {value}" for key, value in rows]
    if metrics.get("finished") is False:
        from vidlstm.checkpoint import unfinished_note  # torch: the CLI imports it only where needed

        lines.append(f"{'status':<{width}}  {unfinished_note(info['path'], metrics)}")
    none = "unreadable (metrics.json: see the warning)" if info.get("metrics_unreadable") else "none (no metrics.json)"
    lines.append(f"{'metrics':<{width}}  {'' if metrics else none}".rstrip())
    key_width = max((len(key) for key in metrics), default=0)
    lines += [f"  {key:<{key_width}}  {format_value(value)}" for key, value in metrics.items()]
    return "\n".join(lines)


def tensor_list(specs) -> str:
    """``frames (batch, time, 3, 48, 48) float32, prev_frame (...) ...``: a part's inputs or outputs on one line."""
    shown = [spec for spec in specs if isinstance(spec, dict)] if isinstance(specs, list) else []
    shapes = [spec["shape"] if isinstance(spec.get("shape"), list) else [] for spec in shown]
    return ", ".join(f"{spec.get('name')} ({', '.join(map(str, shape))}) {spec.get('dtype')}"
                     for spec, shape in zip(shown, shapes))


def format_export_card(info: dict) -> str:
    """An export's card as aligned text lines: what it is, where it came from, and each part's file and interface."""
    labels = info.get("labels") if isinstance(info.get("labels"), list) else []
    rows = [("export", f"{info['path']} ({info['format']}, written by vidlstm {info.get('vidlstm_version', '?')})"),
            ("from model", str(info.get("source_model", "unknown"))),
            ("labels", f"{len(labels)}: {label_list(labels)}"),
            ("temperature", format_value(info.get("temperature"))),
            ("load", str(info.get("load", "")))]
    if info.get("unfinished"):
        rows.append(("status", f"a model {info['unfinished']}"))
    for name, part in info["parts"].items():
        file = Path(part["file"]).name  # as export_info names it: beside the card
        size = info["files"].get(file)
        rows.append((name, f"{file} ({'missing' if size is None else human_bytes(size)}): "
                           f"{tensor_list(part.get('inputs'))} -> {tensor_list(part.get('outputs'))}"))
    diffs = {name: part.get("verified_max_abs_diff") for name, part in info["parts"].items()}
    rows.append(("verified", "not checked (--no-verify)" if not info.get("verified_on") else
                 "largest difference from PyTorch " + ", ".join(f"{format_value(diff)} ({name})"
                                                                for name, diff in diffs.items())))
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)


def run(args) -> int:
    from vidlstm.defaults import default_model_dir
    from vidlstm.stages.info import export_card_of, export_info, model_info

    folder = args.model or default_model_dir()
    card = export_card_of(folder)
    if card is not None:  # an export's folder holds no model: its own card, not "missing config.json"
        info = export_info(card)
        print(json.dumps(info, indent=2) if args.json else format_export_card(info))
        return 0
    info = model_info(folder)
    print(json.dumps(info, indent=2) if args.json else format_card(info))
    if info.get("metrics_unreadable"):  # the model itself loads (evaluate, classify use it): its card, said so
        print(f"vidlstm info: warning: {info['metrics_unreadable']}; the card is shown without its metrics",
              file=sys.stderr)
    return 0
