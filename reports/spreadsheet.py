"""The experiment spreadsheet, ``[kinetics-skeleton]implem_details_ST-GCN.xlsx``: a summary sheet that opens with
what the data says, one sheet per report table (named after its key in summary.json, also a named range), and one
sheet per subset with a row per experiment, in the columns researchers kept by hand, with links to the folders.
Every number is formatted by the unit its column declares (reports/table.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.hyperlink import Hyperlink

from common.files import atomic_path
from reports.describe import dataset_text, notes, optimizer_text, pretrained_text, scheduler_text
from reports.table import Column, Table, plain

FILENAME = "[kinetics-skeleton]implem_details_ST-GCN.xlsx"
HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
HEADER_FONT = Font(bold=True, color="FFFFFF")
LINK_FONT = Font(color="0563C1", underline="single")


@dataclass(frozen=True)
class ExperimentColumn:
    column: Column
    value: Callable[[dict], object]
    width: int = 12


def _field(name: str) -> Callable[[dict], object]:
    return lambda row: plain(row.get(name))


EXPERIMENT_COLUMNS = (
    ExperimentColumn(Column("Experiment ID", "int"), _field("experiment_id"), 13),
    ExperimentColumn(Column("Folder"), _field("folder"), 44),
    ExperimentColumn(Column("Epochs run", "int"), _field("epochs_run"), 10),
    ExperimentColumn(Column("Epochs planned", "int"), _field("epochs_planned"), 10),
    ExperimentColumn(Column("Optimizer"), optimizer_text, 30),
    ExperimentColumn(Column("Learning Rate", "lr"), _field("lr"), 12),
    ExperimentColumn(Column("Batch Size", "int"), _field("batch_size"), 10),
    ExperimentColumn(Column("Scheduler Type"), scheduler_text, 34),
    ExperimentColumn(Column("Weight Decay", "lr"), _field("weight_decay"), 12),
    ExperimentColumn(Column("Dataset type"), dataset_text, 34),
    ExperimentColumn(Column("Pre-trained"), pretrained_text, 24),
    ExperimentColumn(Column("Model"), _field("model_variant"), 34),
    ExperimentColumn(Column("Train top-1 (last epoch)", "percent"), _field("last_train_top1"), 11),
    ExperimentColumn(Column("Test top-1 (last epoch): the study's score", "percent"), _field("last_val_top1"), 13),
    ExperimentColumn(Column("Test top-1 (best epoch, optimistic)", "percent"), _field("best_val_top1"), 12),
    ExperimentColumn(Column("Best epoch", "int"), _field("best_epoch"), 9),
    ExperimentColumn(Column("Test top-5 (last epoch)", "percent"), _field("last_val_top5"), 11),
    ExperimentColumn(Column("Kinetics-Motion protocol top-1 (last epoch)", "percent"), _field("last_motion_top1"), 14),
    ExperimentColumn(Column("Stop reason"), _field("stop_reason"), 16),
    ExperimentColumn(Column("Wall time", "seconds"), _field("wall_time_s"), 11),
    ExperimentColumn(Column("Seed", "int"), _field("seed"), 8),
    ExperimentColumn(Column("Optuna trial", "int"), _field("optuna_number"), 9),
    ExperimentColumn(Column("Sampled by"), _field("sampled_by"), 14),
    ExperimentColumn(Column("Observations and Notes"), _field("notes"), 70),
)


def _header(sheet, headers: list[str], widths: list[int], row: int) -> None:
    for index, (header, width) in enumerate(zip(headers, widths), start=1):
        cell = sheet.cell(row=row, column=index, value=header)
        cell.fill, cell.font = HEADER_FILL, HEADER_FONT
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        if width:
            sheet.column_dimensions[get_column_letter(index)].width = max(width, sheet.column_dimensions[
                get_column_letter(index)].width or 0)


def _row(sheet, values: list, columns: list[Column], row: int) -> None:
    for index, (value, column) in enumerate(zip(values, columns), start=1):
        cell = sheet.cell(row=row, column=index, value=value)
        if column.number_format and isinstance(value, (int, float)) and not isinstance(value, bool):
            cell.number_format = column.number_format


def subset_sheet(book: Workbook, subset: str, trials: list[dict], summary: dict) -> None:
    """A row per experiment of ``subset`` from summary.json's trials: its record, and notes in the page's words."""
    sheet = book.create_sheet(subset[:31])
    columns = [c.column for c in EXPERIMENT_COLUMNS]
    _header(sheet, [c.header for c in columns], [c.width for c in EXPERIMENT_COLUMNS], 1)
    sheet.freeze_panes = "A2"
    folder_column = [c.header for c in columns].index("Folder") + 1
    answer = next((a for a in summary["answer"]["subsets"] if a["subset"] == subset), None)
    noise = summary["noise_floors"].get(subset)
    seed_sd = noise["sd"] if noise and noise["kind"] == "seeds" else None
    for trial in sorted(trials, key=lambda t: t["record"]["index"]):
        best_at = answer["budget"] if answer and trial["experiment_id"] == answer["best_experiment_id"] else None
        row = {**trial["record"], "notes": notes(trial["record"], best_at, trial["could_be_best"], seed_sd,
                                                  trial["verdict"], answer["budget"] if answer else None)}
        excel_row = sheet.max_row + 1
        _row(sheet, [c.value(row) for c in EXPERIMENT_COLUMNS], columns, excel_row)
        if trial["folder_link"]:
            cell = sheet.cell(row=excel_row, column=folder_column)
            cell.hyperlink, cell.font = trial["folder_link"], LINK_FONT
        sheet.cell(row=excel_row, column=len(columns)).alignment = Alignment(wrap_text=True, vertical="top")
    if sheet.max_row > 1:
        sheet.auto_filter.ref = sheet.dimensions
    fit_to_page_width(sheet)
    sheet.print_title_rows = "1:1"


def _prose(sheet, title: str, lines: list[str]) -> None:
    """A heading, then one line of text a row, wrapped across the sheet's first three columns."""
    sheet.append([title])
    sheet.cell(row=sheet.max_row, column=1).font = Font(bold=True, size=12)
    for line in lines:
        sheet.append([line])
        row = sheet.max_row
        sheet.merge_cells(start_row=row, start_column=1, end_row=row, end_column=3)
        sheet.cell(row=row, column=1).alignment = Alignment(wrap_text=True, vertical="top")
        sheet.row_dimensions[row].height = 15 * (1 + len(line) // 120)  # Excel does not grow a merged row itself
    sheet.append([])


def summary_sheet(book: Workbook, answer: list[str], findings: list[str], facts: list[list], tables: list[Table]) -> None:
    """The answer first (the page's lines), then what the data says, the study's facts and the tables: each on its
    own sheet (its key), linked from here with its note."""
    sheet = book.active
    sheet.title = "Summary"
    for column, width in zip("ABC", (34, 40, 70)):
        sheet.column_dimensions[column].width = width
    _prose(sheet, "The answer", answer)
    _prose(sheet, "What the data says", findings)
    for key, value in facts:
        sheet.append([key, value])
        sheet.cell(row=sheet.max_row, column=1).font = Font(bold=True)
    shown = [table for table in tables if table.rows]
    if shown:
        sheet.append([])
        sheet.append(["Tables (one sheet each, also a named range of the same name)"])
        sheet.cell(row=sheet.max_row, column=1).font = Font(bold=True, size=12)
    for table in shown:
        sheet.append([table.title, table.key, table.note])
        cell = sheet.cell(row=sheet.max_row, column=2)
        cell.hyperlink, cell.font = Hyperlink(ref=cell.coordinate, location=f"'{table.key}'!A1"), LINK_FONT
        for column in (1, 3):
            sheet.cell(row=sheet.max_row, column=column).alignment = Alignment(wrap_text=True, vertical="top")
        table_sheet(book, table)
    for column in (1, 2):
        for cell in sheet[get_column_letter(column)]:
            cell.alignment = Alignment(wrap_text=True, vertical="top", horizontal=cell.alignment.horizontal)
    fit_to_page_width(sheet)


def fit_to_page_width(sheet) -> None:
    """Printed, a sheet is as wide as one landscape page and as long as it needs; the header row repeats."""
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight = 1, 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True


def table_sheet(book: Workbook, table: Table) -> None:
    """One table as pandas and Excel's filters read it: the header in row 1, a row per record, nothing else; the
    range is named after the table's key."""
    sheet = book.create_sheet(table.key)
    _header(sheet, [c.header for c in table.columns], [max(12, min(40, len(c.header) + 2)) for c in table.columns], 1)
    sheet.freeze_panes = "A2"
    for values in table.rows:
        _row(sheet, values, table.columns, sheet.max_row + 1)
    sheet.auto_filter.ref = sheet.dimensions
    fit_to_page_width(sheet)
    sheet.print_title_rows = "1:1"
    last = f"${get_column_letter(len(table.columns))}${sheet.max_row}"
    book.defined_names[table.key] = DefinedName(table.key, attr_text=f"'{table.key}'!$A$1:{last}")


def write_workbook(target: Path, summary: dict, answer: list[str], facts: list[list], tables: list[Table]) -> Path:
    """Rendered from summary.json alone (``summary``, and what the page shows of it: the answer's lines, the facts,
    the tables), so the workbook says what the page says."""
    book = Workbook()
    summary_sheet(book, answer, summary["findings"], facts, tables)
    by_subset: dict[str, list[dict]] = {}
    for trial in summary["trials"]:
        by_subset.setdefault(trial["subset"], []).append(trial)
    for subset, trials in by_subset.items():
        subset_sheet(book, subset, trials, summary)
    with atomic_path(target) as tmp:
        book.save(tmp)
    return target
