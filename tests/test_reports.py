"""The report built from the session's real smoke study, and from partial or broken copies of it."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook
from PIL import Image

from reports.analysis import bootstrap_beats, expected_max
from reports.build import build, main
from reports.curves import plot_curves
from reports.spreadsheet import COLUMNS, FILENAME
from study.results import TRIALS

PLOTS = ("lr_sensitivity.png", "lr_batch.png", "scheduler_comparison.png", "learning_curves.png", "importance.png",
         "expected_max.png")


@pytest.fixture(scope="module")
def report(smoke, tmp_path_factory):
    root, trials = smoke
    out = build(root, tmp_path_factory.mktemp("report"))
    return root, trials, out


def test_spreadsheet_rows_equal_the_trials_table(report):
    root, trials, out = report
    sheets = pd.read_excel(out / FILENAME, sheet_name=None)
    assert list(sheets) == ["Summary", "kinetics-motion", "kinetics-392"]
    for subset in ("kinetics-motion", "kinetics-392"):
        sheet = sheets[subset]
        assert list(sheet.columns) == [c.header for c in COLUMNS]
        expected = trials[trials["subset"] == subset].sort_values("index")
        assert sheet["Experiment ID"].tolist() == expected["experiment_id"].tolist()
        assert sheet["Folder"].tolist() == expected["folder"].tolist()
        assert sheet["Learning Rate"].tolist() == pytest.approx(expected["lr"].tolist())
        assert sheet["Batch Size"].tolist() == expected["batch_size"].tolist()
        assert sheet["Test top-1"].tolist() == pytest.approx(expected["best_val_top1"].tolist())
        assert sheet["Test top-5"].tolist() == pytest.approx(expected["best_val_top5"].tolist())
        assert sheet["Train top-1"].tolist() == pytest.approx(expected["train_top1_at_best"].tolist())
        assert sheet["Epochs run"].tolist() == expected["epochs_run"].tolist()
        assert sheet["Stop reason"].tolist() == expected["stop_reason"].tolist()
        assert sheet["Seed"].tolist() == expected["seed"].tolist()
        assert (sheet["Dataset type"] == f"{subset} (synthetic)").all()
        assert (sheet["Pre-trained"] == "no").all()
        for _, row in sheet.iterrows():
            if row["Optimizer"].startswith("SGD"):
                assert "momentum" in row["Optimizer"] and "betas" not in row["Optimizer"]
            else:
                assert row["Optimizer"].startswith("Adam (betas")
        stopped = sheet[sheet["Stop reason"] == "stopped_by_asha"]
        for _, row in stopped.iterrows():
            expected_note = f"stopped by ASHA at epoch {row['Epochs run']} of {row['Epochs planned']}"
            assert expected_note in row["Observations and Notes"]
        assert sheet["Observations and Notes"].fillna("").str.contains("best of study").sum() == 1


def test_spreadsheet_formats_links_and_layout(report):
    root, _, out = report
    book = load_workbook(out / FILENAME)
    sheet = book["kinetics-motion"]
    headers = [c.value for c in sheet[1]]
    column = {h: i + 1 for i, h in enumerate(headers)}
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref
    assert sheet.cell(row=1, column=1).font.bold
    assert sheet.cell(row=2, column=column["Learning Rate"]).number_format == "0.00E+00"
    assert sheet.cell(row=2, column=column["Test top-1"]).number_format == "0.0%"
    for row in range(2, sheet.max_row + 1):
        cell = sheet.cell(row=row, column=column["Folder"])
        assert cell.hyperlink is not None
        assert (out / cell.hyperlink.target).resolve() == (root / "experiments" / cell.value).resolve()
    summary = [[c.value for c in row] for row in book["Summary"].iter_rows()]
    flat = [v for row in summary for v in row if v is not None]
    assert "Trials by stop reason" in flat and "Best experiment per subset" in flat
    assert "not comparable: synthetic data" in flat


def test_every_plot_is_a_valid_image_and_the_page_references_it(report):
    _, _, out = report
    page = (out / "index.html").read_text()
    for name in PLOTS:
        path = out / "plots" / name
        with Image.open(path) as image:
            image.verify()
        assert path.stat().st_size > 5000
        assert f"plots/{name}" in page
    assert FILENAME in page and "not comparable" in page


def test_asha_stopped_trials_get_their_stop_drawn_into_their_curves(report, tmp_path):
    root, trials, _ = report
    stopped = trials[trials["stop_reason"] == "stopped_by_asha"].iloc[0]
    folder = root / "experiments" / stopped["folder"]
    table = pd.read_csv(folder / "save_values_csv" / "epochs.csv")
    run, planned = int(stopped["epochs_run"]), int(stopped["epochs_planned"])
    plot_curves(table, tmp_path / "marked", stopped["folder"], run, f"stopped by ASHA at epoch {run} of {planned}")
    plot_curves(table, tmp_path / "plain", stopped["folder"])
    drawn = (folder / "matplotlib_graphs" / "accuracy.png").read_bytes()
    assert drawn == (tmp_path / "marked" / "accuracy.png").read_bytes()  # the same plot, with the stop line
    assert drawn != (tmp_path / "plain" / "accuracy.png").read_bytes()


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
    table[["best_val_top1", "best_val_top5", "train_top1_at_best"]] = math.nan
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
    for name in ("trials.parquet", "epochs.parquet", "optuna.journal"):
        shutil.rmtree(study / name) if (study / name).is_dir() else (study / name).unlink()
    out = build(study)
    page = (out / "index.html").read_text()
    assert "no rows yet" in page and "nothing to plot" in page
    assert load_workbook(out / FILENAME).sheetnames == ["Summary"]


def test_a_directory_that_is_not_a_study_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "not a study directory" in capsys.readouterr().err
    assert main([str(tmp_path / "absent")]) == 2


def test_expected_max_matches_brute_force_and_ends_at_the_maximum():
    scores = np.array([0.2, 0.5, 0.1, 0.4])
    curve = expected_max(scores)
    assert curve[0] == pytest.approx(scores.mean())
    assert curve[-1] <= scores.max() and np.all(np.diff(curve) >= 0)
    rng = np.random.default_rng(0)
    draws = rng.choice(scores, (200_000, 2)).max(1).mean()
    assert curve[1] == pytest.approx(draws, abs=3e-3)


def test_bootstrap_interval_separates_clearly_different_configs_only():
    a, b = np.array([0.60, 0.61, 0.62]), np.array([0.40, 0.41, 0.42])
    diff, low, high = bootstrap_beats(a, b)
    assert diff == pytest.approx(0.2) and low > 0
    _, low, high = bootstrap_beats(a, a + 0.001)
    assert low < 0 < high
