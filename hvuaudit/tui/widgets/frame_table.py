"""A DataTable that shows a polars DataFrame: typed formatting, stable row keys, kept cursor."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import polars as pl
from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
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
        if value != 0 and (abs(value) < 10**-digits or abs(value) >= 10**6):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}f}"
    if isinstance(value, list):
        return "|".join(map(str, value))
    return str(value)


class Cell:
    """One table cell: plain text with an optional style, measured once.

    DataTable measures every cell of every new row; a rich ``Text`` takes tens of
    microseconds to measure, which made an 800-row table take ~0.3 s to appear.
    This renderable knows its width, so a refill costs a few milliseconds.
    """

    __slots__ = ("text", "width", "right", "style")

    def __init__(self, text: str, *, right: bool = False, style: str = "") -> None:
        self.text = text
        self.width = cell_len(text)
        self.right = right
        self.style = style

    def __str__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cell) and (self.text, self.right, self.style) == (
            other.text,
            other.right,
            other.style,
        )

    def __hash__(self) -> int:
        return hash((self.text, self.right, self.style))

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        text = self.text if self.width <= width else set_cell_size(self.text, max(width - 1, 0)) + "…"
        padding = " " * max(width - cell_len(text), 0)
        yield Segment(padding + text if self.right else text + padding, _style(self.style))


@lru_cache(maxsize=64)
def _style(name: str) -> Style | None:
    return Style.parse(name) if name else None


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
        self._header: list[tuple[str, str, bool]] = []
        self._keys: list[str] = []
        self._cells: list[list[Cell]] = []

    def show_frame(
        self,
        frame: pl.DataFrame,
        *,
        labels: Mapping[str, str] | None = None,
        digits: Mapping[str, int] | None = None,
        styles: Mapping[str, Mapping[str, str]] | None = None,
        hide: tuple[str, ...] = (),
        widths: Mapping[str, int] | None = None,
        keep_cursor: bool = True,
    ) -> None:
        """Replace the rows with ``frame``'s (columns labelled by ``labels``).

        ``styles`` maps a column to {cell text: rich style}, for verdict-like columns;
        ``hide`` names columns kept in :attr:`frame` (for keys and details) but not shown;
        ``widths`` caps columns (longer cells end in "…").
        When only values changed (same columns, same row keys in the same order, as after
        a new NCA threshold) only the changed cells are updated.
        """
        labels = labels or {}
        digits = digits or {}
        styles = styles or {}
        numeric = {name for name, dtype in frame.schema.items() if dtype.is_numeric()}
        shown = [name for name in frame.columns if name not in hide]
        keys: list[str] = []
        cells: list[list[Cell]] = []
        key_column = frame[self.key_column].cast(pl.String).to_list() if self.key_column else None
        columns = [frame[name].to_list() for name in shown]
        for index in range(frame.height):
            keys.append(key_column[index] if key_column is not None else str(index))
            row = []
            for name, values in zip(shown, columns, strict=True):
                text = format_cell(values[index], digits=digits.get(name, 3))
                row.append(Cell(text, right=name in numeric, style=styles.get(name, {}).get(text, "")))
            cells.append(row)
        widths = widths or {}
        header = [(name, labels.get(name, name), name in numeric) for name in shown]
        self.frame = frame
        if header == self._header and keys == self._keys:
            for key, old, new in zip(keys, self._cells, cells, strict=True):
                for name, before, after in zip(shown, old, new, strict=True):
                    if before != after:
                        self.update_cell(key, name, after)
            self._cells = cells
            return
        previous_key = self.current_key() if keep_cursor else None
        self.clear(columns=True)
        for index, (name, label, right) in enumerate(header):
            cap = widths.get(name)
            longest = max([cell_len(label), *(row[index].width for row in cells)])
            width = min(cap, longest) if cap else None
            self.add_column(Text(label, justify="right") if right else label, key=name, width=width)
        for key, row in zip(keys, cells, strict=True):
            self.add_row(*row, key=key)
        self._header, self._keys, self._cells = header, keys, cells
        if previous_key is not None and previous_key in self.rows:
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
