"""Self-contained HTML pages for the reports of ``course report`` and ``course similarity``: one
file with its CSS inline and its figures embedded as PNG data (the same PNGs are also written
beside it, for slides); no script, nothing fetched from anywhere.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from matplotlib.figure import Figure

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2430;
       margin: 0 auto; max-width: 1180px; padding: 24px 28px 48px; background: #fbfbfd; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 8px; border-bottom: 1px solid #d8dce3; padding-bottom: 4px; }
p.lead { color: #4a5568; margin: 0 0 16px; }
.note { color: #4a5568; font-size: 13px; }
.facts { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; padding: 0; }
.facts div { background: #fff; border: 1px solid #d8dce3; border-radius: 6px; padding: 6px 12px; }
.facts dt { font-size: 12px; color: #4a5568; } .facts dd { margin: 0; font-size: 18px; }
table { border-collapse: collapse; width: 100%; background: #fff; margin: 8px 0; }
th, td { border: 1px solid #d8dce3; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f6; font-size: 13px; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.bar { display: inline-block; width: 80px; height: 9px; background: #e6e9ef; margin-right: 6px;
       border-radius: 2px; vertical-align: middle; }
.bar span { display: block; height: 100%; background: #c0392b; border-radius: 2px; }
td.messages { width: 46%; }
ol.messages { margin: 0; padding-left: 18px; } ol.messages li { margin-bottom: 4px; }
.hint { color: #2b6cb0; }
code, pre { font: 12.5px/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
figure { margin: 8px 0; } figure img { max-width: 100%; border: 1px solid #d8dce3; }
figcaption { font-size: 13px; color: #4a5568; }
.banner { background: #fff8e1; border: 1px solid #e8c66a; border-radius: 6px; padding: 8px 12px; }
.pair { background: #fff; border: 1px solid #d8dce3; border-radius: 6px; margin: 16px 0;
        padding: 8px 12px; }
.sides { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 10px; }
.sides pre { margin: 0; padding: 8px; background: #f6f7f9; border: 1px solid #e2e5ea;
             max-height: 520px; overflow: auto; white-space: pre; }
mark { background: #ffd54f; color: inherit; }
"""


class PageFigure(NamedTuple):
    """A figure of a page: its PNG file name, the PNG and a caption."""

    name: str
    png: bytes
    caption: str


def esc(value: object) -> str:
    """``value`` as HTML text."""
    return html.escape(str(value), quote=True)


def png(figure: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def figure_html(figure: PageFigure) -> str:
    """The figure embedded (a data URI), with its caption."""
    data = base64.b64encode(figure.png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{esc(figure.caption)}">'
        f"<figcaption>{esc(figure.caption)}</figcaption></figure>"
    )


def share_bar(share: float) -> str:
    """A small horizontal bar and the percentage, for a share in [0, 1]."""
    percent = max(0.0, min(1.0, share)) * 100
    return f'<span class="bar"><span style="width:{percent:.0f}%"></span></span>{percent:.0f}%'


def facts(items: Iterable[tuple[str, str, str]]) -> str:
    """A row of labelled numbers: ``(element id, label, value)``."""
    cells = "".join(
        f'<div><dt>{esc(label)}</dt><dd id="{esc(key)}">{esc(value)}</dd></div>'
        for key, label, value in items
    )
    return f'<dl class="facts">{cells}</dl>'


def table(headers: list[str], rows: Iterable[str]) -> str:
    """A table from its headers (text) and its rows (each ``<tr>...</tr>`` HTML)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def page(title: str, lead: str, body: str) -> str:
    """A complete HTML document."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f'<body><h1>{esc(title)}</h1><p class="lead">{lead}</p>{body}</body></html>\n'
    )


def write_page(out_dir: Path, name: str, document: str, figures: Iterable[PageFigure]) -> Path:
    """Write ``<out_dir>/<name>`` and the figures' PNG files beside it; returns the page."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for figure in figures:
        (out_dir / figure.name).write_bytes(figure.png)
    path = out_dir / name
    path.write_text(document, encoding="utf-8")
    return path
