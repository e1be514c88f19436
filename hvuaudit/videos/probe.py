"""``hvuaudit videos scan --probe``: open every scanned file with PyAV and record what it holds.

For each file not probed yet (a rescan keeps the probe of an unchanged file): duration,
frame rate, frame count, width and height, and a problem when it cannot be opened, carries no
video stream (YouTube's 252-byte leftovers), or yields no frame. Whether a file is long
enough for its clip's times is decided per clip from these numbers
(``queries/internal/usable_videos.sql``), since a whole video serves several clips.

Files are opened on ``workers`` threads: PyAV releases the GIL while FFmpeg opens, parses and
decodes, so two threads probe about 1.5 times as many files per second as one (bench/videos.py,
BENCHMARKS.md) without pickling or a second DuckDB connection. The first files give a rate,
and the estimate for the rest is printed before the long part starts. PyAV is imported when
a probe runs, never by the core at import.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from hvuaudit.store import run_query, transaction

PROBE_SCHEMA = {
    "root": pl.String,
    "path": pl.String,
    "duration": pl.Float64,
    "fps": pl.Float64,
    "frames": pl.Int64,
    "width": pl.Int32,
    "height": pl.Int32,
    "problem": pl.String,
}
# Files probed before the estimate is printed, and the size of each batch saved in the store (a probe cut
# short keeps every finished batch, and the next run starts after it).
SAMPLE_FILES = 64
BATCH_FILES = 2000
LONG_PROBE_S = 10.0  # a probe expected to take longer says so, with its estimate, before it goes on


@dataclass(frozen=True)
class ProbeReport:
    files: int
    broken: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else math.inf


def probe_file(path: str | Path) -> dict[str, Any]:
    """What one file holds: duration (s), fps, frames, width, height, and problem (None when it is usable)."""
    import av

    out: dict[str, Any] = {
        "duration": None,
        "fps": None,
        "frames": None,
        "width": None,
        "height": None,
        "problem": None,
    }
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                out["problem"] = "no video stream"
                return out
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else None
            if container.duration is not None:
                duration = container.duration / av.time_base
            elif stream.duration is not None and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            else:
                duration = None
            frames = stream.frames or (round(duration * fps) if duration and fps else None)
            out.update(
                duration=duration,
                fps=fps,
                frames=frames,
                width=stream.codec_context.width,
                height=stream.codec_context.height,
            )
            if next(container.decode(stream), None) is None:
                out["problem"] = "no frame could be decoded"
    except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
        # FFmpeg's own words ("Invalid data found when processing input"), without the path repeated
        reason = getattr(exc, "strerror", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
        out["problem"] = f"cannot be opened: {reason}"
    return out


def _save(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    frame = pl.DataFrame(rows, schema=PROBE_SCHEMA)
    con.register("video_probe_frame", frame)
    try:
        with transaction(con):
            run_query(con, "internal/video_probe_save")
    finally:
        con.unregister("video_probe_frame")


def probe_videos(
    con: duckdb.DuckDBPyConnection,
    *,
    roots: Iterable[str] | None = None,
    workers: int = 2,
    log: Callable[[str], None] = lambda message: None,
    on_file: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> ProbeReport:
    """Probe the files of ``roots`` (None: every scanned root) that were never probed; save as it goes."""
    todo = run_query(con, "internal/video_probe_todo", roots=list(roots) if roots is not None else None)
    if on_total is not None:
        on_total(todo.height)
    started = time.perf_counter()
    broken = 0
    paths = [(root, path) for root, path in zip(todo["root"], todo["path"], strict=True)]

    def one(item: tuple[str, str]) -> dict[str, Any]:
        root, path = item
        return {"root": root, "path": path, **probe_file(Path(root) / path)}

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        done = 0
        while done < len(paths):
            size = SAMPLE_FILES if done == 0 else BATCH_FILES
            batch = paths[done : done + size]
            rows = []
            for row in pool.map(one, batch):
                rows.append(row)
                broken += row["problem"] is not None
                if on_file is not None:
                    on_file(1)
            _save(con, rows)
            done += len(batch)
            if done == len(batch) and done < len(paths):
                rate = done / max(time.perf_counter() - started, 1e-9)
                left = (len(paths) - done) / rate
                if left >= LONG_PROBE_S:
                    log(
                        f"probing {len(paths):,} files on {workers} thread(s): {rate:,.0f} files/s on the "
                        f"first {done}, about {_duration(left)} for the rest"
                    )
    return ProbeReport(files=len(paths), broken=broken, seconds=time.perf_counter() - started)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
