"""The self-contained HTML report of a training run, an evaluation or a predictions file (`vidlstm report`)."""
from vidlstm.report.build import build_report_html

__all__ = ["build_report_html"]
