"""`vidlstm export --model DIR --format onnx|torch -o OUT`: the model as ONNX or torch.export files plus a JSON card."""
from __future__ import annotations

import json

from vidlstm.cli.common import model_folder, threads


def add_arguments(p):
    p.add_argument("--model", metavar="DIR", default=None, type=model_folder,
                   help="model folder (default, or `default`: the shipped default model)")
    p.add_argument("--format", choices=("onnx", "torch"), default="onnx",
                   help="onnx (the default: runs in onnxruntime, no vidlstm needed) or torch (torch.export .pt2 "
                        "programs; torch.export.load needs `import vidlstm.stages.export_graphs` first, for the "
                        "LSTM op they call)")
    p.add_argument("-o", "--out", metavar="OUT", required=True,
                   help="a folder, or a file name ending in .onnx/.pt2 whose stem prefixes the part files")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip loading the written files back and comparing them with PyTorch")
    p.add_argument("--threads", type=threads, default=0, help="torch CPU threads (default: one per available core)")


def run(args) -> int:
    from vidlstm.defaults import configure_torch_threads, default_model_dir
    from vidlstm.stages.export import ExportConfig, run as run_export

    configure_torch_threads(args.threads)
    card_path = run_export(ExportConfig(model_dir=str(args.model or default_model_dir()), out=args.out,
                                        format=args.format, verify=args.verify))
    card = json.loads(card_path.read_text(encoding="utf-8"))
    for name, part in card["parts"].items():
        checked = part["verified_max_abs_diff"]
        note = f"max |diff| vs PyTorch {checked:.2g}" if checked is not None else "not verified"
        print(f"{name:<9} {card_path.parent / part['file']}  ({note})")
    print(f"card      {card_path}")
    return 0
