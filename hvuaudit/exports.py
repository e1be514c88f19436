"""A split folder in the formats of other tools: ``hvuaudit export mmaction SPLIT_DIR``.

Where it sits: after ``hvuaudit split``, beside the trainer. It reads a split folder
(:mod:`hvucontracts.splitfolder`) and the store the split was built from, which must hold the same
annotation files (the manifest's sha256 of each): a split folder keeps three of HVU's six
categories, and mmaction2's lists carry all six. Writes a folder atomically with an ownership
marker, so that ``--force`` replaces only an export that hvuaudit wrote.

mmaction2's HVU format (its ``tools/data/hvu``): ``hvu_tags.json`` maps each category to its tags
sorted by code point (their ``parse_tag_list.py``), and a list per set of
``{"filename": "<youtube_id>_<start×10:06d>_<end×10:06d>.mp4", "label": {category: [index, ...]}}``,
the indices into that category's sorted tags in the order of the clip's Tags, and only the
categories the clip has (their ``generate_file_list.py`` in ``videos`` mode).

Never imports torch, textual, the trainer, the evaluator or the demo.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from hvuaudit import __version__
from hvuaudit.categories import HVU_CATEGORIES
from hvuaudit.errors import InputError
from hvuaudit.store import run_query, store_path, store_sources
from hvucontracts import splitfolder
from hvucontracts.files import (
    check_replaceable,
    make_staging_dir,
    remove_stale_staging,
    replace_folder,
    write_bytes_atomically,
    write_owner_marker,
)
from hvucontracts.splitfolder import SplitFolder, clip_filename, json_bytes

MMACTION_KIND = "mmaction-export"  # the kind in the export folder's ownership marker
MMACTION_TAGS = "hvu_tags.json"
EXPORT_RECORD = "export.json"  # what was exported, from what


def mmaction_list_name(set_name: str) -> str:
    """mmaction2's name of a set's list of videos: hvu_train_video.json, hvu_val_video.json, ..."""
    return f"hvu_{set_name}_video.json"


def check_same_store(con: duckdb.DuckDBPyConnection, split: SplitFolder) -> None:
    """Refuse (exit 3) a store that does not hold every annotation file the split was built from."""
    manifest = split.dir / splitfolder.MANIFEST
    recorded = {
        source.get("sha256"): source.get("path")
        for source in (split.manifest.get("source") or {}).get("sources") or []
        if isinstance(source, dict)
    }
    if not recorded:
        raise InputError(
            f"{manifest}: records no annotation files (source.sources), so the store it came from is unknown",
            hint="rebuild the split with `hvuaudit split`",
        )
    held = {source.sha256 for source in store_sources(con)}
    missing = [path for sha, path in recorded.items() if sha not in held]
    if missing:
        raise InputError(
            f"{manifest}: the split was built from {', '.join(str(m) for m in missing)}, which this store "
            f"({store_path(con)}) does not hold (by sha256)",
            hint="pass the --db the split was made from",
        )


def vocabulary(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Each HVU category's tags, sorted by code point (mmaction2's convention)."""
    frame = run_query(con, "internal/export_vocabulary")
    return {
        category: sorted(frame.filter(pl.col("category") == category)["tag"].to_list())
        for category in HVU_CATEGORIES
    }


def clip_tags(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, where: Path) -> list[dict[str, list[str]]]:
    """Per row of a split set: its tags by category, in the order of the clip's Tags."""
    ids = frame.select(pl.int_range(pl.len()).alias("row"), "clip_id")
    con.register("export_clips", ids)
    try:
        tags = run_query(con, "internal/export_clip_tags")
    finally:
        con.unregister("export_clips")
    unknown = tags.filter(pl.col("tag").is_null())
    if unknown.height:
        first = unknown.row(0, named=True)
        raise InputError(
            f"{where}: row {first['row'] + 2} (clip {first['clip_id']}) is not in this store "
            f"({unknown.height} clip(s) are not)",
            hint="pass the --db the split was made from",
        )
    out: list[dict[str, list[str]]] = [{} for _ in range(frame.height)]
    for row, tag, category in tags.select("row", "tag", "category").iter_rows():
        if category in HVU_CATEGORIES:
            out[row].setdefault(category, []).append(tag)
    return out


def mmaction_files(con: duckdb.DuckDBPyConnection, split: SplitFolder) -> dict[str, bytes]:
    """hvu_tags.json and a list per set of the split (train, select, val, eval_*), as mmaction2 reads them."""
    check_same_store(con, split)
    tags_of = vocabulary(con)
    index = {category: {tag: i for i, tag in enumerate(tags)} for category, tags in tags_of.items()}
    files: dict[str, bytes] = {MMACTION_TAGS: json_bytes(tags_of)}
    counts: dict[str, int] = {}
    for name, frame in split.sets.items():
        where = split.dir / _set_file(split, name)
        labels = clip_tags(con, frame, where)
        items: list[dict[str, Any]] = []
        for row, clip in zip(frame.iter_rows(named=True), labels, strict=True):
            label = {
                category: [index[category][tag] for tag in clip[category]]
                for category in HVU_CATEGORIES
                if category in clip
            }
            items.append(
                {"filename": clip_filename(row, splitfolder.NAME_TEMPLATES["mmaction"]), "label": label}
            )
        files[mmaction_list_name(name)] = json_bytes(items)
        counts[name] = len(items)
    files[EXPORT_RECORD] = json_bytes(
        {
            "format": "mmaction2 HVU (tools/data/hvu): hvu_tags.json + hvu_SET_video.json",
            "split": str(split.dir),
            "variant": split.manifest.get("variant"),
            "sets": counts,
            "store": str(store_path(con)),
            "sources": (split.manifest.get("source") or {}).get("sources"),
            "tool": f"hvuaudit {__version__}",
        }
    )
    return files


def _set_file(split: SplitFolder, name: str) -> str:
    return splitfolder.set_files(split.dir, split.manifest).get(name, f"{name}.csv")


def write_export(out: Path, kind: str, files: dict[str, bytes], *, force: bool, protected: list) -> Path:
    """Write ``files`` as the folder ``out`` in one rename (a kill leaves the old folder or the new one)."""
    out = Path(out)
    check_replaceable(out, kind=kind, protected=protected, force=force)
    remove_stale_staging(out)
    staging = make_staging_dir(out)
    try:
        write_owner_marker(staging, kind, files)  # first: a staging folder left by a kill is provably ours
        for name, data in files.items():
            write_bytes_atomically(staging / name, data)
        replace_folder(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
