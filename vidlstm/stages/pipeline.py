"""The pipeline stage: run a TOML recipe of command steps (e.g. extract -> train -> evaluate) with ${var} paths.

A recipe::

    [vars]
    data = ""                      # empty: must be given, `vidlstm run recipe.toml --set data=clips/`
    run = "runs/finetune"

    [[steps]]
    command = "train"              # any vidlstm command
    args = ["${data}"]             # positional arguments
    options = { out = "${run}", epochs = 20, hflip = false }   # the command's own options

Options become ``--name value`` (``_`` -> ``-``); ``true`` is a bare flag; ``false`` and ``""`` are left out; an
array is the option given once per value, for an option that may be given more than once. Where the caller knows what
each option of a command takes (``option_kind``: `vidlstm run` asks the commands' parsers), a value of another kind is
refused, naming the step and the key (``frames = [8, 16]`` was argparse's "unrecognized arguments: 16"), and a flag
also takes the text ``"true"`` or ``"false"`` (any case): a ${var} is text, so that is how ``--set`` switches one.
Built-in variables: ``recipe_dir`` (the folder of the recipe file, absolute) and ``cwd`` (the folder `vidlstm run`
was started in, absolute); a [vars] entry of the same name replaces them.
"""
from __future__ import annotations

import json
import os
import re
import shlex
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, packaged as tomli
    import tomli as tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vidlstm.defaults import shipped_places
from vidlstm.errors import UsageError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class PipelineConfig:
    recipe: str
    overrides: dict[str, str] = field(default_factory=dict)  # --set name=value
    dry_run: bool = False  # print the steps, run nothing


@dataclass
class Step:
    name: str
    argv: list[str]  # the command line after `vidlstm`

    def __str__(self) -> str:
        return "vidlstm " + shlex.join(self.argv)


def resolve_vars(recipe: Path, declared: dict, overrides: dict[str, str]) -> dict[str, str]:
    """Variables with ${...} references between them expanded; unknown names are refused."""
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise UsageError(f"{recipe}: --set {unknown[0]}=... names no variable of the recipe "
                         f"(it has: {', '.join(sorted(declared)) or 'none'})")
    values = {"recipe_dir": os.path.dirname(os.path.abspath(recipe)), "cwd": os.getcwd()}
    values.update({k: str(v) for k, v in declared.items()})
    values.update(overrides)
    for _ in range(len(values) + 1):  # each pass expands one level of nesting
        expanded = {k: substitute(v, values, recipe) for k, v in values.items()}
        if expanded == values:
            break
        values = expanded
    looping = sorted(k for k, v in values.items() if _VAR.search(v))
    if looping:  # still unexpanded after the fixed point: the references go round in a cycle
        raise UsageError(f"{recipe}: variables {', '.join(looping)} refer to each other in a cycle")
    return values


def substitute(text: str, values: dict[str, str], recipe: Path) -> str:
    def repl(match):
        name = match.group(1)
        if name not in values:
            raise UsageError(f"{recipe}: ${{{name}}} is not a variable of the recipe")
        return values[name]

    return _VAR.sub(repl, text)


OPTION_KINDS = ("flag", "one", "repeat", "list")
"""What a command's option takes, as ``option_kind`` says: nothing (a flag: the value is true or false), one value, one
value each time it is given (``--x a --x b``), or several values after one flag (``--x a b``)."""
_FLAG_WORDS = {"true": True, "false": False}


def option_args(name: str, value, kind: str | None = None) -> list[str]:
    """The command-line words of a step's option ``name = value`` for an option that takes ``kind`` (OPTION_KINDS;
    None: not known, as for a name the command lacks, whose parser then says so). ValueError: a value of a kind the
    option does not take, in words that follow the key."""
    flag = "--" + name.replace("_", "-")
    if kind == "flag":
        if isinstance(value, str):  # "" is left out, as for any option
            value = _FLAG_WORDS.get(value.strip().lower(), value) if value else False
        if not isinstance(value, bool):
            raise ValueError(f"is a flag: true or false (TOML's booleans, without quotes; the text \"true\" or "
                             f"\"false\", as a ${{var}} gives, also counts), not {_toml(value)}")
    if isinstance(value, dict):
        raise ValueError(f"takes {_takes(kind)}, not a table ({_toml(value)})")
    if value is True:
        if kind in ("one", "repeat", "list"):
            raise ValueError(f"takes {_takes(kind)}, not true")
        return [flag]
    if value is False or value is None or value == "":
        return []
    if isinstance(value, list):
        if kind == "one":
            raise ValueError(f"takes one value (a string or a number), not an array ({_toml(value)})")
        if kind is not None and any(isinstance(v, (bool, list, dict)) for v in value):
            raise ValueError(f"takes {_takes(kind)}, not {_toml(value)}")
        if kind == "list":
            return [flag, *map(str, value)] if value else []
        return [word for v in value for word in (flag, str(v))]
    return [flag, str(value)]


def _takes(kind: str | None) -> str:
    return {"repeat": "a string or a number, or an array of them (the option given once for each)",
            "list": "an array of strings or numbers"}.get(kind, "one value (a string or a number)")


def _toml(value) -> str:
    """``value`` as the recipe spells it (TOML's strings, arrays and booleans are JSON's)."""
    return json.dumps(value, default=str)


STEP_KEYS = {"command": str, "name": str, "args": list, "options": dict}
"""What a [[steps]] table may hold, and of which TOML type (a string, an array, a table)."""
_TYPE_WORDS = {str: "a string", list: "an array", dict: "a table"}


def _check_step(recipe: Path, number: int, step) -> None:
    """A one-line UsageError where step ``number`` is no table, holds a key no step has, or a value of another type
    (an AttributeError or TypeError traceback; an unknown key was ignored, a string of args split into letters)."""
    if not isinstance(step, dict):
        raise UsageError(f"{recipe}: step {number} must be a table ([[steps]] with command = ...), not {step!r}")
    unknown = sorted(set(step) - set(STEP_KEYS))
    if unknown:
        raise UsageError(f"{recipe}: step {number}: unknown key {unknown[0]!r} (a step has "
                         f"{', '.join(STEP_KEYS)})")
    for key, kind in STEP_KEYS.items():
        if key in step and not isinstance(step[key], kind):
            raise UsageError(f"{recipe}: step {number}: {key!r} must be {_TYPE_WORDS[kind]} (got {step[key]!r})")


def shipped_recipes() -> dict[str, Path]:
    """The recipes that come with vidlstm by name (``finetune``: ``pipelines/`` in a source checkout,
    ``vidlstm/_pipelines`` in a wheel)."""
    for folder in shipped_places("pipelines", "_pipelines"):
        found = {p.stem: p for p in sorted(folder.glob("*.toml"))}
        if found:
            return found
    return {}


def find_recipe(path) -> Path:
    """``path`` where it is a file (``NAME`` also as the user's own ``NAME.toml`` here); else the shipped recipe of
    that name, where ``path`` is a bare name (``finetune``, ``finetune.toml``) or ``pipelines/NAME.toml`` (the
    README's spelling, outside a source checkout); else ``path``, which load_recipe says is no recipe file."""
    given = Path(path)
    if given.is_file() or given.suffix not in ("", ".toml"):
        return given
    if not given.suffix and given.with_suffix(".toml").is_file():
        return given.with_suffix(".toml")
    if "/" in str(path) and str(given.parent) != "pipelines":  # a path (./x.toml, nope/x.toml) is the user's: a typo
        return given                                            # there must not run a shipped recipe
    return shipped_recipes().get(given.stem, given)


def load_recipe(path, overrides: dict[str, str] | None = None,
                option_kind: Callable[[str, str], str | None] | None = None) -> list[Step]:
    """The recipe's steps, ${var}s substituted. ``option_kind(command, "--name")``: what that option of that command
    takes (OPTION_KINDS), or None where not known; without it every option is turned into words as given."""
    recipe = find_recipe(path)
    try:
        data = tomllib.loads(recipe.read_text(encoding="utf-8-sig"))  # TOML is UTF-8 whatever the locale; an editor's
        # byte-order mark is not a statement
    except FileNotFoundError:
        names = ", ".join(shipped_recipes()) or "none found"
        raise UsageError(f"{recipe}: no such recipe file (the recipes that come with vidlstm, by name: {names})") \
            from None
    except UnicodeDecodeError as err:
        line = err.object[:err.start].count(b"\n") + 1
        raise UsageError(f"{recipe}: cannot read the recipe (not UTF-8 text, as TOML must be: byte "
                         f"0x{err.object[err.start]:02x} on line {line})") from None
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise UsageError(f"{recipe}: cannot read the recipe ({err})") from None
    unknown = sorted(set(data) - {"vars", "steps"})
    if unknown:  # a misspelt [setings] or stepz = 1 was ignored, where a step's unknown key is refused
        raise UsageError(f"{recipe}: unknown top-level key(s) {', '.join(map(repr, unknown))}; a recipe holds [vars] "
                         f"and [[steps]]")
    if not isinstance(data.get("vars", {}), dict):
        raise UsageError(f"{recipe}: 'vars' must be a table of names and values ([vars])")
    values = resolve_vars(recipe, data.get("vars", {}), overrides or {})
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise UsageError(f"{recipe}: the recipe has no [[steps]]")
    result = []
    for number, step in enumerate(steps, start=1):
        _check_step(recipe, number, step)
        command = step.get("command")
        if not command:
            raise UsageError(f"{recipe}: step {number} has no command")
        argv = [command]
        for arg in step.get("args", []):
            text = substitute(str(arg), values, recipe)
            if text == "":
                missing = _VAR.findall(str(arg))
                raise UsageError(f"{recipe}: step {number} ({command}) needs "
                                 f"{'${' + missing[0] + '}' if missing else 'an argument'}; "
                                 f"pass --set {missing[0] if missing else 'NAME'}=VALUE")
            argv.append(text)
        name = step.get("name", command)
        for key, value in step.get("options", {}).items():
            value = substitute(value, values, recipe) if isinstance(value, str) else value
            if isinstance(value, list):
                value = [substitute(v, values, recipe) if isinstance(v, str) else v for v in value]
            kind = option_kind(command, "--" + key.replace("_", "-")) if option_kind else None
            try:
                argv.extend(option_args(key, value, kind))
            except ValueError as err:
                raise UsageError(f"{recipe}: step {number} ({name}): option {key!r} {err}") from None
        result.append(Step(name, argv))
    return result


def run(config: PipelineConfig, runner: Callable[[list[str]], int], echo: Callable[[str], None] = print,
        option_kind: Callable[[str, str], str | None] | None = None) -> int:
    """Run every step through ``runner`` (the CLI's main), printing each; stop at the first failing step.
    Returns the exit code of the pipeline (that of the failing step, or 0). ``option_kind``: as for load_recipe."""
    steps = load_recipe(config.recipe, config.overrides, option_kind)
    recipe = str(find_recipe(config.recipe).resolve())
    if recipe in _RUNNING:
        raise UsageError(f"{config.recipe}: a step runs this recipe again, which is already running (a recipe "
                         f"cannot run itself)")
    _RUNNING.add(recipe)
    try:
        return _run_steps(config, steps, runner, echo)
    finally:
        _RUNNING.discard(recipe)


_RUNNING: set[str] = set()
"""The recipes whose steps are running in this process (a step may be `run` of another recipe)."""


def _run_steps(config: PipelineConfig, steps: list[Step], runner, echo) -> int:
    for number, step in enumerate(steps, start=1):
        echo(f"[{number}/{len(steps)}] {step.name}: {step}")
        if config.dry_run:
            continue
        code = int(runner(step.argv) or 0)
        if code != 0:
            happened = "was interrupted" if code in (130, 143) else f"failed with exit code {code}"
            echo(f"[{number}/{len(steps)}] {step.name} {happened}; stopping")
            return code
    return 0
