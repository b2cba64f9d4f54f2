"""The report built from the session's real smoke study, and from partial or broken copies of it."""

from __future__ import annotations

import html
import json
import logging
import math
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pandas as pd
import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook
from PIL import Image

from common import logs
from reports.answer import answer_lines
from reports.build import Steps, build, main
from reports.describe import notes
from reports.spreadsheet import EXPERIMENT_COLUMNS, FILENAME, write_workbook
from reports.table import Column, Table
from training.plots import plot_curves
from training.results import TRIALS

ROOT = Path(__file__).resolve().parents[1]
PLOTS = ("lr_sensitivity.png", "learning_curves.png", "importance.png")  # what the smoke study can show


@pytest.fixture(scope="module")
def report(smoke, tmp_path_factory):
    root, trials = smoke
    out = build(root, tmp_path_factory.mktemp("report"))
    return root, trials, out


def test_spreadsheet_rows_equal_the_trials_table(report):
    root, trials, out = report
    sheets = pd.read_excel(out / FILENAME, sheet_name=None)
    assert list(sheets)[0] == "Summary" and list(sheets)[-2:] == ["kinetics-motion", "kinetics-392"]
    for subset in ("kinetics-motion", "kinetics-392"):
        sheet = sheets[subset]
        assert list(sheet.columns) == [c.column.header for c in EXPERIMENT_COLUMNS]
        expected = trials[trials["subset"] == subset].sort_values("index")
        assert sheet["Experiment ID"].tolist() == expected["experiment_id"].tolist()
        assert sheet["Folder"].tolist() == expected["folder"].tolist()
        assert sheet["Learning Rate"].tolist() == pytest.approx(expected["lr"].tolist())
        assert sheet["Batch Size"].tolist() == expected["batch_size"].tolist()
        assert sheet["Test top-1 (last epoch): the study's score"].tolist() == pytest.approx(
            expected["last_val_top1"].tolist())
        assert sheet["Test top-1 (best epoch, optimistic)"].tolist() == pytest.approx(expected["best_val_top1"].tolist())
        assert sheet["Test top-5 (last epoch)"].tolist() == pytest.approx(expected["last_val_top5"].tolist())
        assert sheet["Train top-1 (last epoch)"].tolist() == pytest.approx(expected["last_train_top1"].tolist())
        assert sheet["Epochs run"].tolist() == expected["epochs_run"].tolist()
        assert sheet["Stop reason"].tolist() == expected["stop_reason"].tolist()
        assert sheet["Seed"].tolist() == expected["seed"].tolist()
        assert sheet["Optuna trial"].tolist() == expected["optuna_number"].tolist()
        clips = expected["train_clips"].iloc[0]
        assert (sheet["Dataset type"] == f"{subset}, at most 6 per class, stratified, seed 0, {clips} training clips "
                                         "(synthetic)").all()
        assert (sheet["Pre-trained"] == "no").all()
        for _, row in sheet.iterrows():
            if row["Optimizer"].startswith("SGD"):
                assert "momentum" in row["Optimizer"] and "betas" not in row["Optimizer"]
            else:
                assert row["Optimizer"].startswith("Adam (betas")
        stopped = sheet[sheet["Stop reason"] == "stopped_by_asha"]
        for _, row in stopped.iterrows():
            assert f"stopped by ASHA at epoch {row['Epochs run']} of {row['Epochs planned']}" in \
                row["Observations and Notes"]
        summary = json.loads((out / "summary.json").read_text())
        answer = next(a for a in summary["answer"]["subsets"] if a["subset"] == subset)
        best = sheet[sheet["Observations and Notes"].fillna("").str.contains(f"best at epoch {answer['budget']}")]
        assert best["Experiment ID"].tolist() == [answer["best_experiment_id"]]  # the page's best, at its budget
        for _, trial in pd.DataFrame(summary["trials"]).query("subset == @subset").iterrows():
            said = sheet.loc[sheet["Experiment ID"] == trial["experiment_id"], "Observations and Notes"].fillna("").item()
            assert (f"at chance at epoch {answer['budget']}" in said) == (trial["verdict"] == "at chance")


def test_spreadsheet_formats_links_and_layout(report):
    root, _, out = report
    book = load_workbook(out / FILENAME)
    sheet = book["kinetics-motion"]
    headers = [c.value for c in sheet[1]]
    column = {h: i + 1 for i, h in enumerate(headers)}
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref
    assert sheet.cell(row=1, column=1).font.bold
    assert sheet.cell(row=2, column=column["Learning Rate"]).number_format == "0.0#####"  # 0.0133, not 1.33E-02
    assert sheet.page_setup.fitToWidth == 1 and sheet.sheet_properties.pageSetUpPr.fitToPage
    assert sheet.cell(row=2, column=column["Test top-1 (last epoch): the study's score"]).number_format == "0.0%"
    for row in range(2, sheet.max_row + 1):
        cell = sheet.cell(row=row, column=column["Folder"])
        assert cell.hyperlink is not None
        assert (out / cell.hyperlink.target).resolve() == (root / "experiments" / cell.value).resolve()
    summary = [[c.value for c in row] for row in book["Summary"].iter_rows()]
    answer = answer_lines(json.loads((out / "summary.json").read_text()))
    assert summary[0][0] == "The answer" and [row[0] for row in summary[1:1 + len(answer)]] == answer
    assert book["Summary"].cell(row=2, column=1).alignment.wrap_text
    flat = [v for row in summary for v in row if v is not None]
    assert "Trials by stop reason" in flat and "Best experiment per subset" in flat  # the index of the table sheets
    link = next(row[1] for row in book["Summary"].iter_rows() if row[0].value == "Trials by stop reason")
    assert link.value == "stop_reasons" and link.hyperlink.location == "'stop_reasons'!A1"
    reproduction = [c.value for row in book["reproduction"].iter_rows() for c in row]
    assert "not comparable: synthetic data" in reproduction


def test_numbers_are_formatted_by_the_unit_their_column_declares_in_the_page_and_the_sheet(tmp_path):
    table = Table("t", [Column("A - B", "points"), Column("95% CI low", "points"), Column("mean", "percent"),
                        Column("lr", "lr"), Column("n", "int")])
    table.add(0.02, -0.013, 0.5, 0.1, 4)
    assert [c.text(v) for c, v in zip(table.columns, table.rows[0])] == ["+2.0 pts", "-1.3 pts", "50.0%", "0.1", "4"]
    book = load_workbook(write_workbook(tmp_path / "x.xlsx", {"findings": [], "trials": []}, [], [], [table]))
    cells = {c.value: c for row in book["t"].iter_rows() for c in row}
    assert cells[0.02].number_format == cells[-0.013].number_format == Column("", "points").number_format
    assert cells[0.5].number_format == "0.0%" and cells[0.1].number_format == "0.0#####"


def test_summary_json_holds_the_answers_by_its_schema_and_the_sheets_and_page_are_rendered_from_it(report):
    root, trials, out = report
    summary = json.loads((out / "summary.json").read_text())
    jsonschema.validate(summary, json.loads((ROOT / "docs" / "summary.schema.json").read_text()))
    study = summary["study"]
    assert (study["data"], study["trials"], study["status"]) == ("synthetic", len(trials), "finished")
    assert set(study["headline_budget"]) == set(summary["noise_floors"]) == {"kinetics-motion", "kinetics-392"}
    tables = summary["tables"]
    assert {"best", "learning", "parameters", "levels", "stop_reasons", "seed_comparisons"} <= set(tables)
    for subset, headline in study["headline_budget"].items():  # every verdict at the headline budget, with numbers
        learning = [r for r in tables["learning"]["rows"] if (r["subset"], r["budget_epochs"]) ==
                    (subset, headline["epoch"])]
        assert len(learning) == 1 and 0 <= learning[0]["p_holm"] <= 1 and learning[0]["verdict"]
        tested = [r for r in tables["parameters"]["rows"] if (r["subset"], r["budget_epochs"]) ==
                  (subset, headline["epoch"])]
        assert {r["parameter"] for r in tested} and all(r["verdict"] in ("matters", "not detected") for r in tested)
        assert all(r["p_holm"] is not None and r["trials"] >= 1 for r in tested)
        assert summary["noise_floors"][subset]["kind"] in ("seeds", "evaluation")
    sheets = pd.read_excel(out / FILENAME, sheet_name=None, keep_default_na=False, na_values=[""])  # "n/a" is text
    book = load_workbook(out / FILENAME)
    for key, table in tables.items():
        if not table["rows"]:
            assert key not in sheets
            continue
        sheet = sheets[key]  # pandas reads the table, header first, nothing else on its sheet
        assert list(sheet.columns) == [c["header"] for c in table["columns"]] and len(sheet) == len(table["rows"])
        for column in table["columns"]:
            written = [row[column["key"]] for row in table["rows"]]
            read = sheet[column["header"]].tolist()
            if column["unit"] == "text":
                assert [None if pd.isna(v) else str(v) for v in read] == [None if v is None else str(v) for v in written]
            else:
                assert read == pytest.approx([math.nan if v is None else v for v in written], nan_ok=True)
        assert key in book.defined_names and book[key].auto_filter.ref
    page = _page_text(out / "index.html")
    assert all(line in page for line in summary["findings"] + answer_lines(summary))
    assert all(html.escape(table["title"]) in page for table in tables.values() if table["rows"])


def _page_text(path: Path) -> str:
    """The page's text as a reader sees it: tags dropped, entities read."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


def test_a_large_studys_build_says_each_step_a_small_ones_only_with_verbose(capsys):
    Steps(Steps.LARGE)("verdicts at budgets [1, 2]")
    Steps(Steps.LARGE - 1)("said only at debug level")
    out = capsys.readouterr().out
    assert "report: verdicts at budgets [1, 2] (0 s)" in out and "debug" not in out
    logs.configure(logging.DEBUG)
    Steps(1)("said at debug level")
    assert "report: said at debug level" in capsys.readouterr().out


def test_every_plot_is_a_valid_image_and_the_page_references_it(report):
    _, _, out = report
    page = (out / "index.html").read_text()
    assert sorted(p.name for p in (out / "plots").iterdir()) == sorted(PLOTS)
    for name in PLOTS:
        path = out / "plots" / name
        with Image.open(path) as image:
            image.verify()
        assert f"plots/{name}" in page
    assert FILENAME in page and "not comparable" in page and "What the data says" in page


def test_a_plot_of_one_value_is_not_drawn_and_the_page_says_why(report):
    _, trials, out = report
    assert trials["batch_size"].nunique() == 1 and trials["scheduler"].nunique() == 1  # smoke varies neither
    page = _page_text(out / "index.html")
    assert "No learning rate against batch size plot: the study varies only the learning rate of the two." in page
    assert "No scheduler comparison: every trial uses the same scheduler." in page
    assert "No expected-best-vs-trials curve: it needs at least two independent random draws" in page  # 1 of 4 here
    summary = json.loads((out / "summary.json").read_text())
    assert {"by_optimizer"} <= set(summary["tables"]) and not {"by_scheduler", "by_batch_size"} & set(summary["tables"])


def test_notes_say_overfitting_and_the_pages_verdicts_and_could_be_best_only_with_seed_noise():
    row = pd.Series({"stop_reason": "completed", "epochs_run": 6, "epochs_planned": 6, "retries": 0, "num_classes": 30,
                     "val_clips": 180, "last_train_top1": 0.95, "last_val_top1": 0.55, "repeat_of": None, "seed": 0})
    noise = 0.02
    assert notes(row, None, True, noise, None, 2) == "overfitting: train 95.0% vs test 55.0%; could be the best config " \
                                                     "(95% set, seed noise 2.0 points)"
    assert notes(row, None, False, noise, None, 2) == "overfitting: train 95.0% vs test 55.0%"
    at_chance = row.copy()
    at_chance[["last_train_top1", "last_val_top1"]] = [0.04, 0.04]
    assert notes(at_chance, None, False, None, "at chance", 2) == ("at chance at epoch 2: not shown above chance (each "
                                                                   "trial's binomial test, Holm over the page's trials)")
    assert notes(at_chance, None, False, None, "learned", 2) == "learned by epoch 2 (above chance, Holm over the page's " \
                                                                "trials)"
    assert notes(row, 2, False, noise, None, 2).endswith("best at epoch 2 (a single run: the highest of many, biased "
                                                         "upward)")


def test_asha_stopped_trials_get_their_stop_drawn_into_the_reports_copy_of_their_curves(report, tmp_path):
    root, trials, out = report
    stopped = trials[trials["stop_reason"] == "stopped_by_asha"].iloc[0]
    folder = root / "experiments" / stopped["folder"]
    table = pd.read_csv(folder / "save_values_csv" / "epochs.csv")
    run, planned = int(stopped["epochs_run"]), int(stopped["epochs_planned"])
    plot_curves(table, tmp_path / "marked", stopped["folder"], run, f"stopped by ASHA at epoch {run} of {planned}")
    drawn = (out / "curves" / stopped["folder"] / "accuracy.png").read_bytes()
    assert drawn == (tmp_path / "marked" / "accuracy.png").read_bytes()  # the same plot, with the stop line
    assert not list((folder / "matplotlib_graphs").glob("*.png"))  # the study's folder is untouched (the trial drew
    # no curves: a trial draws them at its end only, and ASHA ended this one)


def test_building_the_report_elsewhere_changes_nothing_in_the_study(smoke, tmp_path):
    root = _copy(smoke, tmp_path)  # its own copy: the other test process may be using the session's study
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and "report" not in p.parts}
    build(root, tmp_path / "elsewhere")
    after = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and "report" not in p.parts}
    assert after == before


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed")
def test_libreoffice_converts_the_spreadsheet(report, tmp_path):
    _, _, out = report
    subprocess.run(["soffice", "--headless", "--convert-to", "csv", "--outdir", str(tmp_path), str(out / FILENAME)],
                   check=True, capture_output=True, timeout=180)
    converted = list(tmp_path.glob("*.csv"))
    assert converted and "Study" in converted[0].read_text()


def _copy(smoke, tmp_path) -> Path:
    root, _ = smoke
    target = tmp_path / root.name
    shutil.copytree(root, target, ignore=lambda folder, names: [n for n in names if Path(folder) == root and (
        n.startswith("kinetics-") or n == "report")])  # Tune's experiments are not the report's input
    return target


def test_partial_study_with_running_errored_and_nan_trials_still_builds(smoke, tmp_path):
    study = _copy(smoke, tmp_path)
    manifest = json.loads((study / "study.json").read_text())
    (study / "study.json").write_text(json.dumps({**manifest, "status": "running"}))
    for part in sorted((study / TRIALS).glob("kinetics-392__*.parquet")):
        part.unlink()  # kinetics-392 has no trial yet
    parts = sorted((study / TRIALS).glob("kinetics-motion__*.parquet"))
    table = pq.read_table(parts[0]).to_pandas()
    table[["stop_reason", "status", "error"]] = ["errored", "error", "RuntimeError: boom"]
    table[["best_val_top1", "best_val_top5", "last_val_top1", "last_val_top5"]] = math.nan
    table.to_parquet(parts[0])
    running = pq.read_table(parts[1]).to_pandas().assign(stop_reason="running", status="running")
    running.to_parquet(parts[1])
    out = build(study)
    sheets = pd.read_excel(out / FILENAME, sheet_name=None)
    assert "kinetics-392" not in sheets
    notes = sheets["kinetics-motion"]["Observations and Notes"].fillna("").tolist()  # an empty note reads as NaN
    assert any("errored after" in n and "boom" in n for n in notes)
    assert any("still running" in str(n) for n in notes)
    page = (out / "index.html").read_text()
    assert "kinetics-392: no trial recorded yet" in page and "still running" in page
    summary = pd.read_excel(out / FILENAME, sheet_name="Summary", header=None).to_numpy().ravel()
    assert any("kinetics-392: no trial recorded yet" in str(v) for v in summary)


def test_empty_study_builds_a_report_that_says_nothing_ran(smoke, tmp_path):
    study = _copy(smoke, tmp_path)
    for name in ("trials.parquet", "epochs.parquet", "optuna"):
        shutil.rmtree(study / name) if (study / name).is_dir() else (study / name).unlink()
    out = build(study)
    page = (out / "index.html").read_text()
    assert "no rows yet" in page and "nothing to plot" in page
    assert "Next: no trial is recorded yet" in page and f"--name {study.name} " in page  # how to go on, not a verdict
    assert load_workbook(out / FILENAME).sheetnames == ["Summary"]


def test_a_directory_that_is_not_a_study_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "not a study directory" in capsys.readouterr().err
    assert main([str(tmp_path / "absent")]) == 2
