"""One HTML page, rendered from summary.json alone: the answer first (per subset, across the subsets, the next
command with its trial count and time), then one row per trial with links to its folder and curves, then the
details (the sentences, the study's facts, the plots this study can show and why the others are absent, the tables,
a link to the spreadsheet)."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

from common.files import write_text
from reports.answer import across_line, name, next_step_lines, pct, subset_lines
from reports.table import Column, Table

STOPS = {"completed": "completed", "stopped_by_asha": "stopped by ASHA", "diverged": "diverged", "errored": "errored",
         "running": "running", "interrupted": "interrupted"}
STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;line-height:1.4} img{max-width:100%}
table{border-collapse:collapse;margin:1em 0} td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#1F4E78;color:#fff} figure{margin:2em 0} .missing{color:#a33} .note{color:#555}
.answer{background:#f3f7fb;border-left:4px solid #1F4E78;padding:.6em 1.2em;margin:1em 0}
.answer p{margin:.3em 0} .lead{font-weight:bold} pre{background:#eee;padding:.6em;white-space:pre-wrap}
.flag{white-space:nowrap}"""


def text(line: str) -> str:
    """A sentence for the page: escaped, and a command-line flag with its value never broken across lines."""
    return re.sub(r"(--[\w-]+(?: [\w.-]+)?)", r'<span class=flag>\1</span>', html.escape(line))


def _table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c.header)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c.text(v))}</td>" for c, v in zip(table.columns, row)) + "</tr>"
                   for row in table.rows)
    note = f"<p class=note>{html.escape(table.note)}</p>" if table.note else ""
    return f"<h3>{html.escape(table.title)}</h3>{note}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def answer_section(summary: dict) -> str:
    answer = summary["answer"]
    blocks = []
    for subset in answer["subsets"]:
        lead, *rest = subset_lines(subset)
        blocks.append(f"<p class=lead>{text(lead)}</p>" + "".join(f"<p>{text(x)}</p>" for x in rest))
    across = across_line(answer["across"])
    if across:
        blocks.append(f"<p class=lead>{html.escape(across)}</p>")
    said, *command = next_step_lines(answer["next_step"])
    step = f"<p>{text(said)}</p>" + "".join(f"<pre>{html.escape(c)}</pre>" for c in command)
    answered = "".join(blocks) or "<p>No trial has reported yet.</p>"
    return f"<h2>The answer</h2><div class=answer>{answered}</div><h2>Next</h2>{step}"


def _link(target: str | None, text: str) -> str:
    return f'<a href="{html.escape(target)}">{html.escape(text)}</a>' if target else html.escape(text)


def trials_section(summary: dict) -> str:
    """One row per trial: its searched parameters, its score at each budget, how it ended, its verdict, its folder
    and curves."""
    budgets = [str(b) for b in summary["study"]["budgets"]]
    parameters = list(summary["trials"][0]["config"])
    head = ["subset", "experiment", *(name(p) for p in parameters), *(f"val top-1 at epoch {b}" for b in budgets),
            "ended", "verdict at the headline budget", "curves"]
    rows = []
    for t in summary["trials"]:
        ended = STOPS.get(t["stop_reason"], t["stop_reason"] or "")
        if t["epochs_run"] is not None and t["epochs_planned"] is not None:
            ended += f" ({t['epochs_run']} of {t['epochs_planned']} epochs)"
        cells = [html.escape(t["subset"]), _link(t["folder_link"], str(t["experiment_id"] or t["trial_id"])),
                 *(html.escape(_value(t["config"][p])) for p in parameters),
                 *(pct(t["scores"][b]) if b in t["scores"] else "" for b in budgets), html.escape(ended),
                 html.escape((t["verdict"] or "") + (f" (seed repeat of {t['repeat_of']})" if t["repeat_of"] else "")),
                 _link(t["curves_link"], "curves") if t["curves_link"] else ""]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return (f"<h2>Trials</h2><p class=note>Scores are val top-1 at each budget the trials are compared at (an ASHA rung "
            "or the last epoch of the completed trials); the verdict is each trial's own test against chance at the "
            f"headline budget.</p><table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _value(value) -> str:
    """A parameter's value as the page writes it: three significant digits for a number, as is otherwise."""
    if isinstance(value, float):
        return f"{value:.3g}"
    return "" if value is None else str(value)


def write_page(target: Path, summary: dict, figures: list[tuple[Path, str]], not_drawn: list[str], facts: list[list],
               tables: list[Table], workbook: Path) -> Path:
    def link(path: Path) -> str:
        return html.escape(os.path.relpath(path, target.parent))
    name = html.escape(summary["study"]["name"])
    said = "".join(f"<li>{text(line)}</li>" for line in summary["findings"])
    missing = "".join(f"<li>{html.escape(line)}</li>" for line in summary["missing"])
    sections = "".join(
        f'<figure><img src="{link(path)}" alt="{html.escape(path.stem)}"><figcaption>{html.escape(caption)}'
        "</figcaption></figure>" for path, caption in figures)
    absent = "".join(f"<p class=note>{html.escape(line)}</p>" for line in not_drawn)
    fact_table = Table("The study", [Column(""), Column("value")], [[k, v] for k, v in facts])
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ST-GCN sensitivity study: {name}</title>
<style>{STYLE}</style></head><body>
<h1>ST-GCN sensitivity study: {name}</h1>
{answer_section(summary)}
{trials_section(summary) if summary["trials"] else ''}
<h2>Details</h2>
<h3>What the data says</h3><ul class=findings>{said}</ul>
{_table(fact_table)}
<p>Spreadsheet: <a href="{link(workbook)}">{html.escape(workbook.name)}</a>; one folder per experiment under
<code>experiments/</code>.</p>
{f'<h3>Missing or partial</h3><ul class="missing">{missing}</ul>' if missing else ''}
<h3>Sensitivity</h3>{sections or '<p>No trial has reported yet, so there is nothing to plot.</p>'}{absent}
{"".join(_table(t) for t in tables if t.rows)}
</body></html>
"""
    write_text(target, page)
    return target
