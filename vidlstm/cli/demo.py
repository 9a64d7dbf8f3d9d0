"""`vidlstm demo`: generate fresh synthetic motion clips, classify them, print a table and the accuracy."""
from __future__ import annotations

from vidlstm.cli.common import add_model_arguments, new_data_folder, positive_int, seed


def add_arguments(p):
    add_model_arguments(p)
    p.add_argument("--per-class", type=positive_int, default=10, help="clips per class (default 10)")
    p.add_argument("--seed", type=seed, default=12345,
                   help="generation seed (default 12345: the same clips every run, the default model recipe's test "
                        "clips; another seed draws others, but 7 draws the shipped model's training clips)")
    p.add_argument("--keep", metavar="DIR", default=None,
                   help="keep the generated clips in DIR (a new or empty folder, or an earlier demo's: replaced)")


def run(args) -> int:
    from vidlstm.defaults import configure_torch_threads
    from vidlstm.stages.demo import DemoConfig, run as run_demo

    if args.keep:
        new_data_folder(args.keep, has_force=False, writer="vidlstm demo")
    configure_torch_threads(args.threads)
    records, accuracy = run_demo(DemoConfig(model_dir=args.model, per_class=args.per_class, seed=args.seed,
                                            out_dir=args.keep, device=args.device))
    width = max(len(r["path"]) for r in records)
    print(f"{'clip':<{width}}  {'true':<14} {'predicted':<14} {'score':>6}")
    for r in records:
        mark = "ok" if r["label"] == r["true"] else "WRONG"
        pred = r["label"] if r["status"] == "ok" else "ERROR: " + r["error"]
        score = f"{r['score']:.3f}" if r["score"] is not None else "-"
        print(f"{r['path']:<{width}}  {r['true']:<14} {pred:<14} {score:>6}  {mark}")
    correct = sum(r["label"] == r["true"] for r in records)
    in_sample = sum(r["in_sample"] for r in records)  # said here too: the warning is a table's length above
    said = f" (in-sample: {in_sample} of these clips trained the model; not what new clips get)" if in_sample else ""
    print(f"\naccuracy: {correct}/{len(records)} = {100 * accuracy:.1f}%{said}")
    return 0
