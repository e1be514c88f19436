"""The DuckDB store: opening it, its schema, and running the named SQL in ``queries/``.

Every other core module reaches the database through this one. It owns:

* where the store is (``--db``, else ``$HVUAUDIT_DB``, else ``./hvu.duckdb``);
* opening it read-write (ingest, annotations, split saving) or read-only
  (everything else; ``hvuaudit sql`` also turns off file access so that
  ``COPY ... TO`` and ``ATTACH`` are refused);
* the schema: tables created idempotently from ``queries/internal/schema.sql``, and
  the views and macros of ``queries/internal/views.sql``, which are code, not data
  (see :func:`has_stale_views`);
* loading ``.sql`` files by name and running them with ``$name`` parameters.

It never formats values into SQL strings, and never imports torch or textual.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb
import polars as pl

from hvuaudit.categories import SIDE_CATEGORIES
from hvuaudit.errors import InputError, StoreError, SystemRefusal
from hvucontracts.errors import text_says_disk_full
from hvucontracts.files import is_duckdb_file
from hvucontracts.process import commit_starting

DEFAULT_DB = "hvu.duckdb"


def queries_dir() -> Path:
    """The folder of bundled ``.sql`` files (installed copy first, then the checkout)."""
    installed = Path(__file__).resolve().parent / "_queries"
    return installed if installed.is_dir() else Path(__file__).resolve().parent.parent / "queries"


def default_db_path() -> Path:
    return Path(os.environ.get("HVUAUDIT_DB") or DEFAULT_DB)


@cache
def load_sql(name: str) -> str:
    """The text of ``queries/<name>.sql`` (``name`` may contain ``internal/``)."""
    path = queries_dir() / f"{name}.sql"
    if not path.is_file():
        raise InputError(f"no bundled query named '{name}'", hint="list them with: hvuaudit queries")
    return path.read_text(encoding="utf-8")


def bundled_queries() -> list[tuple[str, str, str]]:
    """(name, parameters, one-line description) of every user-facing query in ``queries/``."""
    found = []
    for path in sorted(queries_dir().glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        first = text.lstrip().splitlines()[0] if text.strip() else ""
        description = first[2:].strip() if first.startswith("--") else ""
        found.append((path.stem, " ".join("$" + p for p in sql_parameters(text)), description))
    return found


def sql_parameters(sql: str) -> list[str]:
    """The ``$name`` placeholders a query uses, in order of first appearance."""
    without_strings = re.sub(r"'(?:[^']|'')*'", "''", re.sub(r"--[^\n]*", "", sql))
    return list(dict.fromkeys(re.findall(r"\$([A-Za-z_]\w*)", without_strings)))


def open_store(
    path: Path | str | None = None, *, read_only: bool = True, sandboxed: bool = False, create: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open the store, which must exist unless ``create`` (only ingest creates one).

    An existing file must start like a DuckDB database: DuckDB itself would open any other
    file as an empty in-memory database, and nothing written to it would be saved.
    ``sandboxed`` also disables file-system access from SQL (for user-typed queries).
    """
    db = Path(path) if path is not None else default_db_path()
    if not db.exists() and not (create and not read_only):
        raise StoreError(
            f"store {db} does not exist",
            hint="create it with: hvuaudit ingest HVU_Val_V1.0.csv --categories "
            f"HVU_Tags_Categories_V1.0.csv --db {db}",
        )
    if db.is_dir():
        raise StoreError(f"{db} is a directory, not a DuckDB file", hint="pass a file path with --db")
    if db.exists() and not is_duckdb_file(db):
        raise StoreError(
            f"cannot open store {db}: it is not a DuckDB file (its first bytes are not DuckDB's); nothing "
            "was written to it",
            hint="--db names the store made by hvuaudit ingest (e.g. hvu.duckdb); check the path",
        )
    try:
        con = duckdb.connect(str(db), read_only=read_only)
    except duckdb.Error as exc:
        text = str(exc)
        if "newer version of duckdb" in text.lower() or "version number" in text.lower():
            writer = store_writer_version(db)
            raise StoreError(
                f"cannot open store {db}: it was written by DuckDB {writer or 'of a newer storage format'}, "
                f"and the installed DuckDB {duckdb.__version__} cannot read its storage format",
                hint="upgrade DuckDB where you run hvuaudit: pip install --upgrade duckdb",
            ) from exc
        if "could not set lock" in text.lower() or "conflicting lock" in text.lower():
            holder = re.search(r"\(PID (\d+)\)", text)
            who = f"another process (PID {holder.group(1)})" if holder else "another process"
            if read_only:
                hint = (
                    f"{who} has the store open for writing (a TUI without --read-only, an annotation session "
                    "or "
                    "an ingest). DuckDB lets one process write or several read, never both: close it, or "
                    f"browse a copy (cp {db} copy.duckdb)"
                )
            else:
                hint = (
                    f"{who} has the store open (for reading or for writing: a TUI, even with --read-only, "
                    "a query, an annotation session). Writing needs the store to itself: close the other one "
                    "first"
                )
        elif "corrupt" in text.lower() or "checksum" in text.lower():
            hint = "the store file is damaged: restore it from a copy, or rebuild it with hvuaudit ingest"
        elif "connection" in text.lower():
            hint = "this process already has the store open in another mode"
        else:
            hint = f"--db must point to a DuckDB file made by hvuaudit ingest; '{db}' is not one"
        raise StoreError(f"cannot open store {db}: {text.splitlines()[0]}", hint=hint) from exc
    try:
        con.execute("SET enable_progress_bar = false")  # it would draw over our own output
        if sandboxed:  # user-typed SQL: no COPY ... TO, ATTACH, or reading other files
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        if not read_only:
            con.execute(load_sql("internal/schema"))
            _upgrade_tables(con)
            create_views(con)
            run_query(con, "internal/set_meta", key="views_sha256", value=views_fingerprint())
            run_query(con, "internal/set_meta", key="duckdb_version", value=duckdb.__version__)
        elif has_stale_views(con):
            create_views(con, temporary=True)
    except BaseException:
        con.close()
        raise
    return con


def _upgrade_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Rebuild what ``CREATE TABLE IF NOT EXISTS`` cannot change in a store made by an older hvuaudit."""
    sides = run_query(con, "internal/split_sides_constraint")["expression"].to_list()
    if sides and "'select'" not in sides[0]:
        with transaction(con):
            run_query(con, "internal/upgrade_split_sides")


def store_writer_version(db: Path) -> str | None:
    """The DuckDB version recorded in the store file's header (e.g. "2.0.1"), None when it has none.

    Readable whatever the installed DuckDB: it is what a too-old DuckDB cannot tell the user.
    """
    try:
        with open(db, "rb") as handle:
            head = handle.read(256)
    except OSError:
        return None
    found = re.search(rb"v(\d+\.\d+\.\d+[\w.-]*)\x00", head[12:])
    return found.group(1).decode("ascii", "replace") if found else None


def views_fingerprint() -> str:
    """Identifies this version's views.sql; a store records the one its views were made from."""
    return hashlib.sha256(load_sql("internal/views").encode()).hexdigest()[:16]


def has_stale_views(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the store's views (``cooccurrence``, ``tags_per_clip``, ...) are not this version's.

    A store written by an older hvuaudit may hold older views or miss new ones. Opened
    read-write it is brought up to date; opened read-only it cannot be changed, so its
    views are made again as TEMP objects of the connection (:func:`create_views`).
    """
    if not has_table(con, "clips"):
        return False  # not filled yet: require_clips says so when it matters
    if not has_table(con, "store_meta"):
        return True
    recorded = run_query(con, "internal/get_meta", key="views_sha256")
    return recorded.is_empty() or recorded.item() != views_fingerprint()


def create_views(con: duckdb.DuckDBPyConnection, *, temporary: bool = False) -> None:
    """Create this version's views and macros, in the store or (``temporary``) for ``con`` only.

    TEMP objects shadow the store's own for this connection. DuckDB keeps them per
    connection, so every ``con.cursor()`` of a stale read-only store needs this call too.
    """
    sql = load_sql("internal/views")
    if temporary:
        sql = re.sub(r"\bCREATE OR REPLACE (VIEW|MACRO)\b", r"CREATE OR REPLACE TEMP \1", sql)
    try:
        con.execute(sql)
    except duckdb.InterruptException as exc:  # the store is being closed (see the TUI's session)
        raise StoreError("interrupted while creating the store's views") from exc
    except duckdb.Error as exc:
        raise StoreError(
            f"cannot create the store's views: {str(exc).splitlines()[0]}",
            hint="the file was not made by hvuaudit ingest, or is damaged; rebuild it with hvuaudit ingest",
        ) from exc


# DuckDB types that polars cannot hold (or would show as raw bytes): shown as DuckDB's own text for them.
_AS_TEXT_TYPES = ("INTERVAL", "VARIANT", "UNION", "BIT", "GEOMETRY")


def _as_text(relation: duckdb.DuckDBPyRelation, columns: list[str]) -> duckdb.DuckDBPyRelation:
    def quoted(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    return relation.project(
        ", ".join(
            f"CAST({quoted(c)} AS VARCHAR) AS {quoted(c)}" if c in columns else quoted(c)
            for c in relation.columns
        )
    )


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None) -> pl.DataFrame:
    """The rows of the last statement of ``sql`` (none for a statement that returns none); errors not wrapped.

    Columns of a type polars cannot hold (INTERVAL, VARIANT, ...) come back as text.
    """
    relation = con.sql(sql, params=params or None)
    if relation is None:
        return pl.DataFrame()
    odd = [
        c for c, t in zip(relation.columns, relation.types, strict=True) if str(t).startswith(_AS_TEXT_TYPES)
    ]
    if odd:
        relation = _as_text(relation, odd)
    try:
        return relation.pl()
    except (
        pl.exceptions.PolarsError
    ):  # a type we did not foresee: every column that is not plain becomes text
        plain = (
            "BOOLEAN",
            "TINYINT",
            "SMALLINT",
            "INTEGER",
            "BIGINT",
            "HUGEINT",
            "FLOAT",
            "DOUBLE",
            "VARCHAR",
            "DATE",
        )
        return _as_text(
            relation,
            [c for c, t in zip(relation.columns, relation.types, strict=True) if str(t) not in plain],
        ).pl()


def run_sql(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> pl.DataFrame:
    """Run SQL (the last statement's rows come back) as a polars DataFrame; errors wrapped."""
    try:
        return _rows(con, sql, params)
    except duckdb.Error as exc:
        raise wrap_duckdb_error(exc, "DuckDB raised an error") from exc


def run_query(con: duckdb.DuckDBPyConnection, name: str, **params) -> pl.DataFrame:
    """Run the bundled file ``name`` (one or more statements); return the last statement's rows.

    Each statement gets exactly the ``$name`` parameters it declares.
    """
    sql = load_sql(name)
    missing = [p for p in sql_parameters(sql) if p not in params]
    if missing:
        raise InputError(
            f"query '{name}' needs parameter(s) {', '.join('$' + m for m in missing)}",
            hint=" ".join(f"--param {m}=VALUE" for m in missing),
        )
    try:
        statements = con.extract_statements(sql)
        for statement in statements[:-1]:
            con.execute(statement, {k: params[k] for k in statement.named_parameters})
        last = statements[-1]
        return _rows(con, last.query, {k: params[k] for k in last.named_parameters})
    except duckdb.CatalogException as exc:  # our own SQL names a table or view the store lacks
        raise StoreError(
            f"DuckDB raised an error in {name}.sql: {str(exc).splitlines()[0]}",
            hint="the store was probably written by an older hvuaudit: open it once for writing, which "
            "brings "
            "it up to date (hvuaudit tui without --read-only, or hvuaudit ingest with the same files)",
        ) from exc
    except duckdb.Error as exc:
        raise wrap_duckdb_error(exc, f"DuckDB raised an error in {name}.sql") from exc


def wrap_duckdb_error(exc: duckdb.Error, doing: str) -> StoreError | SystemRefusal:
    """The user-facing error for a DuckDB error: a full disk is the machine's refusal (exit 7), the rest exit
    4."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if text_says_disk_full(str(exc)):
        return SystemRefusal(
            f"{doing}: {first}",
            hint="free some space on the store's disk and run the command again; the store is as it was",
        )
    return StoreError(f"{doing}: {first}")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN … COMMIT, or ROLLBACK on any exception: the store is never left half-written.

    A COMMIT that fails (a full disk) is rolled back and raised as a user-facing error.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        with suppress(duckdb.Error):  # a failed transaction may already be rolled back
            con.execute("ROLLBACK")
        raise
    commit_starting()  # from here a Ctrl-C can no longer undo the write (hvucontracts.process)
    try:
        con.execute("COMMIT")
    except duckdb.Error as exc:
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise wrap_duckdb_error(exc, "could not commit to the store") from exc


def store_path(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The file behind ``con`` (None for an in-memory database)."""
    row = fetch_row(con, "SELECT path FROM duckdb_databases() WHERE database_name = current_database()")
    return Path(row[0]) if row and row[0] else None


def fetch_row(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> tuple:
    """The first row of a small query (fetches everything, so no result is left open)."""
    rows = con.execute(sql, params or {}).fetchall()
    return rows[0] if rows else ()


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    sql = "SELECT count(*) FROM duckdb_tables() WHERE table_name = $name"
    return bool(fetch_row(con, sql, {"name": name})[0])


def require_clips(con: duckdb.DuckDBPyConnection, subset: str | None = None) -> None:
    """Raise a helpful error when the store (or the asked-for subset) holds no clips."""
    if not has_table(con, "clips") or fetch_row(con, "SELECT count(*) FROM clips")[0] == 0:
        raise StoreError(
            "the store is empty",
            hint="fill it first: hvuaudit ingest HVU_Val_V1.0.csv --categories HVU_Tags_Categories_V1.0.csv",
        )
    if subset is not None:
        subsets = [r[0] for r in con.execute("SELECT DISTINCT subset FROM clips ORDER BY 1").fetchall()]
        if subset not in subsets:
            raise InputError(f"unknown subset '{subset}'", hint=f"the store has: {', '.join(subsets)}")


def check_category(category: str, allowed: tuple[str, ...] = SIDE_CATEGORIES) -> str:
    if category not in allowed:
        raise InputError(f"unknown category '{category}'", hint=f"use one of: {', '.join(allowed)}")
    return category


@dataclass(frozen=True)
class StoreSource:
    """One ingested file, as recorded in ``sources`` (provenance for manifests)."""

    path: str
    sha256: str
    rows: int
    subset: str


def store_sources(con: duckdb.DuckDBPyConnection) -> list[StoreSource]:
    if not has_table(con, "sources"):
        return []
    rows = con.execute("SELECT path, sha256, rows, subset FROM sources ORDER BY source_id").fetchall()
    return [StoreSource(*row) for row in rows]
