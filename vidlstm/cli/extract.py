"""`vidlstm extract DATA --cache DIR`: compute frozen-backbone features for every video ahead of training."""
from __future__ import annotations

from vidlstm.cli.common import model_folder, positive_int, seed, threads


def add_arguments(p):
    from vidlstm.defaults import INPUT_MODES
    from vidlstm.stages.extract import ExtractConfig
    from vidlstm.training.config import STABILIZE_CHOICES

    d = ExtractConfig(data="", cache_dir="")
    p.add_argument("data", metavar="DATA", help="a folder per class, or a CSV manifest")
    p.add_argument("--cache", required=True, metavar="DIR", help="the feature cache folder (train --cache DIR reads it)")
    p.add_argument("--model", default=None, metavar="DIR", type=model_folder,
                   help="use this model's backbone (what `finetune --from DIR` will train on)")
    p.add_argument("--backbone", default=d.backbone,
                   help="as train's --backbone (default auto: the features train's default run reads out, so "
                        "`train DATA --cache DIR` then decodes the videos for vidnet alone)")
    p.add_argument("--pretrained", action="store_true", help="as train's: start the backbone from ImageNet weights")
    p.add_argument("--weights-file", default=None, help="as train's: a local ImageNet weights file")
    p.add_argument("--input-mode", choices=tuple(INPUT_MODES), default=d.input_mode, metavar=" | ".join(INPUT_MODES),
                   help="as train's (default: rgb+diff; auto's read-out: its own)")
    p.add_argument("--stabilize", choices=STABILIZE_CHOICES, default=d.stabilize,
                   help="as train's (default auto: where the clips' views move)")
    p.add_argument("--frames", type=positive_int, default=d.num_frames,
                   help="frames per clip (default: from the data, as train)")
    p.add_argument("--image-size", type=positive_int, default=None,
                   help="default: as train (auto: 224; 48 for vidnet, else 112)")
    p.add_argument("--views", type=positive_int, default=d.views,
                   help=f"temporal views per video (default {d.views}; auto's read-out: 1)")
    p.add_argument("--seed", type=seed, default=d.seed, help="initialisation seed of a random backbone (match train's)")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size,
                   help=f"clips per forward pass (default {d.batch_size})")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--threads", type=threads, default=0, help="torch CPU threads (default: one per available core)")
    p.add_argument("--decode-workers", type=int, default=d.decode_workers,
                   help=f"video decoding processes; a decoder crash or hang fails only its file "
                        f"(default {d.decode_workers}; 0: decode in this process, unprotected)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from vidlstm.defaults import configure_torch_threads
    from vidlstm.stages.extract import ExtractConfig, run as extract

    configure_torch_threads(args.threads)
    summary = extract(ExtractConfig(
        data=args.data, cache_dir=args.cache, model_dir=args.model, backbone=args.backbone,
        pretrained=args.pretrained, weights_file=args.weights_file, input_mode=args.input_mode,
        num_frames=args.frames, image_size=args.image_size, stabilize=args.stabilize, views=args.views, seed=args.seed,
        batch_size=args.batch_size, device=args.device, decode_workers=args.decode_workers,
        progress=not args.no_progress))
    new = summary.videos - summary.already_cached - len(summary.failed)
    print(f"{summary.videos} videos: {summary.already_cached} already cached, {new} extracted, "
          f"{len(summary.failed)} failed ({summary.seconds:.1f} s); features in {summary.feature_folder}")
    for name in summary.failed[:5]:
        print(f"  failed: {name}")
    return 1 if summary.failed else 0
