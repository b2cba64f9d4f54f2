"""The experiment spreadsheet, ``[kinetics-skeleton]implem_details_ST-GCN.xlsx``: a summary sheet and one sheet
per subset with a row per experiment, in the columns researchers kept by hand, with links to the folders."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from reports.describe import dataset_text, optimizer_text, scheduler_text
from study.files import atomic_path

FILENAME = "[kinetics-skeleton]implem_details_ST-GCN.xlsx"
PERCENT, SCIENTIFIC, SECONDS = "0.0%", "0.00E+00", "0.0"
HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
HEADER_FONT = Font(bold=True, color="FFFFFF")
LINK_FONT = Font(color="0563C1", underline="single")


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[pd.Series], object]
    number_format: str | None = None
    width: int = 12


def _num(value):
    """Excel has no NaN: an absent number is an empty cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


COLUMNS = (
    Column("Experiment ID", lambda r: _num(r["experiment_id"]), "0", 13),
    Column("Folder", lambda r: r["folder"], None, 44),
    Column("Epochs run", lambda r: _num(r["epochs_run"]), "0", 10),
    Column("Epochs planned", lambda r: _num(r["epochs_planned"]), "0", 10),
    Column("Optimizer", optimizer_text, None, 30),
    Column("Learning Rate", lambda r: _num(r["lr"]), SCIENTIFIC, 12),
    Column("Batch Size", lambda r: _num(r["batch_size"]), "0", 10),
    Column("Scheduler Type", scheduler_text, None, 34),
    Column("Weight Decay", lambda r: _num(r["weight_decay"]), SCIENTIFIC, 12),
    Column("Dataset type", dataset_text, None, 26),
    Column("Pre-trained", lambda r: "yes" if isinstance(r.get("pretrained"), str) else "no", None, 10),
    Column("Model", lambda r: r["model_variant"], None, 34),
    Column("Train top-1", lambda r: _num(r["train_top1_at_best"]), PERCENT, 10),
    Column("Test top-1", lambda r: _num(r["best_val_top1"]), PERCENT, 10),
    Column("Test top-5", lambda r: _num(r["best_val_top5"]), PERCENT, 10),
    Column("Best epoch", lambda r: _num(r["best_epoch"]), "0", 9),
    Column("Stop reason", lambda r: r["stop_reason"], None, 16),
    Column("Wall time (s)", lambda r: _num(r["wall_time_s"]), SECONDS, 11),
    Column("Seed", lambda r: _num(r["seed"]), "0", 8),
    Column("Observations and Notes", lambda r: r["notes"], None, 70),
)


def _header(sheet, headers: list[str], widths: list[int]) -> None:
    sheet.append(headers)
    for index, width in enumerate(widths, start=1):
        cell = sheet.cell(row=1, column=index)
        cell.fill, cell.font = HEADER_FILL, HEADER_FONT
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"


def _finish(sheet) -> None:
    if sheet.max_row > 1:
        sheet.auto_filter.ref = sheet.dimensions


def subset_sheet(book: Workbook, subset: str, rows: pd.DataFrame, link_base: Path,
                 locate: Callable[[str], Path | None]) -> None:
    sheet = book.create_sheet(subset[:31])
    _header(sheet, [c.header for c in COLUMNS], [c.width for c in COLUMNS])
    folder_column = [c.header for c in COLUMNS].index("Folder") + 1
    for _, row in rows.iterrows():
        sheet.append([c.value(row) for c in COLUMNS])
        excel_row = sheet.max_row
        for index, column in enumerate(COLUMNS, start=1):
            if column.number_format:
                sheet.cell(row=excel_row, column=index).number_format = column.number_format
        folder = locate(row["folder"])
        if folder is not None:
            cell = sheet.cell(row=excel_row, column=folder_column)
            cell.hyperlink = os.path.relpath(folder, link_base)
            cell.font = LINK_FONT
        sheet.cell(row=excel_row, column=len(COLUMNS)).alignment = Alignment(wrap_text=True, vertical="top")
    _finish(sheet)


def summary_sheet(book: Workbook, summary: list[tuple[str, list[list]]], facts: list[list]) -> None:
    """Blocks of small tables (best per subset, per optimizer/scheduler/batch, trial counts), then the facts."""
    sheet = book.active
    sheet.title = "Summary"
    sheet.column_dimensions["A"].width = 34
    for letter in "BCDEFGH":
        sheet.column_dimensions[letter].width = 18
    for key, value in facts:
        sheet.append([key, value])
        sheet.cell(row=sheet.max_row, column=1).font = Font(bold=True)
    for title, table in summary:
        sheet.append([])
        sheet.append([title])
        sheet.cell(row=sheet.max_row, column=1).font = Font(bold=True, size=12)
        for i, line in enumerate(table):
            sheet.append(line)
            for j, value in enumerate(line, start=1):
                cell = sheet.cell(row=sheet.max_row, column=j)
                if i == 0:
                    cell.fill, cell.font = HEADER_FILL, HEADER_FONT
                elif isinstance(value, float) and 0 <= value <= 1 and "top-1" in str(table[0][j - 1]):
                    cell.number_format = PERCENT
                elif isinstance(value, float) and "LR" in str(table[0][j - 1]):
                    cell.number_format = SCIENTIFIC


def write_workbook(target: Path, per_subset: dict[str, pd.DataFrame], summary: list[tuple[str, list[list]]],
                   facts: list[list], locate: Callable[[str], Path | None]) -> Path:
    """``locate``: a trial's folder name -> its experiment folder (or None), for the hyperlinks."""
    book = Workbook()
    summary_sheet(book, summary, facts)
    for subset, rows in per_subset.items():
        subset_sheet(book, subset, rows, target.parent, locate)
    with atomic_path(target) as tmp:
        book.save(tmp)
    return target
