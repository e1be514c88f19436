"""The split folder: the one format that ``hvuaudit split`` writes and the trainer reads.

Where it sits: between the audit core (``hvuaudit.splits`` writes the folder) and the
trainer (``trainer.videos`` and ``trainer.train`` read it); ``hvuaudit split verify``
reads it back too. Both sides import this module, so the format string, the file
names, the CSV columns, the label lists and the clip-file name templates are written
once, here.

A split folder holds:

* ``manifest.json``: ``format`` (:data:`SPLIT_FORMAT`), the variant, parameters,
  counts, provenance, ``eval_sets`` (set name → CSV file in the folder) and, when
  known, ``videos`` (``dir`` and ``name_template``);
* ``train.csv``, ``val.csv`` and any ``eval_NAME.csv``: one row per clip with the
  columns :data:`COLUMNS` (tags joined with ``|``);
* ``select.csv`` when the manifest's ``select_set`` names it: the selection set, clips of
  training pairs held out of ``train.csv``, on which the trainer picks ``best.pt``, steps
  its plateau schedule and stops early (:attr:`SplitFolder.selection_set`);
* ``labels.json``: the label order of each head (:data:`LABEL_KEYS`);
* ``.hvuaudit-owned.json``: the ownership marker (:mod:`hvucontracts.files`).

Standard library only at import; reading a CSV imports polars inside the function,
because both halves already depend on it and a split holds up to 572k rows.
Never imports ``hvuaudit`` or ``trainer``.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hvucontracts.errors import InputError

if TYPE_CHECKING:  # polars is imported where a CSV is read
    import polars as pl

SPLIT_FORMAT = "hvuaudit-split/1"
SPLIT_KIND = "split"  # the kind in a split folder's ownership marker
MANIFEST = "manifest.json"
LABELS = "labels.json"
TRAIN_CSV = "train.csv"
VAL_CSV = "val.csv"
SELECT_CSV = "select.csv"
SELECT = "select"  # the selection set's name among the sets
SET_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")  # what an evaluation set may be called
# `hvuaudit split --select-fraction` default: the share of each action's training clips held out as
# select.csv (docs/splits.md, "The selection set", says why 0.1).
SELECT_FRACTION = 0.1
SIDES = ("train", SELECT, "val")  # the sides of a split, in the order reports list them
COLUMNS = ("clip_id", "youtube_id", "time_start", "time_end", "action", "scene", "scenes", "objects")
# Every action tag of the clip, '|'-joined in the order of its Tags (the primary `action` among them): what
# the any-of top-1 accuracy counts as right. Folders from before it read it as the primary action alone.
ACTIONS = "actions"
# Written when the store knows the clips' files (`hvuaudit videos scan`): the file, relative to the manifest's
# videos.dir (absolute when it lies elsewhere; '' when the clip has none), and "1" when that file is the
# whole YouTube video, to be cut at time_start/time_end. Read as '' from folders without them.
VIDEO_COLUMNS = ("video", "video_whole")
OPTIONAL_COLUMNS = (ACTIONS, *VIDEO_COLUMNS)  # written after COLUMNS when a set has them
LABEL_KEYS = ("action", "scene", "object")
REBUILD = "rebuild the split folder with `hvuaudit split`"

# --name-template presets, written in the language of a custom template (str.format fields). They are the
# names the download tools write: mmaction2's tools/data/hvu/download.py (`int(t * 10)`, '%06d'), and
# HVU-Downloader's HVU_download.py ('%06d' % t truncates the seconds, and the trimmed clip is
# `<name>_.mp4`, the untrimmed download being deleted).
NAME_TEMPLATES = {
    "mmaction": "{youtube_id}_{start10:06d}_{end10:06d}.mp4",
    "downloader": "{youtube_id}_{start_s:06d}_{end_s:06d}_.mp4",
    "raw": "{youtube_id}_{time_start}_{time_end}.mp4",
}
DEFAULT_TEMPLATE = "mmaction"
# The name "template" of a split built from a scanned store: each row's file is its `video` column.
SCANNED = "scanned"
TEMPLATE_FIELDS = (
    "youtube_id",
    "clip_id",
    "action",
    "time_start",
    "time_end",
    "start10",
    "end10",
    "start_s",
    "end_s",
)


class SplitFolderError(InputError):
    """The split folder is missing a file, has the wrong format or a bad row (exit 3)."""


class VideosError(InputError):
    """No videos directory, a missing one, or a name template that does not work (exit 3)."""


# --------------------------------------------------------------------------- clip file names
def template_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The fields a name template may use, for one split row."""
    start, end = float(row["time_start"]), float(row["time_end"])
    return {
        "youtube_id": row["youtube_id"],
        "clip_id": row["clip_id"],
        "action": row["action"],
        "time_start": start,
        "time_end": end,
        # truncated, as the download tools do (int() and '%06d' drop the fraction): 41.5 s is 000041
        "start10": int(start * 10),
        "end10": int(end * 10),
        "start_s": int(start),
        "end_s": int(end),
    }


def clip_filename(row: dict[str, Any], template: str) -> str:
    """The file name of one split row: its recorded file (:data:`SCANNED`), a preset, or a format string."""
    if template == SCANNED:
        return str(row.get("video") or "")
    return NAME_TEMPLATES.get(template, template).format(**template_fields(row))


# The fields that tell one clip of a video from another: a template without any names one file per video.
CLIP_FIELDS = frozenset(TEMPLATE_FIELDS) - {"youtube_id", "action"}


def template_field_names(template: str) -> set[str]:
    """The fields a preset or format string uses (``{start10:06d}`` counts as ``start10``)."""
    return {
        name for _, name, _, _ in string.Formatter().parse(NAME_TEMPLATES.get(template, template)) if name
    }


def clip_window(row: dict[str, Any], template: str) -> tuple[float, float] | None:
    """(time_start, time_end) when the row's file is the whole YouTube video, which the decoder must cut;
    None when the file is the clip itself."""
    if template == SCANNED:
        whole = str(row.get("video_whole") or "") == "1"
    else:
        whole = not (template_field_names(template) & CLIP_FIELDS)
    return (float(row["time_start"]), float(row["time_end"])) if whole else None


def check_template(template: str) -> None:
    """Reject a custom template that cannot format a row."""
    if template == SCANNED:
        return
    example = {"youtube_id": "abc", "clip_id": "c", "action": "a", "time_start": 1.5, "time_end": 3.0}
    fmt = NAME_TEMPLATES.get(template, template)
    if "{" not in fmt:
        raise VideosError(
            f"--name-template {template!r} is neither a preset ({', '.join([*NAME_TEMPLATES, SCANNED])}) nor "
            "a format "
            "string with fields such as {youtube_id}"
        )
    try:
        clip_filename(example, template)
    except (KeyError, IndexError, ValueError) as exc:
        raise VideosError(
            f"--name-template {template!r} does not work ({type(exc).__name__}: {exc}); "
            f"its fields are {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}"
        ) from exc


def recorded_videos(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest's ``videos`` entry (``dir``, ``name_template``), or {} when it has none."""
    videos = manifest.get("videos")
    return videos if isinstance(videos, dict) else {}


def resolve_name_template(
    cli_value: str | None, manifest: dict[str, Any], videos_dir: Path | str | None = None
) -> str:
    """``--name-template``, else the template a prepared videos folder declares (``videos prepare``),
    else the manifest's ``videos.name_template`` (:data:`SCANNED` for a split of a scanned store), else
    mmaction."""
    from hvucontracts.videofolder import folder_template

    prepared = folder_template(videos_dir) if videos_dir is not None else None
    template = cli_value or prepared or recorded_videos(manifest).get("name_template") or DEFAULT_TEMPLATE
    check_template(template)
    return template


# --------------------------------------------------------------------------- writing
def json_bytes(document: Any) -> bytes:
    """How every JSON file of the folder is spelled: indented, UTF-8, a final newline."""
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def csv_bytes(frame: pl.DataFrame) -> bytes:
    """One set of the split as CSV: the columns of :data:`COLUMNS`, then those of :data:`OPTIONAL_COLUMNS`
    that the frame has."""
    return (
        frame.select([*COLUMNS, *[c for c in OPTIONAL_COLUMNS if c in frame.columns]])
        .write_csv()
        .encode("utf-8")
    )


def eval_set_file(name: str) -> str:
    """The CSV file of an extra evaluation set."""
    return f"eval_{name}.csv"


# --------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class SplitFolder:
    """A split folder, read and checked."""

    dir: Path
    manifest: dict[str, Any]
    labels: dict[str, list[str]]
    sets: dict[str, pl.DataFrame]
    """"train", "val" and every extra evaluation set, with the columns of COLUMNS."""
    eval_sets: tuple[str, ...]
    """Names of the evaluation sets, "val" first."""

    @property
    def selection_set(self) -> str:
        """The set that model selection reads: "select" when the folder has one, else "val".

        "val" is the test pairs of a Scene-Invariant split; selecting on it is what older folders
        (and ``--select-fraction 0``) leave as the only choice, and the trainer and ``eval`` warn.
        """
        return SELECT if SELECT in self.sets else "val"

    def selection_warning(self) -> str | None:
        """What ``train`` and ``eval`` print when model selection reads the test pairs, else None."""
        if self.selection_set != "val":
            return None
        if (self.dir / SELECT_CSV).is_file():
            return (
                f"warning: {self.dir / MANIFEST} does not name its {SELECT_CSV} (select_set), so best.pt, "
                f"the plateau schedule and early stopping read {VAL_CSV}, the set that is scored; rebuild "
                "the split with `hvuaudit split`"
            )
        return (
            f"warning: {self.dir} has no {SELECT_CSV}, so best.pt, the plateau schedule and early stopping "
            f"read {VAL_CSV}, the set that is scored: its scores are optimistic. Rebuild the split with "
            f"`hvuaudit split` (--select-fraction {SELECT_FRACTION} by default) for a selection set of "
            "training pairs"
        )


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise SplitFolderError(f"{path}: missing; {what}. Rebuild the split folder with `hvuaudit split`")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, or not JSON
        raise SplitFolderError(f"{path}: not valid JSON ({exc}); {REBUILD}") from exc


def check_labels(path: Path, labels: Any) -> dict[str, list[str]]:
    """labels.json: a list of distinct names for each head, a non-empty action list."""
    if not isinstance(labels, dict):
        raise SplitFolderError(f"{path}: expected an object with 'action', 'scene' and 'object' lists")
    out = {}
    for key in LABEL_KEYS:
        values = labels.get(key)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise SplitFolderError(
                f"{path}: '{key}' must be a list of names; rebuild the split with `hvuaudit split`"
            )
        if len(set(values)) != len(values):
            raise SplitFolderError(
                f"{path}: '{key}' lists a name twice; rebuild the split with `hvuaudit split`"
            )
        out[key] = values
    if not out["action"]:
        raise SplitFolderError(f"{path}: the action vocabulary is empty; nothing to train")
    return out


def read_split_csv(path: Path, labels: dict[str, list[str]]) -> pl.DataFrame:
    """One CSV of the split, with times as floats and empty tag fields as ''.

    Every optional column is there: the video columns as '' and ``actions`` as the primary action when the
    file has none (a folder from before them)."""
    import polars as pl

    if not path.is_file():
        raise SplitFolderError(f"{path}: missing; rebuild the split folder with `hvuaudit split`")
    try:
        df = pl.read_csv(path, infer_schema_length=0)  # every column as text, on polars 1.0 too
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SplitFolderError(f"{path}: could not be read as CSV ({exc})") from exc
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise SplitFolderError(
            f"{path}: lacks column(s) {', '.join(missing)}; expected {','.join(COLUMNS)} "
            "(rebuild the split with `hvuaudit split`)"
        )
    present = [c for c in OPTIONAL_COLUMNS if c in df.columns]
    df = df.select([*COLUMNS, *present]).with_columns(pl.col(c).fill_null("") for c in [*COLUMNS, *present])
    df = df.with_columns(pl.lit("").alias(c) for c in VIDEO_COLUMNS if c not in present)
    if ACTIONS not in present:
        df = df.with_columns(pl.col("action").alias(ACTIONS))
    for col in ("time_start", "time_end"):
        cast = df[col].cast(pl.Float64, strict=False)
        bad = cast.is_null().arg_true()
        if len(bad):
            row = int(bad[0])
            raise SplitFolderError(f"{path}: row {row + 2} has {col} {df[col][row]!r}, which is not a number")
        df = df.with_columns(cast.alias(col))
    unknown = df.with_row_index("row").filter(~pl.col("action").is_in(labels["action"]))
    if unknown.height:
        first = unknown.row(0, named=True)
        raise SplitFolderError(
            f"{path}: row {first['row'] + 2} (clip {first['clip_id']}) has action {first['action']!r}, which "
            "labels.json does not list; rebuild the split folder with `hvuaudit split`"
        )
    return df


def read_manifest(root: Path) -> dict[str, Any]:
    """manifest.json of a split folder, checked for this version's format."""
    manifest = _read_json(root / MANIFEST, "it says what the split is")
    if not isinstance(manifest, dict) or manifest.get("format") != SPLIT_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise SplitFolderError(
            f"{root / MANIFEST}: format is {found!r}, expected {SPLIT_FORMAT!r}; "
            "rebuild the split folder with this version's `hvuaudit split`"
        )
    return manifest


def set_files(root: Path, manifest: dict[str, Any]) -> dict[str, str]:
    """Set name → CSV file: train, val, select (when the manifest names it), then the extra evaluation
    sets (all inside ``root``)."""
    files = {"train": TRAIN_CSV, "val": VAL_CSV}
    select = manifest.get("select_set")
    if select is not None:
        if select != SELECT_CSV:
            raise SplitFolderError(
                f"{root / MANIFEST}: 'select_set' is {select!r}; it can only be {SELECT_CSV!r} ({REBUILD})"
            )
        files[SELECT] = SELECT_CSV
    extra = manifest.get("eval_sets") or {}
    if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
        raise SplitFolderError(f"{root / MANIFEST}: 'eval_sets' must map set names to CSV file names")
    for name, file in extra.items():
        if not SET_NAME.fullmatch(name):  # a set's name becomes file names of its own (run folders, exports)
            raise SplitFolderError(
                f"{root / MANIFEST}: eval_sets has a set named {name!r}; a set's name is letters, digits, "
                f"'_', '-' and '.', not starting with '.' ({REBUILD})"
            )
        if name in ("train", SELECT):
            raise SplitFolderError(f"{root / MANIFEST}: {name!r} cannot be an evaluation set name")
        if Path(file).is_absolute() or (root / file).resolve().parent != root.resolve():
            raise SplitFolderError(
                f"{root / MANIFEST}: eval_sets entry {name!r} points to {file!r}, outside the split "
                "folder; an evaluation set must be a CSV file in the folder itself "
                "(rebuild it with `hvuaudit split`)"
            )
        files.setdefault(name, file)
    return files


def load_split(path: str | Path) -> SplitFolder:
    """Read and check a split folder (format, files, columns, labels)."""
    root = Path(path)
    if not root.is_dir():
        raise SplitFolderError(
            f"split folder {root} does not exist; write one with `hvuaudit split --out {root}`"
        )
    manifest = read_manifest(root)
    labels = check_labels(root / LABELS, _read_json(root / LABELS, "it holds the label order"))
    files = set_files(root, manifest)
    sets = {name: read_split_csv(root / file, labels) for name, file in files.items()}
    for name in ("train", "val", SELECT):
        if name in sets and sets[name].height == 0:
            raise SplitFolderError(
                f"{root / files[name]}: has no rows; rebuild the split with `hvuaudit split`"
            )
    return SplitFolder(
        dir=root.resolve(),
        manifest=manifest,
        labels=labels,
        sets=sets,
        eval_sets=("val", *[n for n in files if n not in ("train", "val", SELECT)]),
    )
