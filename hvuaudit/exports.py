"""A split folder in the formats of other tools: ``hvuaudit export mmaction|fiftyone SPLIT_DIR``.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from hvuaudit import __version__
from hvuaudit.categories import HVU_CATEGORIES
from hvuaudit.errors import ConflictError, InputError
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
FIFTYONE_KIND = "fiftyone-export"
FIFTYONE_SAMPLES = "samples.json"
# The sample field of each HVU category's tags in the FiftyOne export.
FIFTYONE_FIELDS = {category: f"{category}s" for category in HVU_CATEGORIES}
# Every field the samples carry beside FiftyOne's own (filepath, tags, ...), in the string form of a field
# that Dataset.from_dict's "sample_fields" takes (from_dict adds samples without expanding the schema).
_FIELD = "fiftyone.core.fields."
_CLASSIFICATION = f"{_FIELD}EmbeddedDocumentField(fiftyone.core.labels.Classification)"
FIFTYONE_SCHEMA = {
    "clip_id": f"{_FIELD}StringField",
    "youtube_id": f"{_FIELD}StringField",
    "time_start": f"{_FIELD}FloatField",
    "time_end": f"{_FIELD}FloatField",
    "primary_action": _CLASSIFICATION,
    "chosen_scene": _CLASSIFICATION,
    **{
        name: f"{_FIELD}EmbeddedDocumentField(fiftyone.core.labels.Classifications)"
        for name in FIFTYONE_FIELDS.values()
    },
}
FIFTYONE_RUN_SCHEMA = {  # with --run
    "prediction": _CLASSIFICATION,
    "correct": f"{_FIELD}BooleanField",
    "features": f"{_FIELD}ListField({_FIELD}FloatField)",
}
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


@dataclass
class ClipTags:
    """The store's tags of a split set's clips, and what it could not place in HVU's categories."""

    by_row: list[dict[str, list[str]]]  # per row: category -> tags, in the order of the clip's Tags
    outside: dict[str, int] = field(default_factory=dict)  # tag of no HVU category -> clips that carry it


def clip_tags(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, where: Path) -> ClipTags:
    """Per row of a split set: its tags by category, in the order of the clip's Tags. Refuses (exit 3) a
    row whose clip the store does not hold, a clip listed twice, and a row whose youtube id or times differ
    from the store's clip (a hand-edited CSV)."""
    twice = frame.with_row_index("row").filter(pl.col("clip_id").is_duplicated())
    if twice.height:
        first = twice.row(0, named=True)
        raise InputError(
            f"{where}: row {first['row'] + 2} (clip {first['clip_id']}) lists a clip that another row lists "
            f"too ({twice.height} rows do)",
            hint="rebuild the split with `hvuaudit split`",
        )
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
    stored = tags.unique("row", keep="first", maintain_order=True).with_columns(pl.col("row").cast(pl.Int64))
    # row indices as Int64 on both sides (polars' own are UInt32, DuckDB's BIGINT)
    rows = frame.select("youtube_id", "time_start", "time_end").with_row_index("row").cast({"row": pl.Int64})
    differ = rows.join(stored, on="row").filter(
        (pl.col("youtube_id") != pl.col("store_youtube_id"))
        | ((pl.col("time_start") - pl.col("store_time_start")).abs() > 1e-9)
        | ((pl.col("time_end") - pl.col("store_time_end")).abs() > 1e-9)
    )
    if differ.height:
        first = differ.row(0, named=True)
        raise InputError(
            f"{where}: row {first['row'] + 2} names clip {frame['clip_id'][first['row']]} with "
            f"{first['youtube_id']} {first['time_start']}–{first['time_end']}, but the store's clip is "
            f"{first['store_youtube_id']} {first['store_time_start']}–{first['store_time_end']} "
            f"({differ.height} rows differ)",
            hint="rebuild the split with `hvuaudit split`; the CSV was changed by hand",
        )
    out = ClipTags(by_row=[{} for _ in range(frame.height)])
    for row, tag, category in tags.select("row", "tag", "category").iter_rows():
        if category in HVU_CATEGORIES:
            out.by_row[row].setdefault(category, []).append(tag)
        else:  # a tag ingested with --allow-unknown: mmaction2's lists have no place for it
            out.outside[tag] = out.outside.get(tag, 0) + 1
    return out


def mmaction_files(con: duckdb.DuckDBPyConnection, split: SplitFolder) -> dict[str, bytes]:
    """hvu_tags.json and a list per set of the split (train, select, val, eval_*), as mmaction2 reads them."""
    check_same_store(con, split)
    tags_of = vocabulary(con)
    index = {category: {tag: i for i, tag in enumerate(tags)} for category, tags in tags_of.items()}
    files: dict[str, bytes] = {MMACTION_TAGS: json_bytes(tags_of)}
    counts: dict[str, int] = {}
    outside: dict[str, int] = {}
    for name, frame in split.sets.items():
        where = split.dir / _set_file(split, name)
        labels = clip_tags(con, frame, where)
        for tag, n in labels.outside.items():
            outside[tag] = outside.get(tag, 0) + n
        items: list[dict[str, Any]] = []
        named: dict[str, str] = {}
        for row, clip in zip(frame.iter_rows(named=True), labels.by_row, strict=True):
            file_name = clip_filename(row, splitfolder.NAME_TEMPLATES["mmaction"])
            if file_name in named:  # times that differ below a tenth of a second get one mmaction name
                raise InputError(
                    f"{where}: clips {named[file_name]} and {row['clip_id']} get the same mmaction2 file "
                    f"name {file_name} (it keeps a tenth of a second)",
                    hint="mmaction2 cannot tell them apart; leave one of them out of the annotation file",
                )
            named[file_name] = row["clip_id"]
            label = {
                category: [index[category][tag] for tag in clip[category]]
                for category in HVU_CATEGORIES
                if category in clip
            }
            items.append({"filename": file_name, "label": label})
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
            # tags of no HVU category (ingested with --allow-unknown) are in no list: clips per tag
            "tags_outside_hvu_categories": dict(sorted(outside.items())),
            "tool": f"hvuaudit {__version__}",
        }
    )
    return files


def _classification(label: str) -> dict[str, Any]:
    return {"_cls": "Classification", "label": label}


def _run_outputs(run: Path, split: SplitFolder) -> dict[str, dict[str, tuple[str, list[float]]]]:
    """Per set, clip_id -> (predicted action, features) from a run's features.npz (``hvuaudit eval``)."""
    import numpy as np

    from hvucontracts import runfolder

    path = run / runfolder.FEATURES
    if not path.is_file():
        raise InputError(f"{path}: missing", hint=f"score the run first: hvuaudit eval {run}")
    try:
        arrays = np.load(path)
        names = [str(n) for n in arrays["action_names"]]
        sets = [str(n) for n in arrays["sets"]]
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(
            f"{path}: not a features.npz of `hvuaudit eval` ({exc})", hint=f"rerun: hvuaudit eval {run}"
        ) from exc
    if names != split.labels["action"]:
        raise InputError(
            f"{path}: its action labels are not those of {split.dir / splitfolder.LABELS}",
            hint="give a run trained on this split",
        )
    out: dict[str, dict[str, tuple[str, list[float]]]] = {}
    for name in sets:
        ids, preds, features = (arrays[f"{name}_{key}"] for key in ("clip_id", "pred", "features"))
        out[name] = {
            str(clip): (names[int(pred)], [round(float(x), 6) for x in feature])
            for clip, pred, feature in zip(ids, preds, features, strict=True)
        }
    return out


def fiftyone_files(
    con: duckdb.DuckDBPyConnection, split: SplitFolder, *, videos: Path | None = None, run: Path | None = None
) -> dict[str, bytes]:
    """samples.json (every clip of every set, with its file) and export.json."""
    from hvucontracts.splitfolder import recorded_videos, resolve_name_template

    check_same_store(con, split)
    videos_dir = videos or (
        Path(recorded_videos(split.manifest)["dir"]) if recorded_videos(split.manifest).get("dir") else None
    )
    if videos_dir is None:
        raise InputError(
            f"{split.dir / splitfolder.MANIFEST}: records no videos folder, and a FiftyOne sample is a file",
            hint="pass --videos DIR (the folder of the clips), or build the split with --videos DIR",
        )
    template = resolve_name_template(None, split.manifest, videos_dir)
    outputs = _run_outputs(run, split) if run is not None else {}
    samples: list[dict[str, Any]] = []
    without_file: dict[str, int] = {}
    for name, frame in split.sets.items():
        labels = clip_tags(con, frame, split.dir / _set_file(split, name)).by_row
        for row, clip in zip(frame.iter_rows(named=True), labels, strict=True):
            file_name = clip_filename(row, template)
            if not file_name:  # a scanned store found no file for this clip
                without_file[name] = without_file.get(name, 0) + 1
                continue
            sample: dict[str, Any] = {
                "filepath": str((videos_dir / file_name).resolve()),
                "tags": [name],
                "clip_id": row["clip_id"],
                "youtube_id": row["youtube_id"],
                "time_start": row["time_start"],
                "time_end": row["time_end"],
                "primary_action": _classification(row["action"]),
            }
            if row["scene"]:
                sample["chosen_scene"] = _classification(row["scene"])
            for category, field_name in FIFTYONE_FIELDS.items():
                sample[field_name] = {
                    "_cls": "Classifications",
                    "classifications": [_classification(tag) for tag in clip.get(category, [])],
                }
            if row["clip_id"] in outputs.get(name, {}):
                predicted, features = outputs[name][row["clip_id"]]
                sample["prediction"] = _classification(predicted)
                sample["correct"] = predicted == row["action"]
                sample["features"] = features
            samples.append(sample)
    schema = {**FIFTYONE_SCHEMA, **(FIFTYONE_RUN_SCHEMA if run is not None else {})}
    document = {
        "name": f"hvu-{split.dir.name}",
        "media_type": "video",
        "sample_fields": schema,
        "samples": samples,
    }
    record = {
        "format": "FiftyOne: samples.json is the dictionary of fiftyone.Dataset.from_dict",
        "split": str(split.dir),
        "variant": split.manifest.get("variant"),
        "samples": len(samples),
        "without_a_file": without_file,
        "videos_dir": str(videos_dir.resolve()),
        "name_template": template,
        "run": str(run.resolve()) if run is not None else None,
        "store": str(store_path(con)),
        "sources": (split.manifest.get("source") or {}).get("sources"),
        "tool": f"hvuaudit {__version__}",
    }
    return {FIFTYONE_SAMPLES: json_bytes(document), EXPORT_RECORD: json_bytes(record)}


def _set_file(split: SplitFolder, name: str) -> str:
    return splitfolder.set_files(split.dir, split.manifest).get(name, f"{name}.csv")


def write_export(out: Path, kind: str, files: dict[str, bytes], *, force: bool, protected: list) -> Path:
    """Write ``files`` as the folder ``out`` in one rename (a kill leaves the old folder or the new one)."""
    out = Path(out)
    for folder in protected:
        if folder is not None and Path(folder).is_dir() and Path(folder).resolve() in out.resolve().parents:
            raise ConflictError(
                f"refused to write {out}: it is inside {folder}, which the export reads",
                hint="choose an --out outside the split, the videos and the run folder",
            )
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
