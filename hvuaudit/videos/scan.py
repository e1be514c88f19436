"""``hvuaudit videos scan``: match the files of video folders to the store's clips, under every naming scheme.

Walks each folder once (``os.scandir``, no symbolic links followed), keeps the video files
(:data:`VIDEO_SUFFIXES`), and lets DuckDB do the matching in one pass
(``queries/internal/video_scan_save.sql``: the schemes of the download tools, and a
``--name-template`` of the user's). A rescan is idempotent: a file with the same size and
mtime keeps what ``--probe`` found, a changed one is probed again, a removed one is
forgotten. The coverage and the cases a user must know about (files that are no clip, clips
with two files, names that fit two clips, broken files) come from the same tables.

Sits beside the store; imports duckdb and polars, never PyAV (see :mod:`hvuaudit.videos.probe`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import polars as pl

from hvuaudit.errors import InputError
from hvuaudit.store import require_clips, run_query, transaction
from hvucontracts.splitfolder import SCANNED, check_template, clip_filename, clip_window, template_field_names
from hvucontracts.videofolder import folder_template

# What a video file is called; anything else under a scanned folder is counted and left alone.
VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg"})
# The naming schemes the scan knows, in the order docs/videos.md describes them.
SCHEMES = ("mmaction", "downloader", "downloader-untrimmed", "seconds", "youtube-id", "template")
SCHEME_EXAMPLES = {
    "mmaction": "ID_000405_000425.mp4 (tenths of seconds, mmaction2)",
    "downloader": "ID_000040_000042_.mp4 (seconds, HVU-Downloader's trimmed clip)",
    "downloader-untrimmed": "ID_000040_000042.mp4 (HVU-Downloader's download before trimming)",
    "seconds": "ID_40.5_42.5.mp4 (seconds as decimals)",
    "youtube-id": "ID.mp4 (the whole video, cut at the clip's times)",
    "template": "whatever --name-template gives",
}
# A probed clip may be this much shorter than its times before it counts as too short (seconds).
DURATION_TOLERANCE = 0.5

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ScanReport:
    """What one ``videos scan`` found and changed (the counts from :func:`summarize`)."""

    roots: tuple[str, ...]
    video_files: int
    other_files: int  # files without a video suffix, left alone
    linked_folders: int  # symbolic links to folders, not followed
    prepared_folders: tuple[str, ...]  # folders of `videos prepare` inside the roots, skipped
    name_template: str | None
    changes: dict[str, int]  # new / changed / unchanged / removed
    matched_files: int = 0
    unmatched_files: int = 0
    clips: int = 0  # clips in the store
    clips_with_file: int = 0
    usable_clips: int = 0
    by_scheme: dict[str, int] = field(default_factory=dict)  # files per scheme
    problems: dict[str, int] = field(default_factory=dict)  # cases per kind (video_problems.sql)

    def as_json(self) -> dict:
        return {
            "roots": list(self.roots),
            "video_files": self.video_files,
            "other_files": self.other_files,
            "linked_folders": self.linked_folders,
            "prepared_folders": list(self.prepared_folders),
            "name_template": self.name_template,
            "changes": self.changes,
            "matched_files": self.matched_files,
            "unmatched_files": self.unmatched_files,
            "clips": self.clips,
            "clips_with_file": self.clips_with_file,
            "usable_clips": self.usable_clips,
            "by_scheme": self.by_scheme,
            "problems": self.problems,
        }


def resolve_roots(dirs: Iterable[str | Path]) -> tuple[str, ...]:
    """The folders to scan, absolute and checked (exit 3 for one that does not exist)."""
    roots: list[str] = []
    for given in dirs:
        path = Path(given).expanduser()
        if not path.is_dir():
            what = "is not a folder" if path.exists() else "does not exist"
            raise InputError(f"{path} {what}", hint="pass the folder(s) that hold the downloaded clips")
        root = str(path.resolve())
        if root not in roots:
            roots.append(root)
    if not roots:
        raise InputError("no folder to scan", hint="e.g. hvuaudit videos scan ~/hvu/videos")
    return tuple(roots)


@dataclass(frozen=True)
class Walk:
    """What a walk over the scanned folders found."""

    files: pl.DataFrame  # root, path (relative, '/'), stem, size, mtime of every video file
    other_files: int  # files without a video suffix, left alone
    linked_folders: int  # symbolic links to folders, not followed (a loop cannot hang the scan)
    prepared_folders: tuple[
        str, ...
    ]  # `videos prepare` output found inside, skipped: those are not downloads


def walk(roots: Iterable[str], *, on_file: Progress | None = None) -> Walk:
    """Every video file under ``roots``. A symbolic link to a file is read as the file; one to a folder is
    not followed. A folder that ``videos prepare`` wrote (its ``videos.json``) is skipped."""
    rows: dict[str, list] = {"root": [], "path": [], "stem": [], "size": [], "mtime": []}
    other = linked = 0
    prepared: list[str] = []
    for root in roots:
        stack = [Path(root)]
        while stack:
            folder = stack.pop()
            if folder_template(folder) is not None:
                prepared.append(str(folder))
                continue
            try:
                entries = list(os.scandir(folder))
            except OSError:  # a folder we may not read: its files cannot be used anyway
                continue
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                    continue
                if entry.is_symlink() and entry.is_dir():
                    linked += 1
                    continue
                if not entry.is_file():  # follows a link to a file; a dangling link is nothing
                    continue
                name = entry.name
                suffix = os.path.splitext(name)[1].lower()
                if suffix not in VIDEO_SUFFIXES:
                    other += 1
                    continue
                stat = entry.stat()
                rows["root"].append(root)
                rows["path"].append(Path(entry.path).relative_to(root).as_posix())
                rows["stem"].append(name[: len(name) - len(suffix)])
                rows["size"].append(stat.st_size)
                rows["mtime"].append(stat.st_mtime)
                if on_file is not None:
                    on_file(1)
    schema = {"root": pl.String, "path": pl.String, "stem": pl.String, "size": pl.Int64, "mtime": pl.Float64}
    return Walk(pl.DataFrame(rows, schema=schema), other, linked, tuple(prepared))


def template_names(con: duckdb.DuckDBPyConnection, template: str | None) -> pl.DataFrame:
    """clip_key, the file name ``template`` gives each clip of the store (one per action tag when it uses
    ``{action}``), and whether that names one file per video (empty without a template)."""
    empty = pl.DataFrame(schema={"clip_key": pl.Int32, "name": pl.String, "whole_video": pl.Boolean})
    if template is None:
        return empty
    if template == SCANNED:
        raise InputError(
            f"--name-template {SCANNED!r} names the files a scan found; it cannot be used to scan",
            hint="give a preset (mmaction, downloader, raw) or a format string such as '{youtube_id}.mp4'",
        )
    check_template(template)
    per_action = "action" in template_field_names(template)
    clips = run_query(con, "internal/video_template_clips", per_action=per_action)
    names = [clip_filename(row, template) for row in clips.iter_rows(named=True)]
    whole = clip_window({"time_start": 0.0, "time_end": 0.0}, template) is not None
    return pl.DataFrame(
        {"clip_key": clips["clip_key"], "name": names, "whole_video": [whole] * len(names)},
        schema=empty.schema,
    ).unique(maintain_order=True)


def check_roots(con: duckdb.DuckDBPyConnection, roots: tuple[str, ...]) -> None:
    """Refuse a folder inside (or around) a folder scanned before: its files would be recorded twice."""
    known = [r for r in run_query(con, "internal/video_roots")["root"] if r not in roots]
    for root in roots:
        for other in [*known, *[r for r in roots if r != root]]:
            inner, outer = (
                (root, other)
                if _inside(root, other)
                else (other, root)
                if _inside(other, root)
                else (None, None)
            )
            if inner is not None:
                raise InputError(
                    f"{inner} lies inside {outer}: scanning both would record its files twice",
                    hint=f"scan {outer} alone (it covers {inner}), or `hvuaudit videos forget {other}` first",
                )


def _inside(path: str, folder: str) -> bool:
    return path != folder and Path(path).is_relative_to(folder)


def scan_videos(
    con: duckdb.DuckDBPyConnection,
    dirs: Iterable[str | Path],
    *,
    name_template: str | None = None,
    on_file: Progress | None = None,
) -> ScanReport:
    """Walk ``dirs``, record their video files and match them to the store's clips (read-write ``con``).

    A folder scanned before keeps the ``--name-template`` it was scanned with unless another is given. A
    folder that was scanned and is now empty records that its files are gone. Refuses (exit 3) a folder
    that does not exist, one that holds no video file and was never scanned (naming the schemes it
    tries), and one inside another scanned folder; a store without clips is exit 4. The store's tables
    change in one transaction.
    """
    require_clips(con, None)
    roots = resolve_roots(dirs)
    check_roots(con, roots)
    recorded = dict(run_query(con, "internal/video_roots").select("root", "name_template").iter_rows())
    if name_template is None:
        templates = {recorded[r] for r in roots if recorded.get(r)}
        if len(templates) > 1:
            raise InputError(
                "these folders were scanned with different --name-template values; scan them one at a time"
            )
        name_template = next(iter(templates), None)
    found = walk(roots, on_file=on_file)
    if found.files.height == 0 and not any(r in recorded for r in roots):
        schemes = "; ".join(f"{name}: {example}" for name, example in SCHEME_EXAMPLES.items())
        linked = f", {found.linked_folders} link(s) to folders not followed" if found.linked_folders else ""
        raise InputError(
            f"no video file under {', '.join(roots)} ({found.other_files} other file(s){linked}; video files "
            f"end in {', '.join(sorted(VIDEO_SUFFIXES))})",
            hint=f"the names it matches: {schemes}",
        )
    names = template_names(con, name_template)
    con.register("video_scan_frame", found.files)
    con.register("video_template_names", names)
    try:
        with transaction(con):
            diff = run_query(con, "internal/video_scan_diff", roots=list(roots))
            run_query(con, "internal/video_scan_save", roots=list(roots))
            run_query(con, "internal/video_roots_save", roots=list(roots), template=name_template)
    finally:
        con.unregister("video_scan_frame")
        con.unregister("video_template_names")
    changes = {change: 0 for change in ("new", "changed", "unchanged", "removed")}
    changes.update(dict(zip(diff["change"], diff["files"], strict=True)))
    return summarize(
        con,
        ScanReport(
            roots=roots,
            video_files=found.files.height,
            other_files=found.other_files,
            linked_folders=found.linked_folders,
            prepared_folders=found.prepared_folders,
            name_template=name_template,
            changes=changes,
        ),
    )


def summarize(con: duckdb.DuckDBPyConnection, report: ScanReport) -> ScanReport:
    """``report`` with the counts the store holds now (after a scan, or again after its probe)."""
    roots = list(report.roots)
    problems = video_problems(con, report.roots)  # rebuilds usable_videos, which the summary reads
    summary = run_query(con, "internal/video_scan_summary", roots=roots).row(0, named=True)
    by_scheme = run_query(con, "internal/video_scheme_counts", roots=roots)
    return replace(
        report,
        matched_files=summary["matched_files"],
        unmatched_files=report.video_files - summary["matched_files"],
        clips=summary["clips"],
        clips_with_file=summary["clips_with_file"],
        usable_clips=summary["usable_clips"],
        by_scheme=dict(zip(by_scheme["scheme"], by_scheme["files"], strict=True)),
        problems=dict(problems.group_by("kind").len().sort("kind").iter_rows()),
    )


def forget_roots(con: duckdb.DuckDBPyConnection, dirs: Iterable[str | Path]) -> int:
    """Remove the records of scanned folders (which may no longer exist); the number of roots left."""
    roots = [str(Path(d).expanduser().resolve()) for d in dirs]
    known = set(run_query(con, "internal/video_roots")["root"])
    unknown = [r for r in roots if r not in known]
    if unknown:
        raise InputError(
            f"never scanned: {', '.join(unknown)}",
            hint='the scanned folders are listed by `hvuaudit sql "SELECT * FROM video_roots"`',
        )
    with transaction(con):
        return int(run_query(con, "internal/video_forget", roots=roots)["roots"][0])


def refresh_usable(con: duckdb.DuckDBPyConnection) -> int:
    """Rebuild the temp tables clip_video_status and usable_videos; the number of clips with a usable file."""
    return int(run_query(con, "internal/usable_videos", tolerance=DURATION_TOLERANCE)["clips"][0])


def has_scans(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``videos scan`` ever recorded a file in this store (False for a store from before it)."""
    try:
        return bool(con.execute("SELECT EXISTS (SELECT 1 FROM video_files)").fetchall()[0][0])
    except duckdb.CatalogException:  # a read-only store written before the video tables existed
        return False


def require_scans(con: duckdb.DuckDBPyConnection, what: str) -> None:
    """Refuse (exit 3) ``what`` on a store that `videos scan` never recorded a file in."""
    if not has_scans(con):
        raise InputError(
            f"{what}: this store knows no video files",
            hint="run `hvuaudit videos scan DIR --probe` on the folder of the downloaded clips first",
        )


def video_problems(con: duckdb.DuckDBPyConnection, roots: Iterable[str] | None = None) -> pl.DataFrame:
    """Unmatched files, clips with two files, names that fit two clips, broken files (video_problems.sql)."""
    refresh_usable(con)
    return run_query(con, "internal/video_problems", roots=list(roots) if roots is not None else None)


def coverage(con: duckdb.DuckDBPyConnection, by: str) -> pl.DataFrame:
    """Clips, clips with a file and clips with a usable file, per subset, action or scene."""
    if by not in ("subset", "action", "scene"):
        raise InputError(f"coverage by {by!r}: choose subset, action or scene")
    require_clips(con, None)
    refresh_usable(con)
    return run_query(con, "internal/video_coverage", by=by).rename({"group": by})
