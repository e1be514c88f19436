"""What a store holds, table by table: to prove that a refused or killed command changed nothing."""

from __future__ import annotations

from pathlib import Path

import duckdb

# Tables whose rows a command may legitimately touch on every read-write open (not user data).
BOOKKEEPING = {"store_meta"}


def fingerprint(db: Path) -> dict[str, tuple[int, str]]:
    """{table: (row count, md5 of its rows in a fixed order)} for every user-data table of ``db``."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY 1").fetchall()]
        found = {}
        for table in tables:
            if table in BOOKKEEPING:
                continue
            count, digest = con.execute(
                f'SELECT count(*), md5(coalesce(string_agg(t::VARCHAR, chr(10) ORDER BY t::VARCHAR), \'\')) '
                f'FROM "{table}" t'
            ).fetchone()
            found[table] = (count, digest)
        return found
    finally:
        con.close()
