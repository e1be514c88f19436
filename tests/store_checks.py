"""What a store holds, table by table: to prove that a refused or killed command changed nothing."""

from __future__ import annotations

from pathlib import Path

import duckdb

# Tables whose rows a command may legitimately touch on every read-write open (not user data).
BOOKKEEPING = {"store_meta"}
# Columns the tool fills with the time of the run (two complete runs differ there and nowhere else).
VOLATILE = {"sources": ("ingested_at",)}


def fingerprint(db: Path) -> dict[str, tuple[int, str]]:
    """{table: (row count, order-free sum of its rows' hashes)} for every user-data table of ``db``."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY 1"
            ).fetchall()
        ]
        found = {}
        for table in tables:
            if table in BOOKKEEPING:
                continue
            drop = VOLATILE.get(table, ())
            rows = (
                f'SELECT * EXCLUDE ({", ".join(drop)}) FROM "{table}"' if drop else f'SELECT * FROM "{table}"'
            )
            count, digest = con.execute(
                f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM ({rows}) t"
            ).fetchone()
            found[table] = (count, digest)
        return found
    finally:
        con.close()
