"""Log lines of the library: everything goes through ``logging.getLogger("vidlstm")``; the CLI installs the handler.

The handler (``install_cli_handler``) keeps the CLI's one-line format: warnings as ``warning: ...`` and errors as
``error: ...`` on stderr, progress lines (INFO) on stdout, each written with ``tqdm.write`` so that it lands above
any progress bar instead of through it.
"""
from __future__ import annotations

import logging
import os
import sys

LOGGER_NAME = "vidlstm"
log = logging.getLogger(LOGGER_NAME)


class TqdmHandler(logging.Handler):
    """INFO and below to stdout, WARNING and above to stderr (prefixed with the level), above tqdm bars."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            message = self.format(record)
            if record.levelno >= logging.WARNING:
                tqdm.write(f"{record.levelname.lower()}: {message}", file=sys.stderr)
            else:
                tqdm.write(message, file=sys.stdout)
        except Exception:  # noqa: BLE001 - logging must never take the run down (a closed pipe, ...)
            self.handleError(record)


def install_cli_handler(verbosity: int = 0) -> logging.Handler:
    """The CLI's handler on the "vidlstm" logger, replacing an earlier one: -q (-1) warnings and errors only,
    default (0) also progress lines (rank 0's alone under torchrun), -v (1) also debug lines. Idempotent, so main()
    may run many times."""
    for old in [h for h in log.handlers if isinstance(h, TqdmHandler)]:
        log.removeHandler(old)
    handler = TqdmHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    # Under torchrun every rank runs the same command: its progress lines come from rank 0 alone (once, not once
    # per rank); warnings and errors from every rank (each may meet its own).
    quiet = verbosity < 0 or (verbosity == 0 and os.environ.get("RANK", "0") not in ("", "0"))
    log.setLevel(logging.WARNING if quiet else logging.DEBUG if verbosity > 0 else logging.INFO)
    log.propagate = False  # the CLI prints each line once, whatever the root logger has
    return handler


def bar_disabled(show: bool) -> bool | None:
    """tqdm's ``disable`` for a progress bar: off where not asked for, and (None) off where stderr is no terminal,
    so a log file or CI gets no redraws."""
    return None if show else True
