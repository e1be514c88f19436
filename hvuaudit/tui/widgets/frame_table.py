"""A DataTable that shows a polars DataFrame: typed formatting, stable row keys, kept cursor; every table
sorts by any column (a header click, or ``s``/``S``), filters its rows (``/``) and saves what it shows
(``e``, with the CLI's writer)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import BindingType
from textual.widgets import DataTable

from hvuaudit.tui import bindings


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


EXPORT_FORMATS = {".csv": "csv", ".json": "json", ".parquet": "parquet"}


def export_problem(path: str) -> str | None:
    """Why a path cannot take a table export, or None."""
    target = Path(path.strip()).expanduser()
    if not path.strip():
        return "give a file name"
    if target.suffix.lower() not in EXPORT_FORMATS:
        return f"end the name with {', '.join(EXPORT_FORMATS)}"
    if target.exists():
        return f"{target} exists: choose another name (nothing is replaced)"
    if not target.parent.is_dir():
        return f"{target.parent} is not a folder"
    return None


def save_shown(frame: pl.DataFrame, columns: list[str], target: Path) -> None:
    """Write the rows and columns a table shows, with the CLI's writer; never over an existing file."""
    from hvuaudit.errors import ConflictError
    from hvuaudit.output import write_table
    from hvucontracts.files import refuse_overwriting

    if target.exists():
        raise ConflictError(f"{target} exists; nothing was replaced")
    refuse_overwriting(target, [])
    write_table(frame.select(columns), EXPORT_FORMATS[target.suffix.lower()], target)


MIN_TEXT_WIDTH = 10  # a capped text column (a name) shrinks to this before any column is dropped
FIT_MARGIN = 2  # room for the vertical scrollbar that rows may bring


def fit_columns(
    names: list[str],
    natural: Mapping[str, int],
    elastic: Mapping[str, int],
    drop: tuple[str, ...],
    available: int,
    padding: int,
) -> dict[str, int]:
    """The columns that fit in ``available`` cells and their widths, in the order of ``names``.

    ``natural``: each column's widest cell (label included). ``elastic``: the text columns that may be
    cut with "…", and their cap. When the table is too wide, elastic columns shrink first (never under
    :data:`MIN_TEXT_WIDTH`), then the columns of ``drop`` go, first one first, and what they free goes
    back to the names. Every other column keeps its full width: a number is never cut. ``padding`` cells
    are added to each column.
    """
    widths = {name: min(natural[name], elastic.get(name, natural[name])) for name in names}

    def total() -> int:
        return sum(width + padding for width in widths.values())

    excess = total() - available
    while excess > 0:  # one cell at a time off the widest name, so that the names stay alike
        shrinkable = [n for n in elastic if n in widths and widths[n] > MIN_TEXT_WIDTH]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda n: widths[n])
        widths[widest] -= 1
        excess -= 1
    for name in drop:
        if total() <= available:
            break
        widths.pop(name, None)
    # what the dropped columns freed goes back to the names, narrowest first, up to their caps
    full = {name: min(natural[name], elastic[name]) for name in elastic if name in widths}
    spare = available - total()
    while spare > 0:
        growable = [n for n in full if widths[n] < full[n]]
        if not growable:
            break
        narrowest = min(growable, key=lambda n: widths[n])
        widths[narrowest] += 1
        spare -= 1
    return widths


@lru_cache(maxsize=64)
def _style(name: str) -> Style | None:
    return Style.parse(name) if name else None


def rows_containing(
    frame: pl.DataFrame, text: str, columns: list[str], digits: Mapping[str, int] | None = None
) -> pl.Series:
    """The mask of the rows with a cell, among ``columns``, whose shown text contains ``text`` (any case)."""
    needle = text.lower()
    digits = digits or {}
    mask = pl.Series([False] * frame.height)
    for name in columns:
        shown = [format_cell(value, digits=digits.get(name, 3)).lower() for value in frame[name].to_list()]
        mask = mask | pl.Series([needle in cell for cell in shown])
    return mask


class FrameTable(DataTable):
    """Shows a polars DataFrame; the row key is the value of ``key_column`` (or the row index).

    :attr:`frame` is what the table shows, sorted and filtered as the user asked;
    :attr:`source` what the screen gave it.
    """

    DEFAULT_CSS = """
    FrameTable { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [*bindings.TABLE]

    def __init__(self, *, key_column: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)
        self.key_column = key_column
        self.frame: pl.DataFrame = pl.DataFrame()
        self.source: pl.DataFrame = pl.DataFrame()
        self.sort_by: tuple[str, bool] | None = None  # (column, descending)
        self.filter_text = ""
        self._options: dict[str, Any] = {}
        self._header: list[tuple[str, str, bool, int]] = []
        self._keys: list[str] = []
        self._cells: list[list[Cell]] = []

    # ------------------------------------------------------------------ sort, filter, export
    def _shown_columns(self) -> list[str]:
        return [name for name in self.source.columns if name not in self._options.get("hide", ())]

    def _arranged(self) -> pl.DataFrame:
        frame = self.source
        if self.filter_text:
            digits = self._options.get("digits")
            frame = frame.filter(rows_containing(frame, self.filter_text, self._shown_columns(), digits))
        if self.sort_by is not None and self.sort_by[0] in frame.columns:
            column, descending = self.sort_by
            if frame.schema[column].is_nested():  # a list of tags: in the order of its text
                key = pl.Series("_sort", [format_cell(value) for value in frame[column].to_list()])
                frame = frame.with_columns(key).sort("_sort", descending=descending, maintain_order=True)
                return frame.drop("_sort")
            frame = frame.sort(column, descending=descending, nulls_last=True, maintain_order=True)
        return frame

    def set_sort(self, column: str, descending: bool | None = None) -> None:
        """Sort by ``column`` (a click on its header again turns the order round)."""
        if descending is None:
            same = self.sort_by is not None and self.sort_by[0] == column
            numeric = column in self.source.columns and self.source.schema[column].is_numeric()
            # numbers first from the largest, text from A; the same column again: the other way round
            descending = (not self.sort_by[1]) if same and self.sort_by else numeric
        self.sort_by = (column, descending)
        self._refresh_arranged()

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self._refresh_arranged()

    def _refresh_arranged(self) -> None:
        self._display(self._arranged(), keep_cursor=True)

    def arrangement(self) -> str:
        """What the user did to the rows, in words ('' when nothing), for the notifications."""
        parts = []
        if self.sort_by is not None:
            parts.append(f"sorted by {self.sort_by[0]} {'↓' if self.sort_by[1] else '↑'}")
        if self.filter_text:
            parts.append(f"rows with {self.filter_text!r}: {self.frame.height} of {self.source.height}")
            on_screen = {str(key.value) for key in self.columns}
            hidden = [name for name in self._shown_columns() if name not in on_screen]
            if hidden:  # a match may sit in a column hidden to fit the window
                parts.append(f"columns hidden to fit are searched too: {', '.join(hidden)}")
        return " · ".join(parts)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        if event.column_key.value is not None:
            self.set_sort(str(event.column_key.value))

    def action_sort_next(self) -> None:
        columns = [str(key.value) for key in self.columns]  # those on screen: not those hidden to fit
        if not columns:
            return
        current = columns.index(self.sort_by[0]) if self.sort_by and self.sort_by[0] in columns else -1
        self.set_sort(columns[(current + 1) % len(columns)])
        self.app.notify(self.arrangement(), timeout=2)

    def action_sort_reverse(self) -> None:
        if self.sort_by is not None:
            self.set_sort(self.sort_by[0], not self.sort_by[1])

    def action_filter(self) -> None:
        from hvuaudit.tui.screens.modals import PromptModal

        def apply(text: str | None) -> None:
            if text is not None:
                self.set_filter(text)
                self.app.notify(self.arrangement() or "all rows", timeout=3)

        self.app.push_screen(
            PromptModal(
                "Filter the rows",
                value=self.filter_text,
                placeholder="text that a cell contains (empty: every row)",
                note="Any column, any case.",
                validate=lambda text: None,  # an empty text is allowed: it shows every row again
            ),
            apply,
        )

    def action_export(self) -> None:
        from hvuaudit.tui.screens.modals import PromptModal

        self.app.push_screen(
            PromptModal(
                "Save the table as shown",
                placeholder="table.csv (or .json, .parquet)",
                note=f"{self.frame.height} rows, {self.arrangement() or 'as the screen gave them'}.",
                validate=export_problem,
            ),
            self._export_to,
        )

    def _export_to(self, path: str | None) -> None:
        if not path:
            return
        from hvuaudit.errors import HvuauditError

        target = Path(path.strip()).expanduser().resolve()
        try:
            save_shown(self.frame, self._shown_columns(), target)
        except (HvuauditError, OSError) as exc:
            self.app.notify(str(exc), severity="error", timeout=8)
            return
        except Exception as exc:  # a column the writer cannot hold: said, and the app goes on
            self.app.notify(f"could not save {target}: {exc}", severity="error", timeout=8)
            return
        self.app.notify(f"wrote {self.frame.height} row(s) to {target}", timeout=4)

    def _holds_other_rows(self, frame: pl.DataFrame) -> bool:
        """Whether ``frame`` holds other rows than the table's source (not the same values updated)."""
        column = self.key_column
        if column is None or column not in frame.columns or column not in self.source.columns:
            return True
        return set(frame[column].cast(pl.String).to_list()) != set(
            self.source[column].cast(pl.String).to_list()
        )

    def show_frame(
        self,
        frame: pl.DataFrame,
        *,
        labels: Mapping[str, str] | None = None,
        digits: Mapping[str, int] | None = None,
        styles: Mapping[str, Mapping[str, str]] | None = None,
        hide: tuple[str, ...] = (),
        widths: Mapping[str, int] | None = None,
        drop: tuple[str, ...] = (),
        keep_cursor: bool = True,
    ) -> None:
        """Replace the rows with ``frame``'s (columns labelled by ``labels``).

        ``styles`` maps a column to {cell text: rich style}, for verdict-like columns;
        ``hide`` names columns kept in :attr:`frame` (for keys and details) but not shown;
        ``widths`` caps text columns (longer cells end in "…"); when the table is narrower than its
        columns, these shrink first and then the columns of ``drop`` are hidden, first one first
        (:func:`fit_columns`; the border title names them, ``e`` still saves them). Numbers are never cut.
        When only values changed (same columns, same row keys in the same order, as after
        a new NCA threshold) only the changed cells are updated.
        """
        if self.filter_text and self.key_column is not None and self._holds_other_rows(frame):
            # other rows (another pair's clips): a filter typed for the old ones would hide them unseen
            self.filter_text = ""
            self.app.notify("the table holds other rows now: its filter is off", timeout=3)
        elif self.filter_text and self.key_column is None:
            self.filter_text = ""  # rows without keys cannot be told apart: a refill is new rows
        self.source = frame
        self._options = {
            "labels": labels,
            "digits": digits,
            "styles": styles,
            "hide": hide,
            "widths": widths,
            "drop": drop,
        }
        if self.sort_by is not None and self.sort_by[0] not in frame.columns:
            self.sort_by = None  # another table in this place: its own order
        self._display(self._arranged(), keep_cursor=keep_cursor)

    def _display(self, frame: pl.DataFrame, *, keep_cursor: bool) -> None:
        options = self._options
        labels = options.get("labels") or {}
        digits = options.get("digits") or {}
        styles = options.get("styles") or {}
        hide = options.get("hide") or ()
        widths = options.get("widths")
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
        natural = {
            name: max([cell_len(labels.get(name, name)), *(row[index].width for row in cells)])
            for index, name in enumerate(shown)
        }
        fitted = self._fit(shown, natural, widths or {}, options.get("drop") or ())
        visible = [index for index, name in enumerate(shown) if name in fitted]
        if len(visible) < len(shown):
            cells = [[row[index] for index in visible] for row in cells]
        hidden = [labels.get(name, name) for name in shown if name not in fitted]
        if options.get("drop"):  # a table that may hide columns says which in its title
            self.border_title = f"hidden to fit (e saves them): {', '.join(hidden)}" if hidden else None
        shown = [shown[index] for index in visible]
        header = [(name, labels.get(name, name), name in numeric, fitted[name]) for name in shown]
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
        for name, label, right, width in header:
            self.add_column(Text(label, justify="right") if right else label, key=name, width=width)
        for key, row in zip(keys, cells, strict=True):
            self.add_row(*row, key=key)
        self._header, self._keys, self._cells = header, keys, cells
        if previous_key is not None and previous_key in self.rows:
            self.move_cursor(row=self.get_row_index(previous_key), scroll=True)

    def _fit(
        self, names: list[str], natural: dict[str, int], elastic: Mapping[str, int], drop: tuple[str, ...]
    ) -> dict[str, int]:
        available = self.scrollable_content_region.width
        if available <= 0:  # not laid out yet: on_resize fits it
            available = 10**6
        return fit_columns(names, natural, elastic, drop, available - FIT_MARGIN, 2 * self.cell_padding)

    def on_resize(self) -> None:
        """A new width: the columns are fitted again (narrower hides columns, wider shows them)."""
        if self._options and self._header:
            self._display(self.frame, keep_cursor=True)

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
