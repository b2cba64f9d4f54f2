"""python -m reports.build STUDY_DIR [--out DIR]: the study's findings, spreadsheet, sensitivity plots, page and
summary.json (the answers for programs, which the page and the spreadsheet are rendered from).

Reads only the study's files (study.json, space.yaml, trials.parquet, epochs.parquet, experiments/), so
it runs on a laptop after the results were copied off a cluster, and on a study that is still running; it writes
only under its output directory. What it cannot build (no finished trial in a subset, a missing file) is said in
the spreadsheet's summary and on the page.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import pandas as pd

from common import logs
from reports import sensitivity
from reports.analysis import analyse_study
from reports.answer import answer_lines
from reports.comparisons import seed_comparisons
from reports.findings import SubsetFindings, across_subsets, analyse, name
from reports.html import write_page
from reports.load import NotAStudyError, StudyResults, load_study
from reports.reproduction import reproduction_table
from reports.scores import budgets
from reports.spreadsheet import FILENAME, write_workbook
from reports.summary import FILENAME as SUMMARY
from reports.summary import facts_of, summarize, tables_of, write_summary
from reports.table import Column, Table
from training.plots import plot_curves

STOP_LABELS = {"stopped_by_asha": "stopped by ASHA", "diverged": "diverged (loss NaN)", "errored": "errored"}


def mark_stops(results: StudyResults, trials: pd.DataFrame, out: Path) -> None:
    """The curves of trials that ended early, with where and why they stopped (the trial itself cannot know that
    ASHA stopped it), drawn into the report's ``curves/<folder>/``: the report never changes its input."""
    for _, row in trials[trials["stop_reason"].isin(list(STOP_LABELS))].iterrows():
        folder = results.experiment_dir(row["folder"])
        csv = folder / "save_values_csv" / "epochs.csv" if folder else None
        if csv and csv.is_file():
            label = f"{STOP_LABELS[row['stop_reason']]} at epoch {int(row['epochs_run'])} of {int(row['epochs_planned'])}"
            plot_curves(pd.read_csv(csv), out / "curves" / folder.name, str(row["folder"]), int(row["epochs_run"]),
                        label)


def varied(trials: pd.DataFrame) -> set[str]:
    """The config columns that take two values or more among the trials: a table or a plot by any other would show one
    value."""
    return {c for c in ("lr", "optimizer", "scheduler", "batch_size") if c in trials and trials[c].nunique() > 1}


def links_from(results: StudyResults, out: Path):
    """A trial's folder -> (its experiment folder, its accuracy curves), relative to the report ``out``: the report's
    copy of the curves where it drew where ASHA stopped the trial, else the trial's own."""
    def links(folder: str) -> tuple[str | None, str | None]:
        found = results.experiment_dir(folder)
        if found is None:
            return None, None
        marked = out / "curves" / found.name / "accuracy.png"
        curves = marked if marked.is_file() else found / "matplotlib_graphs" / "accuracy.png"
        return os.path.relpath(found, out), os.path.relpath(curves, out) if curves.is_file() else None
    return links


def summary_tables(trials: pd.DataFrame, found: dict[str, SubsetFindings], shown: set[str]) -> list[Table]:
    best = Table("Best experiment per subset", [
        Column("Subset"), Column("Budget (epochs)", "int"), Column("Experiment ID", "int"),
        Column("Test top-1 at the budget", "percent"), Column("Test top-1 (last epoch)", "percent"),
        Column("Test top-1 (best epoch)", "percent"), Column("Optimizer"), Column("LR", "lr"), Column("Batch", "int"),
        Column("Scheduler"), Column("Folder")],
        note="The best trial at the headline budget: at the final budget the study's score (the last epoch's "
             "val top-1 of a completed trial), at an ASHA rung the val top-1 at that epoch of every trial that reached "
             "it. A single run chosen as the highest of many, so biased upward (its seed repeats, where run, are in "
             "the seed comparison). The best epoch's top-1 is the maximum over epochs of the reported split, so it is "
             "optimistic.", key="best")
    for subset, f in found.items():
        if f.best is not None:
            b = f.best
            best.add(subset, f.budget, b["experiment_id"], b["score"], b["last_val_top1"], b["best_val_top1"],
                     b["optimizer"], b["lr"], b["batch_size"], b["scheduler"], b["folder"])
    tables = [best]
    for column, title in (("optimizer", "optimizer"), ("scheduler", "scheduler"), ("batch_size", "batch size")):
        if column not in shown:
            continue
        table = Table(f"Best and median per {title}", [Column("Subset"), Column(title.capitalize()),
                                                       Column("trials", "int"), Column("budget (epochs)", "int"),
                                                       Column("best", "percent"), Column("median", "percent")],
                      note="At each subset's headline budget (matched: the same epoch for every trial).",
                      key=f"by_{column}")
        for subset, f in found.items():
            for value, group in f.scored.groupby(column) if len(f.scored) else []:
                table.add(subset, value, len(group), f.budget, group["score"].max(), group["score"].median())
        tables.append(table)
    tables += verdict_tables(found)
    counts = Table("Trials by stop reason", [Column("Subset"), *(Column(h, "int") for h in (
        "trials", "completed", "stopped_by_asha", "diverged", "errored", "running"))], key="stop_reasons")
    for subset, rows in trials.groupby("subset", sort=False) if len(trials) else []:
        reasons = rows["stop_reason"].value_counts()
        counts.add(subset, len(rows), *(int(reasons.get(c.header, 0)) for c in counts.columns[2:]))
    tables.append(counts)
    return tables


def verdict_tables(found: dict[str, SubsetFindings]) -> list[Table]:
    """Every verdict at every budget, with its raw and Holm-adjusted p-value, and each parameter's effect in points."""
    learning = Table("Is each subset learning? (by budget)", [
        Column("Subset"), Column("Budget (epochs)", "int"), Column("trials", "int"), Column("best", "percent"),
        Column("chance", "percent"), Column("validation clips", "int"), Column("p (best of N)", "ratio"),
        Column("p, Holm", "ratio"), Column("verdict")],
        note="The best trial's correct count against chance: one-sided binomial test, Bonferroni over the trials "
             "looked at, then Holm over every subset and budget in this table (family-wise error 5%).", key="learning")
    tests = Table("Does each parameter matter? (by budget)", [
        Column("Subset"), Column("Budget (epochs)", "int"), Column("Parameter"), Column("trials", "int"),
        Column("values or bins", "int"), Column("omega squared", "ratio"), Column("permutation p", "ratio"),
        Column("p, Holm", "ratio"), Column("verdict"), Column("best - worst value", "points"),
        Column("detectable (80% power)", "points")],
        note="Permutation test of the spread of scores between the parameter's values (numbers in quantile bins, and "
             "their order), Holm over every parameter and subset at the headline budget (family-wise error 5%); at the "
             "other budgets the p-values are exploratory. Omega squared: the share of "
             "the score's variance the values explain, descriptive. Detectable: the difference between the best and the "
             "worst value the test would find with 80% probability at its corrected level.", key="parameters")
    levels = Table("Mean val top-1 per value (by budget)", [
        Column("Subset"), Column("Budget (epochs)", "int"), Column("Parameter"), Column("value"), Column("trials", "int"),
        Column("mean", "percent"), Column("95% low", "percent"), Column("95% high", "percent")],
        note="Each value's (or bin's) trials at that budget; t interval from those trials alone.", key="levels")
    for subset, f in found.items():
        for budget, verdict in sorted(f.learning.items()):
            rows = f.scored_at[budget]
            learning.add(subset, budget, len(rows), rows["score"].max(), f.chance, f.clips, verdict.p, verdict.adjusted,
                         "learns" if verdict.holds else "not shown above chance")
        for budget, per in sorted(f.tests.items()):
            for parameter, test in per.items():
                verdict = f.verdicts.get((budget, parameter))
                if verdict is None:  # a deeper budget: ASHA's survivors, no claim
                    tests.add(subset, budget, name(parameter), test.trials, test.groups.count, test.omega2, test.p,
                              None, "exploratory (ASHA's survivors, not a claim)", test.effect, None)
                    continue
                detectable = f.detectable.get((budget, parameter))
                tests.add(subset, budget, name(parameter), test.trials, test.groups.count, test.omega2, test.p,
                          verdict.adjusted, "matters" if verdict.holds else "not detected", test.effect, detectable)
                for level in test.levels:
                    levels.add(subset, budget, name(parameter), level.label, level.trials, level.mean, level.low,
                               level.high)
    return [learning, tests, levels]


class Steps:
    """Progress of a build, said at info level on a large study (tens of seconds at 1,000 trials), else at debug."""
    LARGE = 200  # trials

    def __init__(self, trials: int):
        self.level = logging.INFO if trials >= self.LARGE else logging.DEBUG
        self.start = time.monotonic()

    def __call__(self, what: str) -> None:
        logs.get("report").log(self.level, f"report: {what} ({time.monotonic() - self.start:.0f} s)")


def build(study: Path, out: Path | None = None) -> Path:
    results = load_study(study)
    step = Steps(len(results.trials))
    step(f"read {len(results.trials)} trials and {len(results.epochs)} epochs")
    out = Path(out) if out else results.root / "report"
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    for stale in plots.glob("*.png"):  # a plot an earlier build drew and this one may not: the page shows only its own
        stale.unlink()
    trials, epochs = results.trials, results.epochs
    levels = budgets(trials, epochs, results.manifest) if len(trials) else []
    found = analyse(trials, epochs, list(results.subsets), results.searched, levels,
                    results.space.get("report_budget")) if len(trials) else {}
    step(f"verdicts at budgets {levels}")
    if len(trials):
        mark_stops(results, trials, out)
    findings = [line for f in found.values() for line in f.sentences] + across_subsets(found, results.searched)
    tables = summary_tables(trials, found, varied(trials)) + [reproduction_table(trials, found), seed_comparisons(trials)]
    analysis = analyse_study(found, trials, epochs, levels, results.searched, results.manifest, results.root,
                             links_from(results, out))
    summary = write_summary(out / SUMMARY, summarize(results, found, analysis, levels, findings, tables))
    figures, not_drawn = sensitivity.figures(summary, plots)
    facts, tables = facts_of(summary), tables_of(summary)
    workbook = write_workbook(out / FILENAME, summary, answer_lines(summary), facts, tables)
    write_page(out / "index.html", summary, figures, not_drawn, facts, tables, workbook)
    step(f"{len(figures)} figures drawn")
    step(f"written to {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", type=Path, help="the study directory (STORAGE/NAME)")
    parser.add_argument("--out", type=Path, help="where the report goes (default STUDY/report)")
    logs.add_options(parser)
    args = parser.parse_args(argv)
    logs.configure(args.log_level)
    try:
        out = build(args.study, args.out)
    except NotAStudyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logs.get("report").info(f"report: {out / FILENAME}, {out / 'index.html'}, {out / SUMMARY}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
