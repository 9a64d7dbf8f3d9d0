"""`vidlstm synth OUT_DIR`: write a labelled synthetic motion dataset (a folder per class + manifest.csv)."""
from __future__ import annotations

from vidlstm.cli.common import new_data_folder, positive_int, seed


def add_arguments(p):
    p.add_argument("out_dir", metavar="OUT_DIR", help="a new or empty folder, or an earlier synthetic set (replaced): "
                                                      "a folder per class, manifest.csv and vidlstm_synth.json")
    p.add_argument("--per-class", type=positive_int, default=20, help="clips per class (default 20)")
    p.add_argument("--size", type=positive_int, default=96,
                   help="frame height in pixels, even (default 96; the width is 4:3 of it)")
    p.add_argument("--min-frames", type=positive_int, default=24, help="frames of the shortest clip (default 24)")
    p.add_argument("--max-frames", type=positive_int, default=48,
                   help="frames of the longest clip, at most 7200 (default 48)")
    p.add_argument("--fps", type=float, default=25.0, help="frames per second of the clips (1 to 240; default 25)")
    p.add_argument("--seed", type=seed, default=0, help="generation seed: the same seed, the same clips (default 0)")
    p.add_argument("--force", action="store_true",
                   help="write beside files of OUT_DIR's own, not a manifest.csv of its own (an earlier synthetic "
                        "set there, known by its vidlstm_synth.json, is replaced whole with or without it)")


def run(args) -> int:
    from vidlstm.data.synth import MOTION_CLASSES, SynthConfig, generate_dataset
    from vidlstm.errors import UsageError

    try:
        cfg = SynthConfig(per_class=args.per_class, size=args.size, min_frames=args.min_frames,
                          max_frames=args.max_frames, fps=args.fps, seed=args.seed)
    except ValueError as err:
        raise UsageError(str(err)) from None
    replaced = new_data_folder(args.out_dir, args.force)
    if replaced:
        print(f"removed the earlier synthetic set in {args.out_dir} ({replaced} clips)")
    out = generate_dataset(args.out_dir, cfg)
    print(f"wrote {cfg.per_class * len(MOTION_CLASSES)} clips of {len(MOTION_CLASSES)} classes to {out} "
          f"(manifest: {out / 'manifest.csv'})")
    return 0
