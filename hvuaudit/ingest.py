"""Ingest: HVU annotation CSVs and the tag→category file into the DuckDB store.

First step of the pipeline (CSV files → store). One call is one transaction:
every file is checked (encoding, header, fields, times, duplicates, unknown
tags) before anything is written, so a bad file leaves the store exactly as it
was. Re-ingesting a file with a known sha256 is a no-op. After the insert the
per-subset co-occurrence counts of the touched subsets are recomputed, which is
what makes ``cooccurrence`` fast to read. All SQL lives in ``queries/internal``.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from hvuaudit.errors import InputError
from hvuaudit.store import (
    default_db_path,
    fetch_row,
    load_sql,
    open_store,
    run_query,
    store_sources,
    transaction,
)
from hvucontracts.process import ctrl_c_held_after_commit

ANNOTATION_COLUMNS = ("Tags", "youtube_id", "time_start", "time_end")
CATEGORY_COLUMNS = ("Tag", "Category")
_COUNT_CLIPS_AND_LINKS = "SELECT (SELECT count(*) FROM clips), (SELECT count(*) FROM clip_tag_ids)"
_SUBSET_FROM_NAME = re.compile(r"HVU_(Train|Val|Test)_", re.IGNORECASE)


@dataclass(frozen=True)
class FileResult:
    path: str
    subset: str
    rows: int
    sha256: str
    status: str  # "ingested" or "skipped (already ingested)"


@dataclass
class IngestSummary:
    files: list[FileResult] = field(default_factory=list)
    clips_added: int = 0
    clip_tags_added: int = 0
    tags_added: int = 0
    unknown_tags: int = 0
    seconds: float = 0.0
    interrupted_after_commit: bool = False  # Ctrl-C came once the commit had begun: all is stored

    def one_line(self) -> str:
        skipped = sum(f.status != "ingested" for f in self.files)
        text = (
            f"ingested {self.clips_added:,} clips ({self.clip_tags_added:,} clip-tags) from "
            f"{len(self.files) - skipped} file(s), added {self.tags_added:,} tags in {self.seconds:.1f} s"
        )
        if skipped:
            text += f"; {skipped} file(s) already ingested, unchanged"
        if self.unknown_tags:
            text += f"; {self.unknown_tags} unknown tag(s) stored under category 'unknown'"
        return text

    def as_dict(self) -> dict:
        return {
            "files": [f.__dict__ for f in self.files],
            "clips_added": self.clips_added,
            "clip_tags_added": self.clip_tags_added,
            "tags_added": self.tags_added,
            "unknown_tags": self.unknown_tags,
            "seconds": round(self.seconds, 3),
        }


def subset_from_name(path: Path) -> str:
    """``HVU_Train_*`` → train, ``HVU_Val_*`` → val; otherwise the caller must say."""
    match = _SUBSET_FROM_NAME.search(path.name)
    if not match:
        raise InputError(
            f"{path}: cannot tell the subset from the file name",
            hint="name it HVU_Train_*.csv / HVU_Val_*.csv, or pass --subset NAME",
        )
    return match.group(1).lower()


# DuckDB's reader stops at 2,000,000 bytes a row; real HVU rows are under 1 kB. A longer row
# is refused here with its line number rather than left to DuckDB.
MAX_ROW_BYTES = 1_000_000
_NEWLINE, _QUOTE = 10, 34


@dataclass(frozen=True)
class CsvScan:
    """What :func:`scan_csv` learned from a file's bytes before DuckDB reads it."""

    sha256: str
    header: tuple[str, ...]  # the column names in the file's order
    record_lines: np.ndarray  # the physical line on which each data row starts (blank lines skipped)

    @property
    def rows(self) -> int:
        return len(self.record_lines)

    def columns(self) -> dict[str, str]:
        """read_csv's ``columns``, in the file's order: columns are read by name, not by position."""
        return {name: "VARCHAR" for name in self.header}


class _RecordSplitter:
    """Finds where CSV records end in a stream of chunks: at a newline outside double quotes.

    Records are counted the way DuckDB reads them (a quoted field may hold newlines, an
    empty line is no record), so a row's physical line is known even when earlier rows
    span several lines or blank lines come between them.
    """

    def __init__(self) -> None:
        self.offset = 0  # bytes seen so far
        self.newlines = 0  # newlines seen so far
        self.quotes_odd = False  # inside a quoted field at the end of the last chunk
        self.last_byte = 0  # the last byte of the previous chunk
        self.record_start = 0  # byte offset where the current record starts
        self.start_line = 1  # physical line where the current record starts
        self.starts: list[np.ndarray] = []  # start lines of non-blank records
        self.longest = (0, 0)  # (bytes, line) of the longest record

    def feed(self, chunk: bytes) -> None:
        data = np.frombuffer(chunk, dtype=np.uint8)
        newline_at = np.flatnonzero(data == _NEWLINE)
        is_quote = data == _QUOTE
        if self.quotes_odd or is_quote.any():
            quotes_so_far = np.cumsum(is_quote, dtype=np.int64) + int(self.quotes_odd)
            keep = quotes_so_far[newline_at] % 2 == 0  # a newline outside quotes ends a record
            ends, end_lines = newline_at[keep], self.newlines + 1 + np.flatnonzero(keep)
            self.quotes_odd = bool(quotes_so_far[-1] % 2)
        else:
            ends, end_lines = newline_at, self.newlines + 1 + np.arange(len(newline_at))
        before = np.where(ends > 0, data[np.maximum(ends - 1, 0)], self.last_byte) if len(ends) else ends
        self._records(self.offset + ends, end_lines, before == 13)
        self.offset += len(chunk)
        self.newlines += len(newline_at)
        if len(chunk):
            self.last_byte = chunk[-1]

    def finish(self) -> None:
        if self.offset > self.record_start:  # a last record without a newline
            end = np.array([self.offset], dtype=np.int64)
            self._records(end, np.array([self.newlines + 1]), np.array([self.last_byte == 13]))

    def _records(self, ends: np.ndarray, end_lines: np.ndarray, cr_before: np.ndarray) -> None:
        """Record the records that end at the byte offsets ``ends`` (a newline, or the end of the file)."""
        if not len(ends):
            return
        starts = np.concatenate([[self.record_start], ends[:-1] + 1])
        content = ends - starts  # bytes before the newline
        start_lines = np.concatenate([[self.start_line], end_lines[:-1] + 1])
        blank = (content == 0) | ((content == 1) & cr_before)
        self.starts.append(start_lines[~blank])
        longest = int(np.argmax(content))
        if content[longest] > self.longest[0]:
            self.longest = (int(content[longest]), int(start_lines[longest]))
        self.record_start = int(ends[-1]) + 1
        self.start_line = int(end_lines[-1]) + 1


def scan_csv(path: Path, expected_columns: Sequence[str]) -> CsvScan:
    """Check a CSV's bytes before DuckDB reads it; return its sha256, header and row lines.

    Catches what DuckDB reports poorly or not at all: a missing file, non-UTF-8 bytes
    (with the line), an empty file, a header that is not the documented one (columns are
    then read by name, in any order), a row too long for DuckDB's reader, and a last line
    cut off in the middle.
    """
    if not path.exists():
        raise InputError(
            f"{path}: no such file", hint="check the path (relative paths start from the current folder)"
        )
    if not path.is_file():
        raise InputError(f"{path}: is not a file")
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    splitter = _RecordSplitter()
    head = b""
    tail = b""
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line = splitter.newlines + chunk[: exc.start].count(b"\n") + 1
                raise InputError(
                    f"{path}, line {line}: the file is not UTF-8 (byte 0x{chunk[exc.start]:02x})",
                    hint="re-save it as UTF-8, e.g. iconv -f latin1 -t utf-8 IN.csv > OUT.csv",
                ) from exc
            splitter.feed(chunk)
            if len(head) < 4096:
                head += chunk[:4096]
            tail = (tail + chunk)[-65536:]
    splitter.finish()
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: the file ends inside a UTF-8 character (truncated?)") from exc
    if not head.strip():
        raise InputError(
            f"{path}: the file is empty", hint=f"expected a header line: {','.join(expected_columns)}"
        )
    header = tuple(field.strip() for field in head.split(b"\n", 1)[0].decode("utf-8-sig").strip().split(","))
    if sorted(header) != sorted(expected_columns):
        missing = [c for c in expected_columns if c not in header]
        extra = [c for c in header if c not in expected_columns]
        problem = (
            f"missing column(s) {', '.join(missing)}"
            if missing
            else f"unexpected column(s) {', '.join(extra)}"
        )
        raise InputError(
            f"{path}, line 1: {problem} (header is: {','.join(header)})",
            hint=f"the header must name exactly these columns (in any order): {','.join(expected_columns)}",
        )
    length, line = splitter.longest
    if length > MAX_ROW_BYTES:
        raise InputError(
            f"{path}, line {line}: the row is {length:,} bytes long, over the limit of {MAX_ROW_BYTES:,}",
            hint="HVU rows are under 1 kB: the file is damaged or not an HVU annotation file; fix or remove "
            "that row",
        )
    record_lines = np.concatenate(splitter.starts)[1:] if splitter.starts else np.array([], dtype=np.int64)
    if not len(record_lines):
        raise InputError(f"{path}: the file has a header but no rows")
    if not tail.endswith(b"\n"):
        last = tail.rsplit(b"\n", 1)[-1].decode("utf-8", "replace")
        if last.count(",") < len(header) - 1:
            raise InputError(
                f"{path}, line {splitter.newlines + 1}: the last line is cut off in the middle "
                f"({last[:60]!r})",
                hint="the file looks truncated; copy or download it again",
            )
    return CsvScan(digest.hexdigest(), header, record_lines.astype(np.int64))


def _first_problem(path: Path, line: int, problem: str, hint: str) -> InputError:
    return InputError(f"{path}, line {line}: {problem}", hint=hint)


def ingest(
    files: Sequence[Path | str],
    categories: Path | str | None,
    *,
    db: Path | str | None = None,
    subset: str | None = None,
    allow_unknown: bool = False,
    progress: Callable[[str], None] | None = None,
) -> IngestSummary:
    """Ingest annotation CSVs (and optionally a categories file) into the store, atomically."""
    started = time.perf_counter()
    step = progress or (lambda _message: None)
    paths = [Path(f) for f in files]
    if not paths:
        raise InputError(
            "no annotation files given", hint="hvuaudit ingest HVU_Val_V1.0.csv --categories CATS.csv"
        )
    for path in paths:  # a missing file is the first thing to say, before its name is read for the subset
        if not path.exists():
            raise InputError(
                f"{path}: no such file", hint="check the path (relative paths start from the current folder)"
            )
    subsets = [subset or subset_from_name(p) for p in paths]
    step("checking files")
    scans = [scan_csv(p, ANNOTATION_COLUMNS) for p in paths]
    category_scan = scan_csv(Path(categories), CATEGORY_COLUMNS) if categories is not None else None

    db_path = Path(db) if db is not None else default_db_path()
    existed = db_path.exists()
    with ctrl_c_held_after_commit() as guard:
        con = None
        try:  # opening is inside: a Ctrl-C while a new store's schema is written must remove it too
            con = open_store(db_path, read_only=False, create=True)
            summary = _ingest_in_transaction(
                con, paths, subsets, scans, categories, category_scan, allow_unknown, step
            )
        except BaseException:
            if con is not None:
                con.close()
            if not existed:  # leave no half-made store behind (the default ./hvu.duckdb included)
                for leftover in (db_path, db_path.with_name(db_path.name + ".wal")):
                    leftover.unlink(missing_ok=True)
            raise
        con.close()
    summary.seconds = time.perf_counter() - started
    summary.interrupted_after_commit = guard.pressed
    return summary


def _ingest_in_transaction(
    con: duckdb.DuckDBPyConnection,
    paths: list[Path],
    subsets: list[str],
    scans: list[CsvScan],
    categories: Path | str | None,
    category_scan: CsvScan | None,
    allow_unknown: bool,
    step: Callable[[str], None],
) -> IngestSummary:
    summary = IngestSummary()
    known = {source.sha256 for source in store_sources(con)}
    with transaction(con):
        tags_before = fetch_row(con, "SELECT count(*) FROM tags")[0]
        if categories is not None:
            step("reading categories")
            assert category_scan is not None  # the caller scans the categories file when there is one
            _stage(con, "internal/stage_categories", Path(categories), category_scan, "raw_categories")
            problems = run_query(con, "internal/category_problems")
            if problems.height:
                line, problem = problems.row(0)
                raise _first_problem(
                    Path(categories), line, problem, "fix the categories file (Tag,Category)"
                )
            run_query(con, "internal/merge_categories")
        if fetch_row(con, "SELECT count(*) FROM tags")[0] == 0:
            raise InputError(
                "the store has no tag categories yet", hint="pass --categories HVU_Tags_Categories_V1.0.csv"
            )

        run_query(con, "internal/create_staging")
        run_query(con, "internal/create_new_sources")
        seen_in_call: dict[str, Path] = {}
        for index, (path, subset, scan) in enumerate(zip(paths, subsets, scans, strict=True)):
            sha = scan.sha256
            if sha in known or sha in seen_in_call:
                summary.files.append(FileResult(str(path), subset, 0, sha, "skipped (already ingested)"))
                continue
            seen_in_call[sha] = path
            step(f"reading {path.name}")
            _stage(con, "internal/stage_file", path, scan, "raw_csv")
            run_query(con, "internal/append_staging", file_index=index, subset=subset)
            rows = run_query(
                con,
                "internal/add_new_source",
                file_index=index,
                path=str(path.resolve()),
                sha256=sha,
                subset=subset,
            )["rows"][0]
            summary.files.append(FileResult(str(path), subset, rows, sha, "ingested"))

        if any(f.status == "ingested" for f in summary.files):
            step("validating rows")
            _check_rows(con, paths)
            _check_tags(con, paths, allow_unknown, summary)
            run_query(con, "internal/explode_tags")
            step("inserting clips")
            clips_before, links_before = fetch_row(con, _COUNT_CLIPS_AND_LINKS)
            run_query(con, "internal/insert_clips")
            step("counting co-occurrences")
            run_query(con, "internal/refresh_counts")
            clips_after, links_after = fetch_row(con, _COUNT_CLIPS_AND_LINKS)
            summary.clips_added = clips_after - clips_before
            summary.clip_tags_added = links_after - links_before
        summary.tags_added = fetch_row(con, "SELECT count(*) FROM tags")[0] - tags_before
    return summary


def _stage(con: duckdb.DuckDBPyConnection, query: str, path: Path, scan: CsvScan, table: str) -> None:
    """Read ``path`` into the temp ``table``; ``record_lines`` maps each of its rows to its line in the
    file."""
    con.register(
        "record_lines",
        pl.DataFrame({"record": np.arange(scan.rows, dtype=np.int64), "line": scan.record_lines}),
    )
    try:
        con.execute(
            load_sql(query), {"path": str(path), "columns": scan.columns()}
        )  # DuckDB's error is parsed below
    except duckdb.Error as exc:
        detail = str(exc).strip().splitlines()
        line = re.search(r"[Ll]ine:? (\d+)", str(exc))
        where = f", line {line.group(1)}" if line else ""
        raise InputError(
            f"{path}{where}: cannot be read as CSV: {detail[0] if detail else exc}",
            hint="every line needs the header's fields, comma-separated; quote a field that contains a comma",
        ) from exc
    read = fetch_row(con, f"SELECT count(*) FROM {table}")[0]  # noqa: S608 (our own table name)
    if read != scan.rows:  # never drop a row silently
        raise InputError(
            f"{path}: DuckDB read {read:,} rows but the file holds {scan.rows:,}; nothing was ingested",
            hint='check the file for stray quote characters (") and rows with a different number of fields',
        )


def _check_rows(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> None:
    problems = run_query(con, "internal/row_problems")
    if problems.height:
        file_index, line, problem = problems.row(0)
        more = f" (and {problems.height - 1} more problem(s))" if problems.height > 1 else ""
        raise _first_problem(
            paths[file_index], line, problem + more, "fix or remove that row and ingest again"
        )
    duplicates = run_query(con, "internal/duplicate_clips")
    if duplicates.height:
        row = duplicates.row(0, named=True)
        clip = f"{row['youtube_id']} {row['time_start']:g}-{row['time_end']:g}"
        where = [f"{paths[f]}, line {ln}" for f, ln in zip(row["file_indexes"], row["lines"], strict=True)]
        if row["in_store"]:
            raise InputError(
                f"{where[0]}: clip {clip} is already in the store (from an earlier ingest)",
                hint="remove the row, or ingest into a fresh --db",
            )
        raise InputError(
            f"duplicate clip {clip} at {' and '.join(where)}",
            hint="a clip is (youtube_id, time_start, time_end) and may appear only once; remove the copies",
        )


def _check_tags(
    con: duckdb.DuckDBPyConnection, paths: list[Path], allow_unknown: bool, summary: IngestSummary
) -> None:
    unknown = run_query(con, "internal/unknown_tags")
    if not unknown.height:
        return
    if not allow_unknown:
        first = unknown.row(0, named=True)
        names = ", ".join(unknown["tag"].head(5).to_list())
        raise InputError(
            f"{paths[first['file_index']]}, line {first['line']}: {unknown.height} tag(s) are not in the "
            f"categories file, e.g. {names}",
            hint="add them to the categories file, or pass --allow-unknown to store them under category "
            "'unknown'",
        )
    run_query(con, "internal/add_unknown_tags")
    summary.unknown_tags = unknown.height
