"""The report stage: a run folder, evaluate output or predictions file -> one self-contained HTML file."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from vidlstm.batch.records import output_target
from vidlstm.errors import UsageError, replaced_bytes
from vidlstm.files import atomic_write_text


@dataclass
class ReportConfig:
    """One `vidlstm report` run."""

    source: str
    """A training run folder, an evaluate output folder (or its predictions.csv), or a predict JSONL/CSV."""
    output: str = "report.html"
    """The HTML file to write (its folder must exist)."""
    explanations: list[str] = field(default_factory=list)
    """Folders holding `--explain` output; an `explanations/` folder beside the source is always searched."""
    title: str | None = None
    """Page title (default: derived from the source name)."""
    max_rows: int = 2000
    """Files listed in the table at most (errors first)."""
    max_strips: int = 50
    """Explanation strips embedded at most (each is a ~100 kB image)."""

    def __post_init__(self):
        if self.max_rows < 1 or self.max_strips < 0:
            raise UsageError(f"--max-rows must be >= 1 and --max-strips >= 0 (got {self.max_rows}, {self.max_strips})")
        for folder in self.explanations:
            if not Path(folder).is_dir():
                raise UsageError(f"{folder}: no such explanations folder")
        parent = Path(self.output).parent
        if not parent.is_dir():
            raise UsageError(f"{self.output}: the output folder {parent} does not exist")
        if Path(self.output).suffix.lower() not in (".html", ".htm"):  # never a config.json or the predictions
            raise UsageError(f"{self.output}: the report is an HTML page; name an .html file for -o")
        if Path(self.output).exists() and Path(self.output).resolve() == Path(self.source).resolve():
            raise UsageError(f"{self.output}: is the report's input (the predictions), never its output")
        if Path(self.output).is_symlink():  # written through, as predict writes through a linked output
            target = output_target(self.output)
            if not Path(self.output).exists():
                raise UsageError(f"{self.output}: a symbolic link to nothing ({os.readlink(self.output)}); name the "
                                 f"report's file, or make the link lead to one")
            if target.suffix.lower() not in (".html", ".htm"):  # a link must not make the page land on other data
                raise UsageError(f"{self.output}: a symbolic link to {target}, not an .html file; the report is an "
                                 f"HTML page, written where the link leads")


def run(config: ReportConfig, warnings: list | None = None) -> Path:
    """Write the report and return its path; what of the source was left out is appended to ``warnings``."""
    from vidlstm.report import build_report_html

    document = build_report_html(config.source, config.explanations, config.title, config.max_rows, config.max_strips,
                                 warnings)
    document = replaced_bytes(document)  # a file name that is not UTF-8 shows its odd bytes as U+FFFD
    out = Path(config.output)
    try:  # a link stays one, its target replaced (as predict does): atomic_write would replace the link itself
        atomic_write_text(output_target(out), document)  # a browser refreshing the page never sees half a report
    except OSError as err:
        raise UsageError(f"{out}: cannot write the report ({err.strerror})") from None
    return out
