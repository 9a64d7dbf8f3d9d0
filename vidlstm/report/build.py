"""Assemble one report page from a source (run folder, evaluate output, predictions file) and explanations."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from vidlstm.report.explanations import ExplanationIndex
from vidlstm.report.html import page
from vidlstm.report.sections import evaluation_sections, prediction_sections, run_sections
from vidlstm.report.sources import Evaluation, Predictions, cut_off_note, explanation_dirs, load_source


def build_report_html(source_path, explanation_folders: list | None = None, title: str | None = None,
                      max_rows: int = 2000, max_strips: int = 50, warnings: list | None = None) -> str:
    """The whole HTML document for ``source_path``; images embedded, nothing fetched when it is opened. What of the
    source was left out (the page says it too) is appended to ``warnings``, for the command to say."""
    source = load_source(source_path)
    if isinstance(source, Predictions) and source.cut and warnings is not None:
        warnings.append(f"{source.path}: {cut_off_note(source.cut)}")
    base = source.path.parent if isinstance(source, Predictions) else source.root
    index = ExplanationIndex(explanation_dirs(source, explanation_folders), base=base)
    if isinstance(source, Predictions):
        kind, sections = "predictions", prediction_sections(source, index, max_rows, max_strips)
    elif isinstance(source, Evaluation):
        kind, sections = "evaluation", evaluation_sections(source, index, max_rows, max_strips)
    else:
        kind = "model folder" if source.model_dir == source.root else "training run"
        sections = run_sections(source, index, max_rows, max_strips)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"{kind}: {Path(source_path)} · generated {when}"
    return page(title or f"vidlstm report: {Path(source_path).name}", subtitle, sections)
