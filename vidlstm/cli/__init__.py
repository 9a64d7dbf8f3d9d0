"""The `vidlstm` command: one module per sub-command (parse arguments, call a stage, print)."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading

from vidlstm.errors import VidlstmError

# command name -> module in vidlstm.cli defining add_arguments(parser) and run(args) -> int.
COMMANDS = {
    "classify": ("classify", "classify video files and print labels with scores"),
    "predict": ("predict", "batch-process files/directories into a JSONL or CSV record per file"),
    "merge": ("merge", "join the part files of a sharded predict run"),
    "train": ("train", "train a model on a folder per class or a CSV manifest"),
    "extract": ("extract", "fill the frozen-backbone feature cache ahead of training"),
    "evaluate": ("evaluate", "evaluate a model on labelled videos"),
    "finetune": ("finetune", "adapt an existing model to new clips or a new label set"),
    "run": ("run", "run a pipeline recipe (pipelines/*.toml)"),
    "synth": ("synth", "generate a labelled synthetic motion dataset"),
    "demo": ("demo", "classify fresh synthetic clips with the shipped default model"),
    "export": ("export", "export a model to ONNX or torch.export"),
    "info": ("info", "print a model folder's card"),
    "report": ("report", "build a self-contained HTML report"),
    "stream": ("stream", "classify a live stream as frames arrive"),
}


_PARSED: list[str] = []  # the command line being parsed, for error()'s hint


@contextlib.contextmanager
def parsing(argv: list[str]):
    """``argv`` as the command line being parsed (a recipe's step, checked inside `vidlstm run`): its errors name its
    command, not `run`."""
    saved = list(_PARSED)
    _PARSED[:] = [str(arg) for arg in argv]
    try:
        yield
    finally:
        _PARSED[:] = saved


class _OutputLost(Exception):
    """--help or --version text that stdout could not take (argparse would drop it without a word, exit 0)."""


class _Parser(argparse.ArgumentParser):
    def _print_message(self, message, file=None):
        if not message:
            return
        file = file or sys.stderr
        try:
            file.write(message)
            if file is sys.stdout:
                file.flush()
        except BrokenPipeError:  # the reader went away (`| head`): not an error of ours
            pass
        except (AttributeError, OSError) as err:  # a closed stream is argparse's silence; a full disk is not
            if file is sys.stdout and isinstance(err, OSError):
                raise _OutputLost(err) from None

    def error(self, message):  # one line and exit code 2, as for any usage error
        dashed = [arg for arg in _PARSED if arg.startswith("-") and len(arg) > 1 and os.path.exists(arg)]
        hint = (f" ({dashed[0]} is a file or folder whose name starts with '-', read as an option: write "
                f"./{dashed[0]}, or put -- before the file names)" if dashed else "")
        prog = self.prog
        if prog == "vidlstm":  # the top parser reports a command's unknown options: name the command, as its own do
            prog = next((f"vidlstm {arg}" for arg in _PARSED if arg in COMMANDS), prog)
        self.exit(2, f"{prog}: error: {message}{hint}\n")


def build_parser() -> argparse.ArgumentParser:
    from vidlstm import __version__

    parser = _Parser(prog="vidlstm", description="CNN-LSTM video classification.")
    parser.add_argument("--version", action="version", version=f"vidlstm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(f"vidlstm.cli.{module_name}")
        except ModuleNotFoundError as err:
            if err.name == f"vidlstm.cli.{module_name}":
                continue  # command not built yet
            raise
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        _add_verbosity(p)
        p.set_defaults(_run=module.run)
    return parser


def _add_verbosity(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=-1, default=0,
                       help="no progress lines or bars: warnings, errors and the result")
    group.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=1, help="also debug lines")


# Commands whose work is all written and closed when run() returns: the console command skips the
# interpreter's teardown for them, which after importing torch takes 0.4-1 s here (measured on classify).
FAST_EXIT = {"classify", "predict", "info", "merge", "evaluate", "export", "report", "stream", "demo"}


def entry() -> None:
    """The console command: main(), then exit; after the commands in FAST_EXIT without the slow teardown."""
    sys.exit(main(exit_fast=True))


def main(argv: list[str] | None = None, *, exit_fast: bool = False) -> int:
    """Run one command; its exit code. ``exit_fast`` (the console command only, never in-process callers):
    after a command in FAST_EXIT, flush and end the process here with that code."""
    parser = build_parser()
    _PARSED[:] = [str(arg) for arg in (sys.argv[1:] if argv is None else argv)]
    try:
        args = parser.parse_args(argv)
    except _OutputLost as lost:  # --help or --version to a full disk
        _say_output_lost(next((arg for arg in _PARSED if arg in COMMANDS), None), lost.args[0])
        _quiet_stdout()
        raise SystemExit(1) from None
    _bytes_of_file_names_pass_through(sys.stdout)
    from vidlstm.logs import install_cli_handler

    install_cli_handler(getattr(args, "verbosity", 0))  # library log lines: one line each, above progress bars
    if getattr(args, "verbosity", 0) < 0:  # -q: no progress bars either, whichever way the command spells it
        if hasattr(args, "no_progress"):
            args.no_progress = True
        if hasattr(args, "progress"):
            args.progress = False
    code = _run(args)
    if exit_fast and args.command in FAST_EXIT:
        for stream in (sys.stdout, sys.stderr):  # None where the shell closed it (`vidlstm info >&-`)
            try:
                if stream is not None:
                    stream.flush()
            except BrokenPipeError:  # the reader went away (`| head`): not an error of ours
                pass
            except OSError as err:  # no space left for what stdout still held
                if stream is sys.stdout:
                    _say_output_lost(args.command, err)
                code = code or 1
        _remove_multiprocessing_temp_dir()
        os._exit(code)
    return code


def _remove_multiprocessing_temp_dir() -> None:
    """The /tmp/pymp-XXXX folder multiprocessing made for its decode workers' sockets: removed at the interpreter's
    exit, which the fast exit skips (every classify and demo left one behind)."""
    if "multiprocessing" not in sys.modules:
        return
    import shutil

    try:
        tempdir = sys.modules["multiprocessing"].current_process()._config.get("tempdir")
    except AttributeError:  # another Python's internals
        return
    if tempdir:
        shutil.rmtree(tempdir, ignore_errors=True)


def _say_output_lost(command: str | None, err: OSError, doing: str = "writing to stdout") -> None:
    who = f"vidlstm {command}" if command in COMMANDS else "vidlstm"
    print(f"{who}: error: {doing}: {err.strerror or err}", file=sys.stderr)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, dropping what it still buffers, so the interpreter's final flush does not raise
    again (the recipe in Python's signal docs)."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # closed, or not a file (captured output in tests)
        pass


def _bytes_of_file_names_pass_through(stream) -> None:
    """A file name that is not UTF-8 (Python holds its bytes as surrogate escapes) is printed as those bytes,
    as `ls` prints it, instead of raising UnicodeEncodeError in the middle of the output."""
    try:
        stream.reconfigure(errors="surrogateescape")
    except (AttributeError, ValueError, OSError):  # not a text file stream (captured output in tests ...)
        pass


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that every ``with`` and ``finally`` runs: decode workers are ended,
    output files closed (each record already written is complete, so the same command resumes)."""


def _terminate(signum, frame):
    raise Terminated()


IN_RECIPE: list[str] = []
"""The recipes whose steps this process is running (`vidlstm run`): a step's interruption is continued by the run."""


def _to_continue(command: str, run_dir: str | None = None) -> str:
    """How an interrupted command picks up where it stopped ("": it has nothing to pick up). ``run_dir``: a train or
    finetune's, where a run stopped before it saved a training state has nothing to resume (--resume is refused)."""
    if IN_RECIPE:  # the step's own command is not what the user typed: `vidlstm run RECIPE ... --resume` is
        return f"; run the same `vidlstm run {IN_RECIPE[-1]}` command with --resume to continue"
    if command in ("train", "finetune") and run_dir is not None and not _has_saved_state(run_dir):
        return "; nothing was saved to resume from, so run the same command again to start over"
    if command in ("train", "finetune", "run"):
        return "; run the same command with --resume to continue"
    return "; run the same command to continue" if command in ("predict", "extract") else ""


def _out(args) -> str | None:
    return getattr(args, "out_dir", None)


def _has_saved_state(run_dir: str) -> bool:
    from vidlstm.cli.run import has_saved_state

    return has_saved_state(run_dir)


def _run(args) -> int:
    if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread only
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(args._run(args) or 0)
    except Terminated:
        print(f"vidlstm {args.command}: terminated (SIGTERM){_to_continue(args.command, _out(args))}", file=sys.stderr)
        return 128 + signal.SIGTERM
    except VidlstmError as err:
        print(f"vidlstm {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"vidlstm {args.command}: interrupted{_to_continue(args.command, _out(args))}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # before OSError, its base class: a handler's own raise is caught by no other handler
        # The reader went away (`vidlstm info | head`): not an error of ours. Point stdout at /dev/null so the
        # interpreter's final flush does not raise again (the recipe in Python's signal docs).
        _quiet_stdout()
        return 0
    except OSError as err:
        if err.filename is None and err.errno is None:
            raise
        if err.filename is None:  # a write failed and Python names no file: stdout's (`> /dev/full`) or a file's
            _quiet_stdout()
            _say_output_lost(args.command, err, "writing the output (stdout or a file)")
            return 1
        # The file system said no where no stage had a better sentence for it (a read-only or missing folder for
        # an output, a file where a folder was wanted): the path and the reason, not a traceback.
        print(f"vidlstm {args.command}: error: {err.filename}: {err.strerror or err}", file=sys.stderr)
        return 1
