"""Reading the store: summary statistics, co-occurrence of one action, clips of a pair.

Sits between the store and its two faces (CLI, TUI): every function takes an
open connection and returns polars DataFrames built from the bundled queries
in ``queries/``, so what a user sees is exactly what ``hvuaudit sql NAME`` gives.
"""

from __future__ import annotations

import duckdb
import polars as pl

from hvuaudit.categories import DEFAULT_CLIPS
from hvuaudit.nca import check_clips
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


def action_cooccurrence(
    con: duckdb.DuckDBPyConnection, action: str, *, clips: str = DEFAULT_CLIPS
) -> pl.DataFrame:
    """Every tag that co-occurs with ``action`` (``queries/action_cooccurrence.sql``).

    With ``clips="labelled"``, ``n_action`` and ``p_tag_given_action`` count only the action's
    clips that carry a tag of the row's category, as :func:`hvuaudit.nca.compute_nca` does in that
    mode (so n11 = n_action - n_both matches it); ``lift`` stays the store-wide one.
    """
    frame = run_query(con, "action_cooccurrence", action=action)
    if check_clips(clips) == "all" or frame.height == 0:
        return frame
    counted = run_query(con, "internal/action_labelled_counts", action=action)
    return (
        frame.drop("n_action")
        .join(counted, on="category", how="left")
        .with_columns(p_tag_given_action=(pl.col("n_both") / pl.col("n_action")).round(4))
        .select(frame.columns)
    )


def actions_of_tag(con: duckdb.DuckDBPyConnection, tag: str) -> pl.DataFrame:
    return run_query(con, "actions_of_tag", tag=tag)


def clips_of_pair(con: duckdb.DuckDBPyConnection, action: str, tag: str) -> pl.DataFrame:
    return run_query(con, "clips_of_pair", action=action, tag=tag)


def list_tags(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every tag seen in a clip: tag, category, n_clips (queries/tags.sql)."""
    return run_query(con, "tags")


def list_actions(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return run_query(con, "actions")
