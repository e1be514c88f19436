"""Reading the store: summary statistics, co-occurrence of one action, clips of a pair.

Sits between the store and its two faces (CLI, TUI): every function takes an
open connection and returns polars DataFrames built from the bundled queries
in ``queries/``, so what a user sees is exactly what ``hvuaudit sql NAME`` gives.
"""

from __future__ import annotations

import duckdb
import polars as pl

from hvuaudit.store import require_clips, run_query


def store_stats(con: duckdb.DuckDBPyConnection, *, tags_per_clip: bool = True) -> dict[str, pl.DataFrame]:
    """The tables behind ``hvuaudit stats`` and the TUI overview.

    ``tags_per_clip=False`` leaves out the slowest one (a grouped pass over every clip-tag),
    which the TUI shows once it is ready.
    """
    require_clips(con)
    tables = {"subsets": run_query(con, "stats_subsets"), "categories": run_query(con, "stats_categories")}
    if tags_per_clip:
        tables["tags_per_clip"] = run_query(con, "stats_tags_per_clip")
    return tables


def action_cooccurrence(con: duckdb.DuckDBPyConnection, action: str) -> pl.DataFrame:
    return run_query(con, "action_cooccurrence", action=action)


def actions_of_tag(con: duckdb.DuckDBPyConnection, tag: str) -> pl.DataFrame:
    return run_query(con, "actions_of_tag", tag=tag)


def clips_of_pair(con: duckdb.DuckDBPyConnection, action: str, tag: str) -> pl.DataFrame:
    return run_query(con, "clips_of_pair", action=action, tag=tag)


def list_actions(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return run_query(con, "actions")
