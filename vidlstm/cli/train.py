"""`vidlstm train DATA -o RUN_DIR`: train a model on a folder per class or a CSV manifest (DDP under torchrun)."""
from __future__ import annotations

import argparse

from vidlstm.cli.common import positive_int

# Defaults come from TrainConfig (one source of truth); argparse only shows them.
_MODES = ("frozen", "last", "all")


def add_training_arguments(p: argparse.ArgumentParser, *, finetune: bool = False) -> None:
    """Options shared by `train` and `finetune` (finetune takes the architecture from --from)."""
    from vidlstm.training.config import TrainConfig

    d = TrainConfig(data="", out_dir="")
    p.add_argument("data", metavar="DATA", help="a folder per class, or a CSV manifest path,label[,group]")
    p.add_argument("-o", "--out", required=True, metavar="RUN_DIR",
                   help="run folder: model/, last/, metrics.csv, config.json, split.json, curves.png")
    if not finetune:
        p.add_argument("--backbone", default=d.backbone, help=f"registered backbone (default {d.backbone})")
        p.add_argument("--pretrained", action="store_true", help="start from ImageNet weights (local file or hub cache)")
        p.add_argument("--weights-file", default=None, help="local ImageNet weights for --pretrained")
        p.add_argument("--input-mode", choices=("rgb", "rgb+diff"), default=d.input_mode,
                       help=f"frame differences as extra channels (default {d.input_mode})")
        p.add_argument("--frames", type=positive_int, default=d.num_frames, help=f"frames per clip (default {d.num_frames})")
        p.add_argument("--image-size", type=positive_int, default=None,
                       help="pixels (default 64 for vidnet, 112 for ImageNet backbones)")
        p.add_argument("--hidden-size", type=positive_int, default=d.hidden_size)
        p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--train-backbone", choices=_MODES, default=None,
                   help="frozen (cached features, fastest), last blocks, or all; default: all from scratch, "
                        "frozen when pretrained or fine-tuning")
    p.add_argument("--epochs", type=positive_int, default=d.epochs, help=f"maximum epochs (default {d.epochs})")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size, help=f"clips per step (default {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak AdamW learning rate (default {d.lr})")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs)
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--no-class-weights", action="store_true", help="do not re-weight imbalanced classes")
    p.add_argument("--step-loss-weight", type=float, default=d.step_loss_weight,
                   help=f"weight of the per-time-step loss (default {d.step_loss_weight})")
    p.add_argument("--causal-loss-weight", type=float, default=d.causal_loss_weight,
                   help=f"weight of the causal (streaming) head's per-step loss (default {d.causal_loss_weight})")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help=f"held-out share, group-aware with a group column (default {d.val_fraction}; 0: none)")
    p.add_argument("--patience", type=int, default=d.patience, help=f"early-stopping patience (default {d.patience}; 0: off)")
    p.add_argument("--monitor", choices=("val_loss", "val_acc"), default=d.monitor)
    p.add_argument("--views", type=positive_int, default=d.views,
                   help=f"cached temporal views per video (default {d.views})")
    p.add_argument("--hflip", action="store_true", help="also augment with horizontal flips (not for left/right labels)")
    p.add_argument("--no-augment", action="store_true", help="no crop / colour jitter")
    p.add_argument("--cache", default=None, metavar="DIR", help="clip and feature cache (default RUN_DIR/cache)")
    p.add_argument("--model-out", default=None, metavar="DIR", help="best model folder (default RUN_DIR/model)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: one per core)")
    p.add_argument("--workers", type=int, default=d.workers, help="DataLoader workers (default 0)")
    p.add_argument("--decode-workers", type=int, default=d.decode_workers,
                   help=f"video decoding processes; a decoder crash or hang skips only its file "
                        f"(default {d.decode_workers}; 0: decode in this process, unprotected)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in RUN_DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args, **extra):
    from vidlstm.errors import UsageError
    from vidlstm.training.config import TrainConfig

    architecture = {}
    if hasattr(args, "backbone"):
        architecture = dict(backbone=args.backbone, pretrained=args.pretrained, weights_file=args.weights_file,
                            input_mode=args.input_mode, num_frames=args.frames, image_size=args.image_size,
                            hidden_size=args.hidden_size, dropout=args.dropout)
    try:
        return TrainConfig(
            data=args.data, out_dir=args.out, train_backbone=args.train_backbone, epochs=args.epochs,
            batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
            label_smoothing=args.label_smoothing, class_weights=not args.no_class_weights,
            step_loss_weight=args.step_loss_weight, causal_loss_weight=args.causal_loss_weight,
            val_fraction=args.val_fraction, patience=args.patience, monitor=args.monitor, views=args.views,
            hflip=args.hflip, augment=not args.no_augment, cache_dir=args.cache, model_out=args.model_out,
            seed=args.seed, device=args.device, workers=args.workers, decode_workers=args.decode_workers,
            resume=args.resume, progress=not args.no_progress, **architecture, **extra)
    except (TypeError, ValueError) as err:
        raise UsageError(str(err)) from None


def print_summary(run_dir) -> None:
    import json
    import os
    from pathlib import Path

    from vidlstm.training.distributed import launched_by_torchrun

    if launched_by_torchrun() and int(os.environ.get("RANK", "0")) != 0:
        return  # rank 0 reports for the whole run
    config = json.loads((Path(run_dir) / "config.json").read_text())
    model_dir = Path(config["model_out"] or Path(run_dir) / "model")
    metrics = json.loads((model_dir / "metrics.json").read_text())
    acc = metrics.get("val_accuracy")
    shown = f"val accuracy {acc:.3f}, ECE {metrics['val_ece']:.3f}, " if acc is not None else ""
    print(f"trained {metrics['epochs_run']} epochs ({metrics['train_seconds']:.0f} s): {shown}"
          f"best epoch {metrics['best_epoch']}; model in {model_dir}")
    if metrics.get("skipped_files"):
        print(f"skipped {len(metrics['skipped_files'])} undecodable file(s), first: {metrics['skipped_files'][0]}")


def add_arguments(p):
    add_training_arguments(p)


def configure_threads(threads: int) -> None:
    """Like configure_torch_threads, but under torchrun the cores are shared by the local processes."""
    import os

    from vidlstm.defaults import available_cores, configure_torch_threads

    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if threads <= 0 and local > 1:
        threads = max(1, available_cores() // local)
    configure_torch_threads(threads)


def run(args) -> int:
    from vidlstm.stages import train

    configure_threads(args.threads)
    print_summary(train.run(config_from_args(args)))
    return 0
