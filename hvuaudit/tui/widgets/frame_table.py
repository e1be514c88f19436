"""A DataTable that shows a polars DataFrame: typed formatting, stable row keys, kept cursor."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import polars as pl
from rich.text import Text
from textual.widgets import DataTable


def format_cell(value: Any, *, digits: int = 3) -> str:
    """How a value reads in a table: thousands separators, a few significant digits, '–' for none."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value != 0 and (abs(value) < 10 ** -digits or abs(value) >= 10**6):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}f}"
    if isinstance(value, list):
        return "|".join(map(str, value))
    return str(value)


class FrameTable(DataTable):
    """Shows a polars DataFrame; the row key is the value of ``key_column`` (or the row index)."""

    DEFAULT_CSS = """
    FrameTable { height: 1fr; }
    """

    def __init__(self, *, key_column: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)
        self.key_column = key_column
        self.frame: pl.DataFrame = pl.DataFrame()

    def show_frame(
        self,
        frame: pl.DataFrame,
        *,
        labels: Mapping[str, str] | None = None,
        digits: Mapping[str, int] | None = None,
        styles: Mapping[str, Mapping[str, str]] | None = None,
        keep_cursor: bool = True,
    ) -> None:
        """Replace the rows with ``frame``'s (columns labelled by ``labels``).

        ``styles`` maps a column to {cell text: rich style}, for verdict-like columns.
        """
        previous_key = self.current_key() if keep_cursor else None
        self.frame = frame
        labels = labels or {}
        digits = digits or {}
        styles = styles or {}
        self.clear(columns=True)
        numeric = {name for name, dtype in frame.schema.items() if dtype.is_numeric()}
        for name in frame.columns:
            label = labels.get(name, name)
            self.add_column(Text(label, justify="right") if name in numeric else label, key=name)
        rows = []
        for index, row in enumerate(frame.iter_rows(named=True)):
            cells = []
            for name, value in row.items():
                text = format_cell(value, digits=digits.get(name, 3))
                style = styles.get(name, {}).get(text, "")
                cells.append(Text(text, justify="right" if name in numeric else "left", style=style))
            key = str(row[self.key_column]) if self.key_column else str(index)
            rows.append((cells, key))
        for cells, key in rows:
            self.add_row(*cells, key=key)
        if previous_key is not None and previous_key in {k for _, k in rows}:
            self.move_cursor(row=self.get_row_index(previous_key), scroll=True)

    def current_key(self) -> str | None:
        """The key of the row under the cursor, or None when the table is empty."""
        if self.row_count == 0:
            return None
        try:
            key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except Exception:  # cursor out of range while rows are being replaced
            return None
        return key.value

    def current_row(self) -> dict[str, Any] | None:
        """The frame row under the cursor, as a dict."""
        if self.row_count == 0 or self.frame.is_empty():
            return None
        row = self.cursor_row
        return self.frame.row(row, named=True) if 0 <= row < self.frame.height else None
