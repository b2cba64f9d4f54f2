"""One HTML page that collects the report: what the study was, what is missing, each plot with its caption,
the reproduction check, and a link to the spreadsheet."""

from __future__ import annotations

import html
import os
from pathlib import Path

from reports.load import StudyResults
from study.files import write_text


def _table(rows: list[list]) -> str:
    def cell(value) -> str:
        if isinstance(value, float):
            return f"{100 * value:.1f}%" if 0 <= value <= 1 else f"{value:.3g}"
        return html.escape("" if value is None else str(value))
    head = "".join(f"<th>{cell(v)}</th>" for v in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_page(target: Path, results: StudyResults, figures: list[tuple[Path, str]], facts: list[list],
               tables: list[tuple[str, list[list]]], workbook: Path) -> Path:
    """``tables``: titled tables after the plots (the reproduction check first)."""
    link = lambda path: html.escape(os.path.relpath(path, target.parent))  # noqa: E731
    missing = "".join(f"<li>{html.escape(line)}</li>" for line in results.missing)
    sections = "".join(
        f'<figure><img src="{link(path)}" alt="{html.escape(path.stem)}"><figcaption>{html.escape(caption)}'
        "</figcaption></figure>" for path, caption in figures)
    tables_html = "".join(f"<h2>{html.escape(title)}</h2>" + (_table(rows) if len(rows) > 1 else
                          "<p>No subset has a scored trial.</p>") for title, rows in tables)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ST-GCN sensitivity study: {html.escape(results.name)}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;}} img{{max-width:100%;}}
table{{border-collapse:collapse;margin:1em 0;}} td,th{{border:1px solid #ccc;padding:3px 8px;}}
th{{background:#1F4E78;color:#fff;}} figure{{margin:2em 0;}} .missing{{color:#a33;}}</style></head><body>
<h1>ST-GCN sensitivity study: {html.escape(results.name)}</h1>
{_table([["", "value"], *facts])}
<p>Spreadsheet: <a href="{link(workbook)}">{html.escape(workbook.name)}</a>; one folder per experiment under
<code>experiments/</code>.</p>
{f'<h2>Missing or partial</h2><ul class="missing">{missing}</ul>' if missing else ''}
<h2>Sensitivity</h2>{sections or '<p>No trial has reported yet, so there is nothing to plot.</p>'}
<p>The reproduction check puts the study's best accuracies next to the published ST-GCN figures (Yan et al.,
2018); results on synthetic data or a CPU-sized network are not comparable to them.</p>
{tables_html}
</body></html>
"""
    write_text(target, page)
    return target
