"""Report tables whose columns declare what their numbers are, so the page and the spreadsheet format each column
by its unit, never by guessing from a value (a positive difference is not a percentage because it is below 1)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

# unit -> (Excel number format, how the page writes a number of that unit)
UNITS = {
    "text": (None, str),
    "int": ("0", lambda v: f"{int(v)}"),
    "percent": ("0.0%", lambda v: f"{100 * v:.1f}%"),  # a fraction shown as a percentage
    "points": ('+0.0" pts";-0.0" pts";0.0" pts"', lambda v: f"{100 * v:+.1f} pts"),  # a difference of fractions
    "lr": ("0.0#####", lambda v: f"{v:.3g}"),  # 0.0133, 0.0001: a learning rate as researchers write it
    "ratio": ("0.00", lambda v: f"{v:.2f}"),
    "seconds": ("0.0", lambda v: f"{v:.1f} s"),
}


@dataclass(frozen=True)
class Column:
    header: str
    unit: str = "text"

    def __post_init__(self):
        if self.unit not in UNITS:
            raise ValueError(f"column {self.header!r}: unknown unit {self.unit!r}; one of {', '.join(UNITS)}")

    @property
    def key(self) -> str:
        """The column's name for programs (report/summary.json): its header in lower snake case."""
        return slug(self.header)

    @property
    def number_format(self) -> str | None:
        return UNITS[self.unit][0]

    def text(self, value) -> str:
        """How the page shows ``value``: empty when absent, formatted by the column's unit when a number."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if isinstance(value, (int, float)) and not isinstance(value, bool) and self.unit != "text":
            return UNITS[self.unit][1](value)
        return str(value)


@dataclass
class Table:
    title: str
    columns: list[Column]
    rows: list[list] = field(default_factory=list)
    note: str = ""  # a sentence under the title: what the numbers are and where they come from
    key: str = ""  # its name for programs: the key in report/summary.json, its sheet and named range in the workbook

    def __post_init__(self):
        self.key = self.key or slug(self.title)[:31]

    def add(self, *values) -> None:
        if len(values) != len(self.columns):
            raise ValueError(f"table {self.title!r}: {len(values)} values for {len(self.columns)} columns")
        self.rows.append([plain(v) for v in values])

    def to_json(self) -> dict:
        """As report/summary.json holds it: each row an object keyed by the columns' keys, each column's unit said."""
        return {"title": self.title, "note": self.note,
                "columns": [{"key": c.key, "header": c.header, "unit": c.unit} for c in self.columns],
                "rows": [{c.key: v for c, v in zip(self.columns, row)} for row in self.rows]}

    @classmethod
    def from_json(cls, key: str, data: dict) -> Table:
        columns = [Column(c["header"], c["unit"]) for c in data["columns"]]
        return cls(data["title"], columns, [[row[c.key] for c in columns] for row in data["rows"]], data["note"], key)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def plain(value):
    """numpy scalars as Python values; NaN as None (Excel has no NaN)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
