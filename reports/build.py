"""python -m reports.build STUDY_DIR [--out DIR]: the study's spreadsheet, sensitivity plots and an HTML page.

Reads only the study's files (study.json, trials.parquet, epochs.parquet, optuna.journal, experiments/), so it
runs on a laptop after the results were copied off a cluster, and on a study that is still running. What it
cannot build (no finished trial in a subset, a missing file) is said in the spreadsheet's summary and the page.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from reports import analysis, sensitivity
from reports.curves import plot_curves
from reports.describe import notes
from reports.html import write_page
from reports.load import NotAStudyError, StudyResults, load_study
from reports.spreadsheet import FILENAME, write_workbook
from study.experiment import parse_folder_name

STOP_LABELS = {"stopped_by_asha": "stopped by ASHA", "diverged": "diverged (loss NaN)", "errored": "errored"}


def annotate(results: StudyResults, noise: dict[str, float]) -> dict[str, pd.DataFrame]:
    """Per subset: the trials sorted by index, with num_classes and the Observations and Notes column."""
    per_subset = {}
    for subset in results.subsets:
        rows = results.trials[results.trials["subset"] == subset].sort_values("index") if len(results.trials) else \
            pd.DataFrame()
        if rows.empty:
            continue
        rows = rows.assign(num_classes=rows["folder"].map(
            lambda f: parse_folder_name(f)["num_classes"] if isinstance(f, str) else np.nan))
        best = rows["best_val_top1"].max()
        best_id = rows.loc[rows["best_val_top1"].idxmax(), "trial_id"] if rows["best_val_top1"].notna().any() else None
        rows["notes"] = [notes(r, r["trial_id"] == best_id, noise.get(subset), None if np.isnan(best) else best)
                         for _, r in rows.iterrows()]
        per_subset[subset] = rows
    return per_subset


def mark_stops(results: StudyResults, trials: pd.DataFrame) -> None:
    """Redraw the curves of trials that ended early with where and why they stopped (the trial itself cannot
    know that ASHA stopped it)."""
    for _, row in trials[trials["stop_reason"].isin(list(STOP_LABELS))].iterrows():
        folder = results.experiment_dir(row["folder"])
        csv = folder / "save_values_csv" / "epochs.csv" if folder else None
        if csv and csv.is_file():
            label = f"{STOP_LABELS[row['stop_reason']]} at epoch {int(row['epochs_run'])} of {int(row['epochs_planned'])}"
            plot_curves(pd.read_csv(csv), folder / "matplotlib_graphs", str(row["folder"]), int(row["epochs_run"]),
                        label)


def summary_tables(per_subset: dict[str, pd.DataFrame]) -> list[tuple[str, list[list]]]:
    tables = []
    best_rows = [["Subset", "Experiment ID", "Test top-1", "Optimizer", "LR", "Batch", "Scheduler", "Folder"]]
    for subset, rows in per_subset.items():
        scored = rows.dropna(subset=["best_val_top1"])
        if len(scored):
            top = scored.loc[scored["best_val_top1"].idxmax()]
            best_rows.append([subset, int(top["experiment_id"]), float(top["best_val_top1"]), top["optimizer"],
                              float(top["lr"]), int(top["batch_size"]), top["scheduler"], top["folder"]])
    tables.append(("Best experiment per subset", best_rows))
    for column, title in (("optimizer", "optimizer"), ("scheduler", "scheduler"), ("batch_size", "batch size")):
        table = [["Subset", title, "trials", "best test top-1", "median test top-1"]]
        for subset, rows in per_subset.items():
            for value, group in rows.groupby(column):
                table.append([subset, value.item() if hasattr(value, "item") else value, len(group),
                              float(group["best_val_top1"].max()), float(group["best_val_top1"].median())])
        tables.append((f"Best per {title}", table))
    counts = [["Subset", "trials", "completed", "stopped_by_asha", "diverged", "errored", "running"]]
    for subset, rows in per_subset.items():
        reasons = rows["stop_reason"].value_counts()
        counts.append([subset, len(rows), *(int(reasons.get(r, 0)) for r in counts[0][2:])])
    tables.append(("Trials by stop reason", counts))
    return tables


def reproduction_table(per_subset: dict[str, pd.DataFrame], data_source: str) -> list[list]:
    """The study's best next to the published ST-GCN figures; marked not comparable on synthetic data."""
    verdict = "not comparable: synthetic data" if "synthetic" in data_source else "comparable (real data)"
    table = [["Subset", "study best top-1", "study best top-5", "published", "published top-1", "published top-5",
              "comparison"]]
    for subset, rows in per_subset.items():
        published = analysis.PUBLISHED[subset]
        table.append([subset, float(rows["best_val_top1"].max()), float(rows["best_val_top5"].max()),
                      published["what"], published["top1"], published["top5"], verdict])
    return table


def build(study: Path, out: Path | None = None) -> Path:
    results = load_study(study)
    out = Path(out) if out else results.root / "report"
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    search = results.trials[results.trials["repeat_of"].isna()] if len(results.trials) else results.trials
    noise = analysis.seed_noise(results.trials)
    per_subset = annotate(results, noise)
    if per_subset:
        mark_stops(results, pd.concat(per_subset.values()))
    subsets = results.subsets or ("kinetics-motion",)
    importances, expected = {}, {}
    for subset, rows in per_subset.items():
        study_for = results.optuna_study(subset)
        if study_for is not None:
            importances[subset], why = analysis.importances(study_for, search[search["subset"] == subset])
            results.missing.extend(f"{subset}: {line}" for line in why)
        expected[subset] = analysis.expected_max(rows.loc[rows["repeat_of"].isna(), "best_val_top1"].to_numpy(float))
    figures = []
    if len(results.trials):
        figures += [
            (sensitivity.lr_sensitivity(results.trials, subsets, plots, noise),
             "Best validation top-1 against the learning rate, per optimizer; hollow markers are trials ASHA stopped "
             "early, so their score is a lower bound. Grey: the seed-noise band below the best, when measured."),
            (sensitivity.lr_batch(results.trials, subsets, plots),
             "Learning rate against batch size, coloured by best validation top-1; the dashed line is the linear "
             "scaling rule through the paper's recipe (lr 0.1 at batch 256)."),
            (sensitivity.scheduler_comparison(results.trials, subsets, plots, noise),
             "Distribution of best validation top-1 per learning-rate scheduler."),
            (sensitivity.learning_curves(results.epochs, results.trials, subsets, plots),
             "Validation top-1 per epoch for every trial; x marks where ASHA stopped a trial, + a divergence."),
            (sensitivity.importance_plot(importances, subsets, plots),
             "Hyperparameter importance per subset (Optuna's fANOVA and PED-ANOVA over the searched parameters, "
             "scored by each trial's best validation top-1), side by side."),
            (sensitivity.expected_max_plot(expected, subsets, plots, Path(str(results.manifest.get(
                "request", {}).get("space", results.name))).stem),
             "Expected best validation top-1 as a function of the number of trials (Dodge et al., 2019), from "
             "this study's trials treated as draws from its search distribution.")]
    facts = [["Study", results.name], ["Data", results.data_source],
             ["Space", str(results.manifest.get("request", {}).get("space", "unknown"))],
             ["Status", results.manifest.get("status", "unknown")], ["Trials", len(results.trials)],
             *[[f"Seed noise ({s})", f"{100 * v:.2f} points (std of best val top-1 over seeds)"] for s, v in noise.items()],
             *[["Missing", line] for line in results.missing]]
    reproduction = reproduction_table(per_subset, results.data_source)
    comparisons = analysis.seed_comparisons(results.trials) if len(results.trials) else []
    extra = [("Reproduction check (published ST-GCN)", reproduction)]
    if len(comparisons) > 1:
        extra.append(("Does the best config beat the others? (bootstrap over seeds)", comparisons))
    workbook = write_workbook(out / FILENAME, per_subset, summary_tables(per_subset) + extra, facts,
                              results.experiment_dir)
    write_page(out / "index.html", results, figures, facts, extra, workbook)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", type=Path, help="the study directory (STORAGE/NAME)")
    parser.add_argument("--out", type=Path, help="where the report goes (default STUDY/report)")
    args = parser.parse_args(argv)
    try:
        out = build(args.study, args.out)
    except NotAStudyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"report: {out / FILENAME}, {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
