"""One HTML page that collects the report: what the data says, what the study was, what is missing, each plot with
its caption, the tables (numbers formatted by each column's unit), and a link to the spreadsheet."""

from __future__ import annotations

import html
import os
from pathlib import Path

from common.files import write_text
from reports.load import StudyResults
from reports.table import Column, Table


def _table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c.header)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c.text(v))}</td>" for c, v in zip(table.columns, row)) + "</tr>"
                   for row in table.rows)
    note = f"<p class=note>{html.escape(table.note)}</p>" if table.note else ""
    return f"<h2>{html.escape(table.title)}</h2>{note}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_page(target: Path, results: StudyResults, findings: list[str], figures: list[tuple[Path, str]],
               facts: list[list], tables: list[Table], workbook: Path) -> Path:
    link = lambda path: html.escape(os.path.relpath(path, target.parent))  # noqa: E731
    said = "".join(f"<li>{html.escape(line)}</li>" for line in findings)
    missing = "".join(f"<li>{html.escape(line)}</li>" for line in results.missing)
    sections = "".join(
        f'<figure><img src="{link(path)}" alt="{html.escape(path.stem)}"><figcaption>{html.escape(caption)}'
        "</figcaption></figure>" for path, caption in figures)
    fact_table = Table("The study", [Column(""), Column("value")], [[k, v] for k, v in facts])
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ST-GCN sensitivity study: {html.escape(results.name)}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;}} img{{max-width:100%;}}
table{{border-collapse:collapse;margin:1em 0;}} td,th{{border:1px solid #ccc;padding:3px 8px;}}
th{{background:#1F4E78;color:#fff;}} figure{{margin:2em 0;}} .missing{{color:#a33;}} .note{{color:#555;}}</style>
</head><body>
<h1>ST-GCN sensitivity study: {html.escape(results.name)}</h1>
<h2>What the data says</h2><ul class=findings>{said}</ul>
{_table(fact_table)}
<p>Spreadsheet: <a href="{link(workbook)}">{html.escape(workbook.name)}</a>; one folder per experiment under
<code>experiments/</code>.</p>
{f'<h2>Missing or partial</h2><ul class="missing">{missing}</ul>' if missing else ''}
<h2>Sensitivity</h2>{sections or '<p>No trial has reported yet, so there is nothing to plot.</p>'}
{"".join(_table(t) for t in tables if t.rows)}
</body></html>
"""
    write_text(target, page)
    return target
