"""`vidlstm run RECIPE.toml [--set name=value ...]`: run a pipeline recipe's steps in order, printing each."""
from __future__ import annotations

import argparse


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def add_arguments(p):
    p.add_argument("recipe", metavar="RECIPE", help="a pipeline recipe, e.g. pipelines/finetune.toml")
    p.add_argument("--set", dest="overrides", type=_assignment, action="append", default=[], metavar="NAME=VALUE",
                   help="set a recipe variable (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print the steps without running them")


def run(args) -> int:
    from vidlstm.cli import main
    from vidlstm.stages.pipeline import PipelineConfig, run as run_pipeline

    config = PipelineConfig(args.recipe, dict(args.overrides), args.dry_run)
    flag = {-1: "-q", 1: "-v"}.get(getattr(args, "verbosity", 0))

    def runner(argv: list[str]) -> int:
        """A step, with `run`'s own -q or -v unless the recipe gives the step its own."""
        own = {"-q", "--quiet", "-v", "--verbose"}.intersection(argv)
        return main([*argv, flag] if flag and not own else argv)

    return run_pipeline(config, runner=runner, echo=lambda line: print(line, flush=True))
