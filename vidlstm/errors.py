"""Exceptions that carry a one-line, human-readable message and the process exit code."""
from __future__ import annotations

NO_SUCH_FILE = "no such file"
"""The reason a video that is not there is given (its error record starts with it: a resume redoes it once it is)."""
LINK_TO_NO_FILE = "a symbolic link to no file"
"""The reason given for a video whose name is a symbolic link that leads to no file (it is listed, so "no such file"
would puzzle); like NO_SUCH_FILE, a resume redoes its record once the link leads to a file."""
NO_FILE_REASONS = (NO_SUCH_FILE, LINK_TO_NO_FILE)
"""How the reason of an error record about a file that was not there starts."""


def shown_name(name) -> str:
    """A file name fit for a one-line message: a newline or other control character (or a byte that is not
    UTF-8, held as a surrogate escape) is shown as its escape, so the message stays one line."""
    text = str(name)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in text)


def replaced_bytes(text: str) -> str:
    """``text`` fit for a page or a picture: the bytes of a file name that are not UTF-8 (held as surrogate
    escapes, which UTF-8 writers and matplotlib refuse) shown as U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class VidlstmError(Exception):
    """Base error: ``str(err)`` is a single line meant for people; ``exit_code`` is what the CLI returns."""

    exit_code = 1

    def __init__(self, message: str):
        # Errors are printed as one line, so fold any newline an underlying library put in.
        super().__init__(" ".join(str(message).split()))


class UsageError(VidlstmError):
    """Bad command-line input (unknown option value, missing folder, ...): exit code 2."""

    exit_code = 2


class VideoDecodeError(VidlstmError):
    """A video that no decoder backend could open or read."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{self.path}: {self.reason}")


class ModelLoadError(VidlstmError):
    """A model folder that is missing, incomplete or unsafe to load."""

    exit_code = 2


def failure_reason(err: BaseException) -> str:
    """One line for an error record: a VideoDecodeError's reason, else the exception's text."""
    reason = getattr(err, "reason", None) or " ".join(str(err).split())
    return reason or type(err).__name__
