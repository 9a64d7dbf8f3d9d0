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
        except OSError:  # the reader gone (`| head`) or no space left (`> /dev/full`): the line is dropped, without
            pass  # a "Logging error" traceback per line; the command's own output says what its writes met
        except Exception:  # noqa: BLE001 - logging must never take the run down
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


def progress_bar(show: bool, **kwargs):
    """A tqdm bar where stderr is a terminal. Where it is not (a log file, CI, a pipe) and progress is asked for, a
    plain progress line instead, at most once a minute (``VIDLSTM_PROGRESS_SECONDS`` sets how often): a long decode
    or batch run is seen to move where a bar would only redraw. ``kwargs`` are tqdm's (total, desc, unit, ...)."""
    from tqdm import tqdm

    if show and not _is_terminal(sys.stderr):
        return LineProgress(**kwargs)
    return tqdm(disable=bar_disabled(show), **kwargs)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}" if minutes >= 60 else f"{minutes}:{seconds:02d}"


class LineProgress:
    """The part of tqdm's interface vidlstm's bars use, as progress lines (INFO, so ``-q`` silences them):
    ``desc: n/total unit (p%) in m:ss, ~m:ss left; postfix``, at most every ``every`` seconds, none redrawn."""

    def __init__(self, total=None, desc: str = "", unit: str = "it", initial: int = 0, every: float | None = None,
                 clock=None, **_ignored):
        import time

        self._time = clock or time.monotonic
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        if every is None:
            try:
                every = float(os.environ.get("VIDLSTM_PROGRESS_SECONDS", 60))
            except ValueError:
                every = 60.0
        self.every, self._initial, self._postfix = every, initial, ""
        self._start = self._last = self._time()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self._time()
        if now - self._last >= self.every:
            self._last = now
            log.info("%s", self._line(now - self._start))

    def _line(self, elapsed: float) -> str:
        unit = "" if self.unit in ("it", "") else f" {self.unit}" if self.unit.endswith("s") else f" {self.unit}s"
        if self.total:
            done = self.n - self._initial
            left = (self.total - self.n) * elapsed / done if 0 < done and self.n < self.total else None
            text = (f"{self.desc}: {self.n}/{self.total}{unit} ({100 * self.n / self.total:.0f}%) in {_clock(elapsed)}"
                    + (f", ~{_clock(left)} left" if left is not None else ""))
        else:
            text = f"{self.desc}: {self.n}{unit} in {_clock(elapsed)}"
        return text + (f"; {self._postfix}" if self._postfix else "")

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self._postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self._postfix = str(s)

    def close(self) -> None:
        pass
