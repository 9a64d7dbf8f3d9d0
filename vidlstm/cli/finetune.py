"""`vidlstm finetune --from MODEL DATA -o RUN_DIR`: adapt a model to new clips or a new label set."""
from __future__ import annotations

from vidlstm.cli.common import model_folder
from vidlstm.cli.train import add_training_arguments, config_from_args, configure_threads, print_summary


def add_arguments(p):
    p.add_argument("--from", dest="init_from", required=True, metavar="MODEL_DIR", type=model_folder,
                   help="the model to start from (`default`: the shipped default model)")
    add_training_arguments(p, finetune=True)


def run(args) -> int:
    from vidlstm.stages import finetune

    configure_threads(args.threads)
    print_summary(finetune.run(config_from_args(args, init_from=args.init_from)))
    return 0
