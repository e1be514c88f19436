"""The TUI's handle on the store: one DuckDB connection, a cursor per worker.

The app opens the store once, lazily, from the first worker that needs it, so
the first frame paints before any I/O. DuckDB connections must not be used
from two threads at once; every worker takes its own ``cursor()`` (a
connection to the same database that is safe to use from its thread) and
closes it when done. Reads run side by side, and a write (an answer, a split
export) never waits for a read: DuckDB's transactions keep them apart, and a
commit is durable through the write-ahead log without a CHECKPOINT. Writes wait
only for each other. This module imports no ``textual``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import duckdb

from hvuaudit.errors import StoreError
from hvuaudit.store import create_views, default_db_path, has_stale_views, open_store
from hvuaudit.videos.frames import VideoSource

INGEST_COMMAND = "hvuaudit ingest HVU_Val_V1.0.csv --categories HVU_Tags_Categories_V1.0.csv --db {db}"
CLOSE_WAIT_SECONDS = 2.0  # how long close() waits for interrupted queries to return
READ_ONLY_REASON = (
    "the store is open read-only (hvuaudit tui --read-only); restart without --read-only to change it"
)


class StoreSession:
    """Where the store is, how it is opened, and a thread-safe way to get cursors."""

    def __init__(self, db: Path | None, *, read_only: bool, videos: VideoSource | None = None) -> None:
        self.path = Path(db) if db is not None else default_db_path()
        self.read_only = read_only
        self.videos = videos or VideoSource()  # where the frame strips find clip files
        self._lock = threading.Lock()
        self._writing = threading.Lock()  # one write at a time; reads never wait
        self._con: duckdb.DuckDBPyConnection | None = None
        self._open_error: StoreError | None = None
        self._temp_views = False  # a read-only store from an older hvuaudit: views made per cursor
        self._live_cursors: dict[duckdb.DuckDBPyConnection, bool] = {}  # cursor -> is it writing
        self._closing = False  # set by close(): no worker may reopen the store until reset()

    @property
    def open_error(self) -> StoreError | None:
        """Why the store could not be opened (None while it is open or not tried yet)."""
        return self._open_error

    @property
    def ingest_command(self) -> str:
        """The command that fills this store."""
        return INGEST_COMMAND.format(db=self.path)

    def _connection(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._con is not None:
                return self._con
            if self._open_error is not None:  # fail the same way every time, without retrying the lock
                raise self._open_error
            if not self.path.exists():
                # Opening read-write would create an empty file: say what to do instead.
                self._open_error = StoreError(
                    f"store {self.path} does not exist", hint=f"create it with: {self.ingest_command}"
                )
                raise self._open_error
            if self._closing:
                raise StoreError("the store is being closed", hint="reopen it: ctrl+p → Reopen the store")
            try:
                con = open_store(self.path, read_only=self.read_only)
                try:
                    self._temp_views = self.read_only and has_stale_views(con)
                except BaseException:
                    con.close()
                    raise
            except StoreError as exc:
                self._open_error = exc
                raise
            self._con = con
            return con

    @contextmanager
    def cursor(self, *, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for one worker, closed when the block ends; ``write=True`` for core calls that write."""
        if write and self.read_only:
            raise StoreError(f"cannot write: {READ_ONLY_REASON}")
        with self._writing if write else nullcontext():
            cur = self._connection().cursor()
            self._live_cursors[cur] = write
            try:
                if self._temp_views:  # DuckDB's temp views do not carry over to a cursor
                    create_views(cur, temporary=True)
                yield cur
            finally:
                self._live_cursors.pop(cur, None)
                cur.close()

    def close(self) -> None:
        """Close the store, for good until :meth:`reset` (no worker reopens it meanwhile).

        A read still running in a worker (the user quit, or asked to reopen the store) is
        interrupted; its worker fails with an interruption error. A write (an answer, a split)
        is left to finish, so that nothing the user saved is lost.
        """
        with self._lock:
            self._closing = True
            if self._con is None:
                return
            deadline = time.monotonic() + CLOSE_WAIT_SECONDS
            while True:
                # again at every try: DuckDB ignores an interrupt that comes between two statements
                for cur, writing in list(self._live_cursors.items()):
                    if not writing:
                        cur.interrupt()
                try:
                    self._con.close()  # refused while a cursor is inside a call
                    break
                except duckdb.Error:
                    if time.monotonic() > deadline:
                        break  # the process ends soon; DuckDB replays its log at the next open
                    time.sleep(0.01)
            self._con = None

    def reset(self) -> None:
        """Allow opening again after :meth:`close` or a failed open (the other process released its lock)."""
        with self._lock:
            self._open_error = None
            self._closing = False
