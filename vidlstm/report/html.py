"""HTML building blocks of the report: escaping, tables, embedded images, the self-contained page."""
from __future__ import annotations

import base64
import html
import math
from pathlib import Path

# Inline CSS only: the page must render from a file:// URL with no network and no JavaScript.
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f4f5f7}
header{background:#1d2330;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#c9cfdb;font-size:13px;word-break:break-all}
nav{padding:8px 28px;background:#fff;border-bottom:1px solid #dde1e8}
nav a{margin-right:14px;color:#2856b6;text-decoration:none}
main{padding:8px 28px 40px}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;margin:16px 0;padding:12px 18px}
h2{font-size:17px;margin:4px 0 10px}
h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border-bottom:1px solid #e6e9ef;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#eef1f6}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.path{word-break:break-all;max-width:520px}
tr.error td{background:#fdecec}
.bar{display:inline-block;height:10px;background:#4a7bd6;vertical-align:middle;margin-right:6px}
.absent{color:#8a5a00;background:#fff6e0;border-left:3px solid #e0a800;padding:6px 10px}
.note{color:#5b6475}
.counts span{display:inline-block;margin-right:18px;font-size:16px}
.counts b{font-size:22px}
img{max-width:100%;height:auto;border:1px solid #e6e9ef}
figure{margin:10px 0 18px}
figcaption{font-size:13px;color:#3a4253;word-break:break-all}
pre{background:#f6f7f9;padding:8px;overflow-x:auto;font-size:12px}
"""


class Markup(str):
    """HTML built here, inserted as-is; every other string that reaches the page is escaped."""


def esc(value) -> Markup:
    """``value`` as HTML text: ``<``, ``&`` and quotes from file names or labels can never become markup."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(format_value(value), quote=True))


def format_value(value) -> str:
    """Numbers short and readable (4 decimals), None as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        # 4 decimals reads well for accuracies and losses; tiny (learning rates) and huge values keep 4 digits.
        return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.4g}"
    return str(value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def table(headers: list[str], rows: list[list], row_classes: list[str] | None = None,
          path_columns: tuple[int, ...] = ()) -> Markup:
    """A table; numbers right-aligned, ``path_columns`` allowed to wrap anywhere."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        css = f' class="{esc(row_classes[i])}"' if row_classes and row_classes[i] else ""
        cells = []
        for j, value in enumerate(row):
            kind = "num" if _is_number(value) else "path" if j in path_columns else ""
            cells.append(f'<td class="{kind}">{esc(value)}</td>' if kind else f"<td>{esc(value)}</td>")
        body.append(f"<tr{css}>{''.join(cells)}</tr>")
    return Markup(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def key_value_table(pairs: dict) -> Markup:
    return table(["name", "value"], [[k, v] for k, v in pairs.items()])


def bar(fraction: float, width_px: int = 200) -> Markup:
    """A horizontal bar (a sized span): charts without JavaScript."""
    width = max(0, min(width_px, round(fraction * width_px)))
    return Markup(f'<span class="bar" style="width:{width}px"></span>')


def image(path, alt: str) -> Markup:
    """The PNG at ``path`` embedded as a base64 data URI: the page carries its images inside it."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return Markup(f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">')


def absent(text: str) -> Markup:
    return Markup(f'<p class="absent">{esc(text)}</p>')


def paragraph(text: str, css: str = "note") -> Markup:
    return Markup(f'<p class="{css}">{esc(text)}</p>')


def heading(text: str, level: int = 3) -> Markup:
    return Markup(f"<h{level}>{esc(text)}</h{level}>")


def section(anchor: str, title: str, parts: list[str]) -> Markup:
    return Markup(f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{"".join(map(esc, parts))}</section>')


def page(title: str, subtitle: str, sections: list[tuple[str, str, list[str]]]) -> str:
    """The whole document: ``sections`` are (anchor, title, parts), linked from a navigation bar."""
    nav = "".join(f'<a href="#{esc(anchor)}">{esc(name)}</a>' for anchor, name, _ in sections)
    body = "".join(section(anchor, name, parts) for anchor, name, parts in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>"
            f"<nav>{nav}</nav><main>{body}</main></body></html>\n")
