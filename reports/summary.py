"""``report/summary.json``: the report's answers for programs, and what the page and the spreadsheet are rendered from.

One JSON object, described in docs/report.md and checked against docs/summary.schema.json in the suite
(``SCHEMA_VERSION`` changes when a key does):

- ``study``: name, data (synthetic or real), space, status, seed, trial count, budgets, each subset's headline
  budget and why it was chosen;
- ``answer``: the verdicts as data (reports/analysis.py): per subset at its headline budget whether it learns, each
  searched parameter's verdict (``matters``, ``not_detected``, ``not_testable``) with its effect and what the test
  could find or how many trials it needs, the working learning rates; across the subsets; the next step (its
  command, trials per subset and expected time). The page, the Summary sheet and the console render it
  (reports/answer.py);
- ``trials``: one row per trial: its config, its score at each budget, how it ended, its verdict at the headline
  budget, and links (relative to the report) to its folder and its curves;
- ``findings``: the sentences of "What the data says", in order;
- ``noise_floors``: per subset, at its headline budget, the standard deviation of a score and its kind (``seeds``:
  measured from seed repeats, ``evaluation``: only the validation set's sampling noise, a lower bound);
- ``tables``: every table of the report by its key (``best``, ``learning``, ``parameters``, ``levels``,
  ``seed_comparisons``, ...), each with its title, note, columns (key, header, unit) and rows as objects keyed by
  the columns' keys. Percentages and points are fractions (0.531 is 53.1%), as their unit says; absent values null.
- ``missing``: what could not be read or built.
"""

from __future__ import annotations

import json
from pathlib import Path

from common.files import write_text
from reports.analysis import StudyAnalysis
from reports.findings import SubsetFindings
from reports.load import StudyResults
from reports.table import Table, plain

SCHEMA_VERSION = 3
FILENAME = "summary.json"


def summarize(results: StudyResults, found: dict[str, SubsetFindings], analysis: StudyAnalysis, levels: list[int],
              findings: list[str], tables: list[Table]) -> dict:
    request = results.manifest.get("request", {})
    keys = [table.key for table in tables]
    if len(set(keys)) != len(keys):
        raise ValueError(f"two report tables share a key: {keys}")
    return {
        "schema_version": SCHEMA_VERSION,
        "study": {"name": results.name, "data": results.data_source, "space": results.space_name,
                  "status": results.manifest.get("status", "unknown"), "seed": request.get("seed"),
                  "trials": len(results.trials), "budgets": [int(b) for b in levels],
                  "headline_budget": {s: {"epoch": int(f.budget), "why": f.why} for s, f in found.items()}},
        **analysis.to_json(),
        "findings": findings,
        "noise_floors": {s: {"sd": plain(f.noise.sd), "kind": f.noise.source, "runs": int(f.noise.runs),
                             "configs": int(f.noise.configs), "budget": int(f.budget), "text": f.noise.describe()}
                         for s, f in found.items()},
        "tables": {table.key: table.to_json() for table in tables},
        "missing": list(results.missing),
    }


def write_summary(target: Path, summary: dict) -> dict:
    """Writes it, and returns it as read back: the page and the sheet are rendered from exactly what was written."""
    text = json.dumps(summary, indent=1, allow_nan=False, default=plain)
    write_text(target, text + "\n")
    return json.loads(text)


def read_summary(path: Path) -> dict:
    return json.loads(path.read_text())


def tables_of(summary: dict) -> list[Table]:
    return [Table.from_json(key, data) for key, data in summary["tables"].items()]


def facts_of(summary: dict) -> list[list]:
    """The page's and the sheet's table of the study, from the summary."""
    study = summary["study"]
    headline = next(iter(study["headline_budget"].values()), None)
    return [["Study", study["name"]], ["Data", study["data"]], ["Space", study["space"]], ["Status", study["status"]],
            ["Seed", study["seed"]], ["Trials", study["trials"]],
            ["Budgets (epochs)", ", ".join(map(str, study["budgets"]))],
            *([["Headline budget", f"epoch {headline['epoch']}: {headline['why']}"]] if headline else []),
            *[[f"Noise floor ({s})", noise["text"]] for s, noise in summary["noise_floors"].items()],
            *[["Missing", line] for line in summary["missing"]]]
