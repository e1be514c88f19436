"""Printing tables: the one place that turns a polars DataFrame into table/csv/json/parquet.

Used by every CLI command with ``--format``. Convention: ``json`` is a JSON
array of row objects (keys = column names), or for a command with several tables one object of
such arrays, keyed by table; ``parquet`` needs ``--output``.
Data goes to stdout or ``--output``; nothing else is written there.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import click
import polars as pl
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hvuaudit.errors import InputError
from hvucontracts.files import write_atomically

FORMATS = ("table", "csv", "json", "parquet")


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def rows_as_json(frame: pl.DataFrame) -> str:
    rows = [{k: _clean(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]
    return json.dumps(rows, indent=2, default=str, ensure_ascii=False)


def render_table(frame: pl.DataFrame, title: str | None = None, *, float_digits: int = 4) -> Table:
    """A rich Table of ``frame``. Every cell, header and title is a plain ``Text``: a tag named
    ``[bold]x[/bold]`` or ``[/a]`` comes from data and is printed as it is, never read as markup."""
    table = Table(title=Text(title) if title else None, show_lines=False, header_style="bold")
    for name, dtype in frame.schema.items():
        table.add_column(Text(name), justify="right" if dtype.is_numeric() else "left", overflow="fold")
    for row in frame.iter_rows():
        table.add_row(*[Text(format_cell(v, float_digits)) for v in row])
    return table


def format_cell(value: Any, float_digits: int) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{float_digits}g}"
    if isinstance(value, list):
        return "|".join(map(str, value))
    return str(value)


def _flat(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame as CSV can hold it: lists joined with |, bytes as hex."""
    return frame.with_columns(
        [
            pl.col(n).list.eval(pl.element().cast(pl.String)).list.join("|")
            for n, t in frame.schema.items()
            if t == pl.List
        ]
        + [pl.col(n).bin.encode("hex") for n, t in frame.schema.items() if t == pl.Binary]  # CSV has no bytes
    )


def write_table(frame: pl.DataFrame, fmt: str, output: Path, *, title: str | None = None) -> None:
    """Save ``frame`` to ``output`` in ``fmt`` (csv, json, parquet or table), atomically: the one writer of
    every command's ``--output`` and of the TUI's export (``e``)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format '{fmt}'", hint=f"use one of: {', '.join(FORMATS)}")
    writers = {
        "csv": lambda p: _flat(frame).write_csv(p),
        "json": lambda p: p.write_text(rows_as_json(frame) + "\n", encoding="utf-8"),
        "parquet": lambda p: frame.write_parquet(p),
        "table": lambda p: p.write_text(_table_text(frame, title), encoding="utf-8"),
    }
    write_atomically(Path(output), writers[fmt])


def emit_table(
    frame: pl.DataFrame, fmt: str, output: Path | None = None, *, title: str | None = None
) -> None:
    """Print or save ``frame`` in ``fmt``."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format '{fmt}'", hint=f"use one of: {', '.join(FORMATS)}")
    if fmt == "parquet" and output is None:
        raise InputError("--format parquet needs --output PATH (parquet is binary)")
    if output is not None:
        write_table(frame, fmt, output, title=title)
        click.echo(f"wrote {frame.height} row(s) to {output}", err=True)
        return
    if fmt == "csv":
        sys.stdout.write(_flat(frame).write_csv())
    elif fmt == "json":
        click.echo(rows_as_json(frame))
    else:
        Console(soft_wrap=False).print(render_table(frame, title))


def emit_tables(tables: dict[str, pl.DataFrame], fmt: str, output: Path | None = None) -> None:
    """Several named tables: JSON is one object {name: [rows]}; other formats print (or save) each in turn.

    With ``--output out.csv`` the tables go to ``out_<name>.csv``. CSV on stdout is refused: tables
    of different columns in one stream would not be one CSV file.
    """
    if fmt == "csv" and output is None and len(tables) > 1:
        names = ", ".join(f"out_{name}.csv" for name in tables)
        raise InputError(
            f"--format csv writes one file per table ({len(tables)} here)",
            hint=f"add --output out.csv to write {names}, or use --format json",
        )
    if fmt == "json":
        body = (
            "{"
            + ", ".join(f"{json.dumps(name)}: {rows_as_json(frame)}" for name, frame in tables.items())
            + "}"
        )
        if output is None:
            click.echo(body)
        else:
            write_atomically(Path(output), lambda tmp: tmp.write_text(body + "\n", encoding="utf-8"))
        return
    for name, frame in tables.items():
        target = (
            Path(output).with_name(f"{Path(output).stem}_{name}{Path(output).suffix}") if output else None
        )
        emit_table(frame, fmt, target, title=name.replace("_", " "))


def _table_text(frame: pl.DataFrame, title: str | None) -> str:
    console = Console(record=True, width=200, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(render_table(frame, title))
    return console.export_text()


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str, ensure_ascii=False))
