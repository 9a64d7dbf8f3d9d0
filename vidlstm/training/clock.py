"""The time a run made of parts (`train --backbone auto`'s candidates) has spent, across the processes that resumed it.

Each part is an ordinary run that keeps its own clock in its training state, but the budget a part is given depends on
what the parts before it spent. A resumed auto run used to start counting from zero: the candidate it resumed was
given nearly the whole budget again (on top of what the read-out had already spent), and choice.json's seconds
covered only the last process. ``RunClock`` keeps, in a small JSON file, the seconds spent when each part began and
the budget it was given; a resumed part keeps that budget (its own clock goes on from its saved state), and the run's
total counts each finished part's own ``run_seconds``, which span its interrupted processes too.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from vidlstm.files import atomic_write_text


class RunClock:
    """Seconds since a run began, its interrupted processes included (as far as their parts' ends were saved)."""

    def __init__(self, path: Path, resume: bool):
        self.path = Path(path)
        saved = self._read() if resume else {}
        self.before = float(saved.get("seconds", 0.0))  # what the interrupted processes had spent, as last saved
        self.parts: dict[str, dict] = {name: dict(part) for name, part in (saved.get("parts") or {}).items()
                                       if isinstance(part, dict)}
        self.started = time.perf_counter()

    def _read(self) -> dict:
        try:
            saved = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}  # none yet (interrupted before any part began), or unreadable: count from here
        return saved if isinstance(saved, dict) else {}

    def seconds(self) -> float:
        return self.before + time.perf_counter() - self.started

    def budget(self, name: str, fresh: float, began: bool) -> float:
        """The budget of part ``name``: the one it was first given where it began in an interrupted process (its
        own clock resumes from its saved state), else ``fresh``, recorded with the time it starts."""
        saved = self.parts.get(name)
        if began and saved and isinstance(saved.get("budget"), (int, float)):
            return float(saved["budget"])
        self.parts[name] = {"budget": fresh, "began_at": round(self.seconds(), 3)}
        self.save()
        return fresh

    def part_ended(self, name: str, run_seconds) -> None:
        """Part ``name`` ended after ``run_seconds`` of its own (all its processes): the run has spent at least the
        seconds when it began plus those."""
        began_at = (self.parts.get(name) or {}).get("began_at")
        if isinstance(run_seconds, (int, float)) and isinstance(began_at, (int, float)):
            self.before += max(0.0, began_at + run_seconds - self.seconds())
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps({"seconds": round(self.seconds(), 3), "parts": self.parts}) + "\n")
