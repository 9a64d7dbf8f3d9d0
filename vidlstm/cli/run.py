"""`vidlstm run RECIPE.toml [--set name=value ...]`: run a pipeline recipe's steps in order, printing each."""
from __future__ import annotations

import argparse


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def add_arguments(p):
    p.add_argument("recipe", metavar="RECIPE", help="a pipeline recipe file, or the name of one that comes with "
                                                    "vidlstm: finetune, default_model")
    p.add_argument("--set", dest="overrides", type=_assignment, action="append", default=[], metavar="NAME=VALUE",
                   help="set a recipe variable (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print the steps without running them")
    p.add_argument("--resume", action="store_true",
                   help="run the recipe again after an interruption: each train or finetune step whose run folder "
                        "holds a begun run continues it (--resume); the other steps run again")


def run(args) -> int:
    from vidlstm.cli import IN_RECIPE, build_parser, main
    from vidlstm.stages.pipeline import PipelineConfig, load_recipe, run as run_pipeline

    config = PipelineConfig(args.recipe, dict(args.overrides), args.dry_run)
    parser = build_parser()
    kinds = option_kinds(parser)
    steps = load_recipe(config.recipe, config.overrides, kinds)
    check_steps(args.recipe, steps, parser)
    begun = [(number, step) for number, step in enumerate(steps, start=1) if begun_run(step.argv)]
    if begun and not args.resume and not args.dry_run:  # the step would refuse, after the steps before it ran again
        from vidlstm.errors import UsageError

        number, step = begun[0]
        raise UsageError(f"{args.recipe}: step {number} ({step.name}): {_run_folder(step.argv)} already holds a "
                         f"training run; run the recipe with --resume to continue it (the other steps run again), or "
                         f"set another run folder")
    flag = {-1: "-q", 1: "-v"}.get(getattr(args, "verbosity", 0))

    def runner(argv: list[str]) -> int:
        """A step, with `run`'s own -q or -v unless the recipe gives the step its own."""
        own = {"-q", "--quiet", "-v", "--verbose"}.intersection(argv)
        argv = [*argv, flag] if flag and not own else argv
        IN_RECIPE.append(args.recipe)
        try:
            return main([*argv, "--resume"] if args.resume and begun_run(argv) else argv)
        finally:
            IN_RECIPE.pop()

    return run_pipeline(config, runner=runner, echo=lambda line: print(line, flush=True), option_kind=kinds)


def option_kinds(parser: argparse.ArgumentParser):
    """``kind(command, "--name")``: what that option of that vidlstm command takes (pipeline.OPTION_KINDS: a flag, one
    value, one each time it is given, several after one flag), or None where the command has no such option (its
    parser says so) or the name abbreviates several. A recipe's ``frames = [8, 16]`` or ``force = "yes"`` is then
    refused naming its key, where argparse said "unrecognized arguments: 16"."""
    commands = next(action.choices for action in parser._actions if isinstance(action, argparse._SubParsersAction))

    def kind(command: str, flag: str) -> str | None:
        sub = commands.get(command)
        if sub is None:
            return None
        actions = [a for a in sub._actions if flag in a.option_strings] or [  # argparse takes a unique prefix
            a for a in sub._actions if any(s.startswith(flag) for s in a.option_strings if s.startswith("--"))]
        if len(actions) != 1:
            return None
        action = actions[0]
        if action.nargs == 0:
            return "flag"
        if isinstance(action, argparse._AppendAction):
            return "repeat"
        if action.nargs in ("+", "*") or (isinstance(action.nargs, int) and action.nargs > 1):
            return "list"
        return "one" if action.nargs is None else None

    return kind


def check_steps(recipe, steps, parser: argparse.ArgumentParser) -> None:
    """Every step's arguments parsed before the first step runs: a misspelt option or a value of the wrong type in
    the last step is found before the first has spent its minutes (argparse's own line, naming the step)."""
    import contextlib
    import io

    from vidlstm.cli import parsing
    from vidlstm.errors import UsageError

    for number, step in enumerate(steps, start=1):
        said = io.StringIO()
        try:
            with contextlib.redirect_stderr(said), parsing(step.argv):
                parser.parse_args(step.argv)
        except SystemExit:
            reason = (said.getvalue().strip().splitlines() or ["invalid arguments"])[-1]
            raise UsageError(f"{recipe}: step {number} ({step.name}): {reason}") from None


def begun_run(argv: list[str]) -> bool:
    """Whether ``argv`` is a train or finetune step whose run folder (-o/--out) holds a run that has begun (a saved
    training state, its own or an auto run's candidate's), so that the step continues it rather than being refused."""
    if not argv or argv[0] not in ("train", "finetune") or "--resume" in argv:
        return False
    out = _run_folder(argv)
    return out is not None and has_saved_state(out)


def has_saved_state(run_dir) -> bool:
    """Whether a run folder holds a saved training state, its own or an auto run's candidate's (--resume continues
    it; without one there is nothing to resume)."""
    from pathlib import Path

    from vidlstm.training.config import STATE_FILE  # torch-free

    run_dir = Path(run_dir)
    return (run_dir / STATE_FILE).is_file() or any(run_dir.glob(f"candidates/*/{STATE_FILE.as_posix()}"))


def _run_folder(argv: list[str]) -> str | None:
    """A train or finetune step's -o, in any spelling argparse takes (-o X, --out X, --out=X, -oX)."""
    for i, arg in enumerate(argv):
        if arg in ("-o", "--out"):
            return argv[i + 1] if i + 1 < len(argv) else None
        if arg.startswith("--out="):
            return arg[len("--out="):]
        if arg.startswith("-o") and not arg.startswith("--"):
            return arg[2:]
    return None
