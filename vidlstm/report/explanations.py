"""Find the `--explain` output (JSON + PNG strip) of the videos a report lists, and render it as figures."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vidlstm.report.html import Markup, absent, esc, image, paragraph


@dataclass
class Explanation:
    """One video's explanation: its JSON content and the strip PNG beside it (None when that file is gone)."""

    json_path: Path
    data: dict
    strip_png: Path | None


def read_explanation(json_path: Path) -> Explanation | None:
    """The explanation in ``json_path``; None for a file that is not one (the report just skips it)."""
    try:
        data = json.loads(Path(json_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or "path" not in data or not isinstance(data.get("frames"), list):
        return None
    strip = data.get("strip")
    # Only a plain file name beside the JSON: a crafted "strip" must not pull other files into the page.
    png = Path(json_path).parent / Path(str(strip)).name if strip else None
    return Explanation(Path(json_path), data, png if png is not None and png.is_file() else None)


class ExplanationIndex:
    """Explanations by the video path they describe, from explanation folders and from records that name one."""

    def __init__(self, folders: list[Path], base: Path):
        self.base = base  # relative explanation paths in records are tried against this folder too
        self.by_path: dict[str, Explanation] = {}
        for folder in folders:
            for json_path in sorted(Path(folder).glob("*.json")):
                found = read_explanation(json_path)
                if found is not None:
                    self.by_path.setdefault(str(found.data["path"]), found)

    def find(self, record: dict) -> Explanation | None:
        """The explanation of ``record``: the file it names, else one whose video path matches its path.

        A path matches exactly, or as a trailing part (evaluate writes paths relative to the data folder).
        """
        named = record.get("explanation")
        if isinstance(named, str) and named:  # a hand-edited record may hold anything there
            for candidate in (Path(named), self.base / named):
                if candidate.is_file():
                    found = read_explanation(candidate)
                    if found is not None:
                        return found
        path = str(record.get("path") or "")
        if not path:
            return None
        if path in self.by_path:
            return self.by_path[path]
        tail = "/" + path.lstrip("/")
        return next((e for p, e in self.by_path.items() if p.endswith(tail)), None)


def _caption(found: Explanation) -> str:
    data = found.data
    try:
        frames = data["frames"]
        top = [frames[t] for t in data.get("top_frames", [])[:3] if isinstance(t, int) and 0 <= t < len(frames)]
        peaks = ", ".join(f"{f['timestamp']:.2f} s (w={f['attention']:.3f})" for f in top)
        score = f"{data['score']:.3f}"
    except (KeyError, TypeError, ValueError):  # an edited or foreign JSON: still show its strip
        peaks, score = "", "?"
    which = "frames the label rests on most" if data.get("weights") == "leave-one-out" else "most attended frames"
    return f"{data.get('path')}: {data.get('label')} ({score}); {which} at {peaks or 'n/a'}"


def explanation_figures(records: list[dict], index: ExplanationIndex, limit: int) -> list[Markup]:
    """Figures of the strips of ``records`` (at most ``limit``), with a line saying how many there are."""
    ok = [r for r in records if r.get("status", "ok") == "ok"]
    found = [(r, e) for r in ok if (e := index.find(r)) is not None]
    if not found:
        return [absent("no explanation found for these files: classify or predict with `--explain DIR`, then "
                       "pass `--explanations DIR` to `vidlstm report` (or put them in an `explanations/` folder "
                       "beside the source)")]
    parts = [paragraph(f"{len(found)} of {len(ok)} classified file(s) have an explanation"
                       + (f"; the first {limit} are shown" if len(found) > limit else ""))]
    for _, explanation in found[:limit]:
        caption = esc(_caption(explanation))
        if explanation.strip_png is None:
            parts.append(Markup(f"<figure>{absent('strip PNG missing beside ' + str(explanation.json_path))}"
                                f"<figcaption>{caption}</figcaption></figure>"))
            continue
        parts.append(Markup(f"<figure>{image(explanation.strip_png, 'attention strip')}"
                            f"<figcaption>{caption}</figcaption></figure>"))
    return parts
