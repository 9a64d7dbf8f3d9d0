"""Command-line options built from a config dataclass: one option per field, its help from the field's docstring.

The dataclass stays the one source of truth for names, defaults and documentation: adding a field to
TrainConfig adds its flag to `train` and `finetune`, with the docstring as help.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import textwrap

from vidlstm.cli.common import positive_int


@functools.cache
def field_docs(cls) -> dict[str, str]:
    """{field name: its docstring} from the string literal under each annotated field of ``cls``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def option_help(doc: str) -> str:
    """The field's docstring as argparse help text (``%`` escaped: argparse formats help with it)."""
    return doc.replace("%", "%%")


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """How one field appears on the command line, where the generic rule (``--field-name``) is not enough."""

    flags: tuple[str, ...] = ()
    choices: tuple | None = None
    positive: bool = False  # an integer >= 1 (argparse says so before the config does)
    metavar: str | None = None
    required: bool = False


def add_config_options(parser: argparse.ArgumentParser, cls, *, skip=(), specs: dict | None = None) -> None:
    """Add one option per field of dataclass ``cls`` (except ``skip``), ``dest`` = the field name.

    A bool field defaulting to False becomes ``--name`` (store_true); defaulting to True, ``--no-name``.
    Annotation ``int``/``float``/``str`` (or ``X | None``) gives the option's type; ``specs`` renames
    flags, adds choices or requires a positive integer.
    """
    specs = specs or {}
    docs = field_docs(cls)
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        spec = specs.get(field.name, OptionSpec())
        doc = docs.get(field.name, "")
        default = None if field.default is dataclasses.MISSING else field.default
        annotation = str(field.type)
        if annotation == "bool":
            flag = f"--no-{field.name.replace('_', '-')}" if default else f"--{field.name.replace('_', '-')}"
            parser.add_argument(*(spec.flags or (flag,)), dest=field.name, default=default,
                                action="store_false" if default else "store_true",
                                help=("turn off what is on by default: " if default else "") + option_help(doc))
            continue
        kind = annotation.split("|")[0].strip()
        value_type = {"int": positive_int if spec.positive else int, "float": float}.get(kind, str)
        shown = "" if spec.required else f" (default {default})" if default is not None else ""
        parser.add_argument(*(spec.flags or (f"--{field.name.replace('_', '-')}",)), dest=field.name,
                            type=value_type, default=default, choices=spec.choices, metavar=spec.metavar,
                            required=spec.required, help=option_help(doc) + shown)


def config_kwargs(args: argparse.Namespace, cls) -> dict:
    """The fields of ``cls`` that ``args`` carries, by name: ready for ``cls(**kwargs)``."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
