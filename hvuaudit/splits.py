"""Scene-Invariant splits (paper §3.4) and the default split, exported as training-ready folders.

Sits between the store and the trainer: ``build_split`` runs the split rules
in SQL (``queries/internal/split_*.sql``) and returns both sides as polars
frames plus a report; ``export_split`` writes the split folder (manifest.json,
train.csv, val.csv, labels.json) through a temporary directory and a rename,
and saves the membership in ``split_members``; ``verify_split`` recomputes the
split from the store and checks the invariants. No per-clip Python loops.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import cast

import duckdb
import numpy as np
import polars as pl

from hvuaudit import __version__
from hvuaudit.errors import InputError, StoreError
from hvuaudit.store import require_clips, run_query, store_path, store_sources, transaction
from hvuaudit.videos.scan import has_scans, refresh_usable, require_scans
from hvucontracts import splitfolder
from hvucontracts.files import (
    check_replaceable,
    make_staging_dir,
    remove_stale_staging,
    replace_folder,
    write_bytes_atomically,
    write_owner_marker,
)
from hvucontracts.splitfolder import (
    SELECT_FRACTION,
    SPLIT_KIND,
    SplitFolder,
    csv_bytes,
    eval_set_file,
    json_bytes,
    load_split,
)

VARIANTS = {"default": "default", "1": "si1", "si1": "si1", "2": "si2", "si2": "si2"}


@dataclass(frozen=True)
class SplitParams:
    """Every knob of a split; stored verbatim in the manifest."""

    variant: str = "si2"
    min_videos: int = 124
    # None: 0.2, or no share limit when --max-train-scenes is given (docs/splits.md)
    val_fraction: float | None = None
    primary_action: str = "rarest"  # rarest | first | path to a CSV youtube_id,time_start,time_end,action
    subset: str | None = None
    videos: str | None = None
    name_template: str | None = None
    eval_subsets: tuple[
        str, ...
    ] = ()  # extra evaluation sets: whole store subsets, written as eval_<name>.csv
    strict: bool = False  # no validation clip carries any scene tag seen with its action in training
    max_train_scenes: int | None = None  # SI-2: at most this many (action, scene) pairs in training
    select_fraction: float = SELECT_FRACTION  # of each action's training clips, held out as select.csv
    select_seed: int = 0
    require_videos: bool = False  # only clips with a usable scanned video file (`hvuaudit videos scan`)

    def normalised(self) -> SplitParams:
        variant = VARIANTS.get(str(self.variant).lower())
        if variant is None:
            raise InputError(
                f"unknown variant '{self.variant}'", hint="use --variant default, 1 (SI-1) or 2 (SI-2)"
            )
        if self.max_train_scenes is not None:
            if variant != "si2":
                raise InputError(
                    f"--max-train-scenes applies to SI-2 only (got --variant {self.variant})",
                    hint="SI-2 keeps each action's most common pairs in training; use --variant 2",
                )
            if self.max_train_scenes < 1:
                raise InputError(f"--max-train-scenes must be at least 1 (got {self.max_train_scenes})")
        if self.strict and variant == "default":
            raise InputError(
                "--strict applies to the Scene-Invariant splits only",
                hint="the default split is HVU's own train/val subsets, which promise nothing about "
                "scenes; dropping clips from them would no longer be HVU's split. Use --variant 1 or 2",
            )
        val_fraction = self.val_fraction
        if val_fraction is None:
            val_fraction = 0.2 if self.max_train_scenes is None else 0.0
        elif not (0.0 < val_fraction < 1.0) and not (val_fraction == 0.0 and self.max_train_scenes):
            # 0 (no share limit) is what a manifest records for --max-train-scenes alone
            raise InputError(f"--val-fraction must be strictly between 0 and 1 (got {val_fraction})")
        if self.min_videos < 1:
            raise InputError(f"--min-videos must be at least 1 (got {self.min_videos})")
        if not 0.0 <= self.select_fraction < 1.0:
            raise InputError(
                f"--select-fraction must be in [0, 1) (got {self.select_fraction})",
                hint=f"a share of each action's training clips, e.g. {SELECT_FRACTION}; 0 writes no "
                "select.csv, and the trainer then selects on val",
            )
        videos = str(Path(self.videos).resolve()) if self.videos else None
        template = self.name_template or (splitfolder.DEFAULT_TEMPLATE if videos else None)
        eval_subsets = tuple(self.eval_subsets)
        if eval_subsets and (self.subset is None or self.subset in eval_subsets):
            raise InputError(
                "an --eval-subset must not also feed the split itself",
                hint="pass --subset for the split's own clips (e.g. --subset train)",
            )
        return SplitParams(
            variant,
            self.min_videos,
            val_fraction,
            self.primary_action,
            self.subset,
            videos,
            template,
            eval_subsets,
            bool(self.strict),
            self.max_train_scenes,
            float(self.select_fraction),
            int(self.select_seed),
            bool(self.require_videos),
        )


@dataclass
class SplitResult:
    params: SplitParams
    train: pl.DataFrame
    val: pl.DataFrame
    labels: dict[str, list[str]]
    report: dict = field(default_factory=dict)
    extra: dict[str, pl.DataFrame] = field(default_factory=dict)  # extra evaluation sets by name
    select: pl.DataFrame | None = None  # the selection set (None with --select-fraction 0)


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checks: list[tuple[str, bool, str]]


def _primary_override(params: SplitParams) -> pl.DataFrame:
    empty = pl.DataFrame(
        schema={
            "youtube_id": pl.String,
            "time_start": pl.Float64,
            "time_end": pl.Float64,
            "action": pl.String,
        }
    )
    if params.primary_action in ("rarest", "first"):
        return empty
    path = Path(params.primary_action)
    if not path.is_file():
        raise InputError(
            f"--primary-action '{params.primary_action}' is neither rarest, first nor an existing CSV file",
            hint="use rarest, first, or a CSV with columns youtube_id,time_start,time_end,action",
        )
    try:
        frame = pl.read_csv(path, schema_overrides={"youtube_id": pl.String, "action": pl.String})
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as CSV: {exc}") from exc
    missing = [c for c in empty.columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}, line 1: missing column(s) {', '.join(missing)}",
            hint="the header must be: youtube_id,time_start,time_end,action",
        )
    try:
        frame = frame.select(empty.columns).cast(empty.schema)
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{path}: time_start/time_end must be numbers ({exc})") from exc
    bad = frame.with_row_index("line", offset=2).filter(pl.any_horizontal(pl.all().is_null()))
    if bad.height:
        raise InputError(
            f"{path}, line {bad['line'][0]}: an empty field", hint="every row needs all four fields"
        )
    return frame


def build_split(con: duckdb.DuckDBPyConnection, params: SplitParams) -> SplitResult:
    """Apply the split rules; nothing is written anywhere."""
    explicit_template = params.name_template  # None: a scanned store's own files (SCANNED) are used
    params = params.normalised()
    require_clips(con, params.subset)
    scanned = has_scans(con)
    if params.require_videos:
        require_scans(con, "--require-videos")
    # what the clips of each side would have been without --require-videos: what missing files cost
    unrequired = (
        build_split(con, replace(params, require_videos=False)).report["videos"]
        if params.require_videos
        else None
    )
    if scanned:
        refresh_usable(con)
    override = _primary_override(params)
    rule = "file" if override.height else params.primary_action
    con.register("primary_override", override)
    try:
        candidates = run_query(
            con, "internal/split_candidates", subset=params.subset, variant=params.variant, rule=rule
        )
        if rule == "file":
            _check_override_matches(con, override, Path(params.primary_action))
        no_video = (
            int(run_query(con, "internal/split_require_videos")["clips"][0]) if params.require_videos else 0
        )
        if params.variant == "default":
            subsets = set(run_query(con, "internal/split_subsets")["subset"])
            if subsets != {"train", "val"}:
                raise InputError(
                    "the default split needs both a 'train' and a 'val' subset; the store has "
                    f"{sorted(subsets) or 'neither'}",
                    hint="ingest HVU_Train_V1.0.csv and HVU_Val_V1.0.csv, or use --variant 1 / 2",
                )
        left_out = run_query(
            con,
            "internal/split_assign",
            variant=params.variant,
            min_videos=params.min_videos,
            val_fraction=params.val_fraction,
            max_train_scenes=params.max_train_scenes,
        ).row(0, named=True)
        rows = run_query(con, "internal/split_rows")
    finally:
        con.unregister("primary_override")
    if rows.height == 0 and left_out["single_pair_actions"]:
        raise InputError(
            f"none of the {left_out['single_pair_actions']} action(s) left after --min-videos "
            f"{params.min_videos} "
            "has two (action, scene) pairs, so none can be split",
            hint="lower --min-videos, or use a larger subset",
        )
    if rows.height == 0:
        raise InputError(
            f"--min-videos {params.min_videos} leaves no action (the largest action has "
            f"{left_out['largest_action']} eligible clips)",
            hint=f"lower --min-videos to at most {left_out['largest_action']}",
        )
    train = rows.filter(pl.col("side") == "train").drop("side")
    val = rows.filter(pl.col("side") == "val").drop("side")
    strict_report = None
    if params.strict:
        train, val, strict_report = make_strict(train, val)
        if train.height == 0:
            raise InputError(
                "--strict leaves no action: every action's scenes overlap between the sides",
                hint="drop --strict, or lower --min-videos",
            )
        rows = pl.concat([train, val])
    train, select = _hold_out_selection(con, train, params)
    labels = {
        "action": sorted(set(rows["action"])),
        "scene": sorted({s for tags in rows["scenes"] for s in tags.split("|") if s}),
        "object": sorted({s for tags in rows["objects"] for s in tags.split("|") if s}),
    }
    counts = candidates.row(0, named=True)
    report = _report(train, val, params)
    report["select"] = {
        "fraction": params.select_fraction,
        "seed": params.select_seed,
        **(_side(select) if select is not None else {"clips": 0, "actions": 0, "pairs": 0}),
    }
    # actions whose round(fraction × clips) is 0, or whose pairs have no clip to spare
    report["select"]["actions_without_clips"] = (
        report["train"]["actions"] - report["select"]["actions"] if select is not None else 0
    )
    report["strict"] = strict_report or {"enabled": False}
    report["left_out"] = {
        "no_action": counts["no_action"],
        "no_scene": left_out["no_scene"],
        "below_min_videos": left_out["below_min_videos_or_one_side"],
        "actions_below_min_videos": left_out["actions_below_min_videos"],
        "single_pair_actions": left_out["single_pair_actions"],
        "single_pair_clips": left_out["single_pair_clips"],
    }
    report["candidate_clips"] = counts["clips"]
    report["left_out"]["no_video"] = no_video
    extra = _extra_eval_sets(con, params, labels["action"])
    if params.require_videos:  # the extra evaluation sets too hold only clips with a usable file
        usable = run_query(con, "internal/split_video_paths")["clip_id"].to_list()
        extra = {name: frame.filter(pl.col("clip_id").is_in(usable)) for name, frame in extra.items()}
    report["eval_sets"] = {name: frame.height for name, frame in extra.items()}
    result = SplitResult(params, train, val, labels, report, extra, select)
    if scanned:
        _attach_videos(con, result, explicit_template)
    report["videos"] = _video_coverage(result, scanned=scanned, unrequired=unrequired)
    return result


def _attach_videos(
    con: duckdb.DuckDBPyConnection, result: SplitResult, explicit_template: str | None
) -> None:
    """Give every set the columns ``video`` (the clip's scanned file, relative to the split's videos folder)
    and ``video_whole``; set that folder (``--videos``, else the scanned folders' common parent) and, unless
    ``--name-template`` chose another, the template :data:`~hvucontracts.splitfolder.SCANNED`."""
    frames = {"train": result.train, "val": result.val, **result.extra}
    if result.select is not None:
        frames["select"] = result.select
    ids = set().union(*(set(frame["clip_id"]) for frame in frames.values()))
    files = run_query(con, "internal/split_video_paths").filter(pl.col("clip_id").is_in(list(ids)))
    base = result.params.videos or (os.path.commonpath(sorted(set(files["root"]))) if files.height else None)
    if base is None:
        return
    located = _located(files, Path(base))

    def attach(frame: pl.DataFrame) -> pl.DataFrame:
        return (
            frame.drop("video", "video_whole", strict=False)
            .join(located, on="clip_id", how="left")
            .with_columns(pl.col("video").fill_null(""), pl.col("video_whole").fill_null(""))
        )

    result.train, result.val = attach(result.train), attach(result.val)
    result.extra = {name: attach(frame) for name, frame in result.extra.items()}
    if result.select is not None:
        result.select = attach(result.select)
    result.params = replace(
        result.params, videos=str(base), name_template=explicit_template or splitfolder.SCANNED
    )


def _located(files: pl.DataFrame, base: Path) -> pl.DataFrame:
    """clip_id, video (relative to ``base``) and video_whole ("1"/"0") of split_video_paths.sql's rows."""
    return files.select(
        "clip_id",
        pl.struct("root", "path")
        .map_elements(lambda f: _relative(Path(f["root"]) / f["path"], base), return_dtype=pl.String)
        .alias("video"),
        pl.when(pl.col("whole_video")).then(pl.lit("1")).otherwise(pl.lit("0")).alias("video_whole"),
    )


def _changed_videos(con: duckdb.DuckDBPyConnection, folder: SplitFolder, base: Path) -> int:
    """How many rows of a scanned split name another file (or none) than the store's scan now gives."""
    if not has_scans(con):
        return sum(frame.height for frame in folder.sets.values())
    refresh_usable(con)
    now = _located(run_query(con, "internal/split_video_paths"), base)
    changed = 0
    for frame in folder.sets.values():
        joined = frame.select("clip_id", "video", "video_whole").join(
            now, on="clip_id", how="left", suffix="_now"
        )
        changed += joined.filter(
            (pl.col("video") != pl.col("video_now").fill_null(""))
            | (pl.col("video_whole") != pl.col("video_whole_now").fill_null(""))
        ).height
    return changed


def _relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` with '/', or absolute when it lies elsewhere."""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _video_coverage(result: SplitResult, *, scanned: bool, unrequired: dict | None) -> dict:
    """Per side, clips and clips with a scanned file; with --require-videos, the same for the split that
    would have been built without it (what the missing files took away)."""
    sides = {"train": result.train, "select": result.select, "val": result.val, **result.extra}
    coverage: dict = {"scanned": scanned, "required": result.params.require_videos}
    for name, frame in sides.items():
        if frame is None:
            continue
        with_video = int((frame["video"] != "").sum()) if "video" in frame.columns else 0
        coverage[name] = {"clips": frame.height, "with_video": with_video}
    if unrequired is not None:
        coverage["without_require_videos"] = {k: v for k, v in unrequired.items() if isinstance(v, dict)}
    return coverage


def _hold_out_selection(
    con: duckdb.DuckDBPyConnection, train: pl.DataFrame, params: SplitParams
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Training clips without the selection set, and the selection set (None when the fraction is 0)."""
    if params.select_fraction == 0.0:
        return train, None
    con.register("split_train_frame", train.select("clip_id", "action", "scene"))
    try:
        chosen = run_query(
            con, "internal/split_select", fraction=params.select_fraction, seed=params.select_seed
        )
    finally:
        con.unregister("split_train_frame")
    if chosen.height == 0:
        largest = int(train.group_by("action").len()["len"].max() or 0)  # type: ignore[arg-type]
        if int(params.select_fraction * largest + 0.5) < 1:  # DuckDB's round: halves away from zero
            raise InputError(
                f"--select-fraction {params.select_fraction} is too small: it rounds to no clip even for the "
                f"largest action ({largest} training clips)",
                hint=f"use at least {0.5 / largest:.3g}, or --select-fraction 0 (the trainer then selects on "
                "val, the test pairs)",
            )
        raise InputError(
            f"--select-fraction {params.select_fraction} selects no clip: no action has a training pair "
            "with a clip to spare (each pair keeps one clip in training)",
            hint=(
                "raise --select-fraction, lower --min-videos, "
                if params.min_videos > 1
                else "raise --select-fraction, "
            )
            + "or pass --select-fraction 0 (the trainer then selects on val, the test pairs)",
        )
    return train.join(chosen, on="clip_id", how="anti"), train.join(chosen, on="clip_id", how="semi")


def _extra_eval_sets(
    con: duckdb.DuckDBPyConnection, params: SplitParams, actions: list[str]
) -> dict[str, pl.DataFrame]:
    """Clips of other store subsets, restricted to the split's actions (e.g. the demo's uniform set)."""
    extra = {}
    con.register("split_kept_actions", pl.DataFrame({"action": actions}))
    try:
        for subset in params.eval_subsets:
            require_clips(con, subset)
            extra[subset] = run_query(con, "internal/split_eval_rows", subset=subset)
    finally:
        con.unregister("split_kept_actions")
    return extra


def _check_override_matches(con: duckdb.DuckDBPyConnection, override: pl.DataFrame, path: Path) -> None:
    unknown = run_query(con, "internal/unknown_override_clips").rows()
    if unknown:
        y, s, e = unknown[0]
        raise InputError(
            f"{path}: {len(unknown)} clip(s) are not in the store, e.g. {y} {s:g}-{e:g}",
            hint="the file must list clips that were ingested (youtube_id, time_start, time_end)",
        )


STRICT_RULE = (
    "drop the fewest clips that leave no scene tag shared by a training and a validation clip of one "
    "action (a minimum vertex cover of the clips that share a tag; of equal covers, the one that drops "
    "training clips, so that the evaluation set stays as whole as it can); where that empties a side of "
    "an action, drop that action's sharing clips on one side only (the training side when it keeps both "
    "sides and is no larger); an action that loses a side either way is dropped"
)


def _scene_tags(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per (row of ``frame``, scene tag): every scene tag, not only the chosen one."""
    return (
        frame.with_row_index("row")
        .select("row", "action", pl.col("scenes").str.split("|").alias("tag"))
        .explode("tag")
        .filter(pl.col("tag").is_not_null() & (pl.col("tag") != ""))
    )


def seen_with_action(frame: pl.DataFrame, other: pl.DataFrame) -> pl.Series:
    """Per row of ``frame``: does any of its scene tags appear, among any scene tags, on a row of
    ``other`` with the same action? (``frame`` = val, ``other`` = train: the any-tag leakage.)"""
    seen = _scene_tags(other).select("action", "tag").unique()
    hits = _scene_tags(frame).join(seen, on=["action", "tag"], how="semi")["row"].to_numpy()
    mask = np.zeros(frame.height, dtype=bool)
    mask[hits] = True
    return pl.Series("seen", mask)


def _minimum_cover(train: pl.DataFrame, val: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The fewest clips whose removal leaves no scene tag shared by the two sides of any action.

    Join a training and a validation clip of one action when they share a scene tag: the clips
    to drop are a minimum vertex cover of that bipartite graph, found from a maximum matching by
    König's theorem. Returns boolean masks (train rows, val rows) of the clips to drop.
    """
    from scipy import sparse
    from scipy.sparse.csgraph import breadth_first_order, maximum_bipartite_matching

    t_tags, v_tags = _scene_tags(train), _scene_tags(val)
    keys = pl.concat([t_tags.select("action", "tag"), v_tags.select("action", "tag")]).unique()
    keys = keys.with_row_index("key")
    t, v = t_tags.join(keys, on=["action", "tag"]), v_tags.join(keys, on=["action", "tag"])
    n_t, n_v = train.height, val.height

    def incidence(rows: pl.DataFrame, n: int) -> sparse.csr_matrix:
        return sparse.csr_matrix(
            (np.ones(rows.height), (rows["row"].to_numpy(), rows["key"].to_numpy())), shape=(n, keys.height)
        )

    edges = (
        incidence(t, n_t) @ incidence(v, n_v).T
    ).tocsr()  # (train, val) clips of one action sharing a tag
    edges.data[:] = 1.0
    match = maximum_bipartite_matching(edges, perm_type="column")  # per training clip: its val clip, or -1
    # König: from every unmatched training clip, walk alternating paths (any edge to a val clip, the
    # matching edge back); the cover is the training clips not reached and the val clips reached.
    source = n_t + n_v
    rows, cols = edges.nonzero()
    matched = np.flatnonzero(match >= 0)
    heads = np.concatenate([rows, n_t + match[matched], np.full((match < 0).sum(), source)])
    tails = np.concatenate([n_t + cols, matched, np.flatnonzero(match < 0)])
    graph = sparse.csr_matrix((np.ones(heads.size), (heads, tails)), shape=(source + 1, source + 1))
    reached = np.zeros(source + 1, dtype=bool)
    reached[breadth_first_order(graph, source, directed=True, return_predecessors=False)] = True
    has_edge = np.asarray(edges.sum(axis=1)).ravel() > 0
    return has_edge & ~reached[:n_t], reached[n_t:source]


def _one_side_plan(train: pl.DataFrame, val: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per action, drop one side's sharing clips: the training ones when that leaves both sides,
    and there are no more of them than of the validation ones; else the validation ones."""
    train_leaky, val_leaky = seen_with_action(train, val), seen_with_action(val, train)

    def per_action(frame: pl.DataFrame, leaky: pl.Series, side: str) -> pl.DataFrame:
        return (
            frame.with_columns(leaky=leaky)
            .group_by("action")
            .agg(pl.len().alias(f"{side}_clips"), pl.col("leaky").sum().alias(f"{side}_leaky"))
        )

    plan = per_action(train, train_leaky, "train").join(
        per_action(val, val_leaky, "val"), on="action", how="full", coalesce=True
    )
    plan = plan.fill_null(0).with_columns(
        side=pl.when(
            (pl.col("train_leaky") <= pl.col("val_leaky")) & (pl.col("train_leaky") < pl.col("train_clips"))
        )
        .then(pl.lit("train"))
        .when(pl.col("val_leaky") < pl.col("val_clips"))
        .then(pl.lit("val"))
        .otherwise(pl.lit("train"))  # neither leaves both sides: the action will go
    )
    side_of = dict(zip(plan["action"], plan["side"], strict=True))
    on_train = np.array([side_of[a] == "train" for a in train["action"]], dtype=bool)
    on_val = np.array([side_of[a] == "val" for a in val["action"]], dtype=bool)
    return train_leaky.to_numpy() & on_train, val_leaky.to_numpy() & on_val


def make_strict(train: pl.DataFrame, val: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """Drop as few clips as :data:`STRICT_RULE` can, after which no validation clip shares a scene tag
    with a training clip of its action; an action that would lose a whole side is dropped and listed."""
    cover_train, cover_val = _minimum_cover(train, val)
    side_train, side_val = _one_side_plan(train, val)

    every_action = set(train["action"]) | set(val["action"])

    def empties(drop_train: np.ndarray, drop_val: np.ndarray) -> set[str]:
        """The actions left without a training or without a validation clip by these drops."""
        on_both = set(train.filter(pl.Series(~drop_train))["action"]) & set(
            val.filter(pl.Series(~drop_val))["action"]
        )
        return every_action - on_both

    # The minimum cover drops the fewest clips, but may empty a side of an action; there the one-side
    # drop is used, and an action that loses a side under both is dropped.
    fallback = empties(cover_train, cover_val)
    use_side_t = train["action"].is_in(sorted(fallback)).to_numpy()
    use_side_v = val["action"].is_in(sorted(fallback)).to_numpy()
    drop_train = np.where(use_side_t, side_train, cover_train)
    drop_val = np.where(use_side_v, side_val, cover_val)
    dropped_actions = sorted(empties(drop_train, drop_val))
    marked_train = train.with_columns(drop=pl.Series(drop_train))
    marked_val = val.with_columns(drop=pl.Series(drop_val))

    def keep(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.filter(~pl.col("drop") & ~pl.col("action").is_in(dropped_actions)).drop("drop")

    def actions_dropping(frame: pl.DataFrame) -> int:
        return frame.filter(pl.col("drop") & ~pl.col("action").is_in(dropped_actions))["action"].n_unique()

    kept_train, kept_val = keep(marked_train), keep(marked_val)
    report = {
        "enabled": True,
        "rule": STRICT_RULE,
        "dropped_train_clips": train.height - kept_train.height,
        "dropped_val_clips": val.height - kept_val.height,
        "actions_dropping_train_clips": actions_dropping(marked_train),
        "actions_dropping_val_clips": actions_dropping(marked_val),
        "actions_by_one_side_rule": len(fallback - set(dropped_actions)),
        "dropped_actions": dropped_actions,
    }
    return kept_train, kept_val, report


def _share(count: int, total: int) -> dict:
    return {"clips": count, "share": round(count / total, 6) if total else 0.0}


def _side(frame: pl.DataFrame) -> dict:
    return {
        "clips": frame.height,
        "actions": frame["action"].n_unique(),
        "pairs": frame.select("action", "scene").n_unique(),
    }


def _report(train: pl.DataFrame, val: pl.DataFrame, params: SplitParams) -> dict:
    scenes_per_action = train.filter(pl.col("scene") != "").group_by("action").agg(pl.col("scene").n_unique())
    # polars types a reduction as any Python literal; these columns are numeric, so it is a float
    median_scenes = (
        float(cast("float | None", scenes_per_action["scene"].median()) or 0.0)
        if scenes_per_action.height
        else 0.0
    )
    # Scene-only baseline: predict each val clip's action as its scene's most common training action.
    by_scene = (
        train.filter(pl.col("scene") != "")
        .group_by("scene", "action")
        .len()
        .sort(["scene", "len", "action"], descending=[False, True, False])
        .group_by("scene", maintain_order=True)
        .first()
        .select("scene", pl.col("action").alias("predicted"))
    )
    scored = val.filter(pl.col("scene") != "").join(by_scene, on="scene", how="left")
    baseline = (
        float(cast("float | None", (scored["predicted"] == scored["action"]).fill_null(False).mean()) or 0.0)
        if scored.height
        else 0.0
    )
    # H(action | scene) on training, in bits.
    joint = train.filter(pl.col("scene") != "").group_by("scene", "action").len()
    total = joint["len"].sum()
    entropy = 0.0
    if total:
        per_scene = joint.group_by("scene").agg(pl.col("len").sum().alias("n_scene"))
        joint = joint.join(per_scene, on="scene")
        entropy = float(-(joint["len"] / total * (joint["len"] / joint["n_scene"]).log(2)).sum())
    scenes = scenes_per_action["scene"] if scenes_per_action.height else pl.Series([0])
    return {
        "train": _side(train),
        "val": _side(val),
        "median_scenes_per_action_train": median_scenes,
        "train_scenes_per_action": {
            "q1": float(cast(float, scenes.quantile(0.25, "linear"))),
            "median": median_scenes,
            "q3": float(cast(float, scenes.quantile(0.75, "linear"))),
        },
        "scene_only_baseline": round(baseline, 6),
        "scene_only_baseline_all_tags": round(_scene_only_all_tags(train, val), 6),
        # any scene tag of a validation clip seen, among any tags, with its action in training
        "any_tag_leakage": _share(int(seen_with_action(val, train).sum()), val.height),
        # the validation clip's chosen scene seen among any tags of the action's training clips
        "chosen_scene_seen_in_training": _share(_chosen_seen(train, val), val.height),
        "conditional_entropy_action_given_scene_bits": round(entropy, 6) + 0.0,  # never -0.0
    }


def _chosen_seen(train: pl.DataFrame, val: pl.DataFrame) -> int:
    seen = _scene_tags(train).select("action", pl.col("tag").alias("scene")).unique()
    return val.filter(pl.col("scene") != "").join(seen, on=["action", "scene"], how="semi").height


def _scene_only_all_tags(train: pl.DataFrame, val: pl.DataFrame) -> float:
    """A scene-only rule that reads every scene tag: each validation clip's action is predicted as the
    training action that its scene tags meet most often (ties: the first by name)."""
    if val.height == 0:
        return 0.0
    counts = _scene_tags(train).group_by("tag", "action").len()
    votes = (
        _scene_tags(val)
        .select("row", "tag")
        .join(counts, on="tag")
        .group_by("row", "action")
        .agg(pl.col("len").sum())
        .sort(["row", "len", "action"], descending=[False, True, False])
        .group_by("row", maintain_order=True)
        .first()
    )
    # over the validation clips with a scene tag, as the chosen-scene baseline
    tagged = _scene_tags(val)["row"].unique()
    truth = val.with_row_index("row").filter(pl.col("row").is_in(tagged.to_list()))
    truth = truth.select("row", pl.col("action").alias("truth"))
    if truth.height == 0:
        return 0.0
    hit = truth.join(votes, on="row", how="left").select(
        (pl.col("action") == pl.col("truth")).fill_null(False)
    )
    return float(cast("float | None", hit.to_series().mean()) or 0.0)


def split_files(con: duckdb.DuckDBPyConnection, result: SplitResult, name: str) -> dict[str, bytes]:
    """The exact bytes of every file of the split folder."""
    manifest = {
        "format": splitfolder.SPLIT_FORMAT,
        "name": name,
        "variant": result.params.variant,
        "strict": result.params.strict,
        "params": {k: v for k, v in asdict(result.params).items() if k not in ("videos", "name_template")},
        "counts": result.report,
        "labels": {k: len(v) for k, v in result.labels.items()},
        "source": {"sources": [asdict(s) for s in store_sources(con)], "tool": f"hvuaudit {__version__}"},
        "eval_sets": {"val": splitfolder.VAL_CSV, **{name: eval_set_file(name) for name in result.extra}},
        "select_set": splitfolder.SELECT_CSV if result.select is not None else None,
    }
    if result.params.videos:
        manifest["videos"] = {"dir": result.params.videos, "name_template": result.params.name_template}
    return {
        splitfolder.MANIFEST: json_bytes(manifest),
        splitfolder.TRAIN_CSV: csv_bytes(result.train),
        splitfolder.VAL_CSV: csv_bytes(result.val),
        splitfolder.LABELS: json_bytes(result.labels),
        **({splitfolder.SELECT_CSV: csv_bytes(result.select)} if result.select is not None else {}),
        **{eval_set_file(name): csv_bytes(frame) for name, frame in result.extra.items()},
    }


def export_split(
    con: duckdb.DuckDBPyConnection, result: SplitResult, out: Path, *, force: bool = False
) -> Path:
    """Write the split folder atomically and save the membership in the store (read-write ``con``).

    ``out`` must be absent, empty, or (with ``force``) a split folder that hvuaudit wrote
    and that holds nothing else (:func:`hvucontracts.files.check_replaceable`). It may
    never be, or hold, the store or the videos folder.
    """
    out = Path(out)
    check_replaceable(out, kind=SPLIT_KIND, protected=[store_path(con), result.params.videos], force=force)
    remove_stale_staging(out)
    name = out.name
    files = split_files(con, result, name)
    sides = {"train": result.train, "val": result.val, splitfolder.SELECT: result.select}
    members = pl.concat(
        [frame.with_columns(side=pl.lit(side)) for side, frame in sides.items() if frame is not None]
    )
    con.register("split_members_frame", members.select("clip_id", "side", "action", "scene"))
    staging = make_staging_dir(out)
    try:
        # The marker first: a staging folder left by a kill is then provably ours.
        write_owner_marker(staging, SPLIT_KIND, files)
        for filename, data in files.items():
            write_bytes_atomically(staging / filename, data)
        # The store rows and the folder rename commit together: a failed rename rolls the rows back.
        with transaction(con):
            run_query(
                con,
                "internal/save_split",
                split=name,
                variant=result.params.variant,
                out_dir=str(out.resolve()),
                manifest=files[splitfolder.MANIFEST].decode("utf-8"),
            )
            replace_folder(staging, out)
    except (duckdb.Error, StoreError) as exc:
        raise StoreError(
            f"could not save the split in the store: {exc}",
            hint="the store must be writable: close other processes using it (a TUI?)",
        ) from exc
    finally:
        con.unregister("split_members_frame")
        # A fresh folder that only this call knows: whatever is still in it (a write cut short by a full
        # disk may leave it without its marker) is ours to delete.
        shutil.rmtree(staging, ignore_errors=True)
    return out


def verify_split(con: duckdb.DuckDBPyConnection, folder: Path) -> VerifyReport:
    """Check the eight invariants of a split folder against the store it was built from.

    Checks 1 to 5 read the training side as train.csv with select.csv (the split rules place both);
    check 7 reads train.csv alone, the clips that are trained on.
    """
    folder_read = load_split(folder)
    manifest, val = folder_read.manifest, folder_read.sets["val"]
    trained = folder_read.sets["train"]
    select = folder_read.sets.get(splitfolder.SELECT, trained.clear())
    train = pl.concat([trained, select])
    # folders written before select.csv existed record no fraction: they held nothing out
    videos = splitfolder.recorded_videos(manifest)
    params = SplitParams(
        **{
            "select_fraction": 0.0,
            **manifest["params"],
            "eval_subsets": tuple(manifest["params"].get("eval_subsets", ())),
            "videos": videos.get("dir"),
            "name_template": videos.get("name_template"),
        }
    )
    if videos.get("name_template") == splitfolder.SCANNED:
        # the split recorded the files of a scan; rebuilding it from another scan state proves nothing
        changed = _changed_videos(con, folder_read, Path(videos["dir"]))
        if changed:
            return VerifyReport(
                ok=False,
                checks=[
                    (
                        "0. the clips' video files are those the split recorded",
                        False,
                        f"{changed} row(s) name another file, or none, than the store's scan now does (a "
                        "rescan, a probe or `videos forget` since the split was built): rebuild the split "
                        "with `hvuaudit split`",
                    )
                ],
            )
    scene_invariant = manifest["variant"] in ("si1", "si2")
    checks: list[tuple[str, bool, str]] = []

    pairs_train = set(zip(train["action"], train["scene"], strict=True))
    pairs_val = set(zip(val["action"], val["scene"], strict=True))
    shared = pairs_train & pairs_val
    checks.append(
        (
            "1. no (action, scene) pair on both sides",
            not scene_invariant or not shared,
            f"{len(shared)} shared pair(s)" if shared else "ok",
        )
    )
    one_sided = set(train["action"]) ^ set(val["action"])
    checks.append(
        (
            "2. every action on both sides",
            not one_sided,
            f"only on one side: {sorted(one_sided)[:5]}" if one_sided else "ok",
        )
    )

    order_ok, detail = True, "ok"
    strict = bool(manifest["params"].get("strict", False))
    if strict:
        # --strict drops clips from the ordered split (so sizes may no longer be ordered); it never moves one
        ordered = build_split(con, replace(params, strict=False))
        ordered_train = set(ordered.train["clip_id"]) | set(_clip_ids(ordered.select))
        moved = (set(train["clip_id"]) - ordered_train) | (set(val["clip_id"]) - set(ordered.val["clip_id"]))
        order_ok = not moved
        detail = (
            "ok (strict: only drops clips of the ordered split)"
            if order_ok
            else f"{len(moved)} clip(s) moved"
        )
    elif scene_invariant:
        sizes_t = train.group_by("action", "scene").len()
        sizes_v = val.group_by("action", "scene").len()
        agg = (
            sizes_t.group_by("action")
            .agg(pl.col("len").min().alias("t_min"), pl.col("len").max().alias("t_max"))
            .join(
                sizes_v.group_by("action").agg(
                    pl.col("len").min().alias("v_min"), pl.col("len").max().alias("v_max")
                ),
                on="action",
            )
        )
        bad = (
            agg.filter(pl.col("v_max") > pl.col("t_min"))
            if manifest["variant"] == "si1"
            else agg.filter(pl.col("t_min") < pl.col("v_max"))
        )
        order_ok = bad.height == 0
        detail = "ok" if order_ok else f"{bad.height} action(s) out of order, e.g. {bad['action'][0]}"
    checks.append(("3. pair sizes ordered between sides", order_ok, detail))

    both = pl.concat([train["clip_id"], val["clip_id"]])
    duplicates = both.len() - both.n_unique()
    rebuilt = build_split(con, params)
    expected = set(rebuilt.train["clip_id"]) | set(rebuilt.val["clip_id"]) | set(_clip_ids(rebuilt.select))
    lost = expected - set(both)
    extra = set(both) - expected
    checks.append(
        (
            "4. every eligible clip exactly once",
            duplicates == 0 and not lost and not extra,
            f"{duplicates} duplicate(s), {len(lost)} missing, {len(extra)} unexpected",
        )
    )

    def scene_in_tags(frame: pl.DataFrame) -> int:
        return frame.filter(
            (pl.col("scene") != "") & ~pl.col("scenes").str.split("|").list.contains(pl.col("scene"))
        ).height

    wrong_scene = scene_in_tags(train) + scene_in_tags(val)
    rule_frame = pl.concat([rebuilt.train, rebuilt.val]).select("clip_id", pl.col("scene").alias("expected"))
    disagree = (
        pl.concat([train, val])
        .join(rule_frame, on="clip_id")
        .filter(pl.col("scene") != pl.col("expected"))
        .height
    )
    checks.append(
        (
            "5. chosen scene is a clip scene and follows the rule",
            wrong_scene == 0 and disagree == 0,
            f"{wrong_scene} not among the clip's scenes, {disagree} not the rule's choice",
        )
    )

    files = split_files(con, rebuilt, manifest.get("name", Path(folder).name))
    differ = [
        n
        for n in files
        if n != splitfolder.MANIFEST
        and (not (Path(folder) / n).is_file() or (Path(folder) / n).read_bytes() != files[n])
    ]
    checks.append(
        (
            "6. rebuilding gives byte-identical files",
            not differ,
            f"{', '.join(differ)} differ" if differ else "ok",
        )
    )

    # The any-tag rule: what --strict promises; for other splits the count is reported, not enforced.
    leaks = int(seen_with_action(val, trained).sum())
    share = f" ({leaks / val.height:.1%} of val)" if val.height else ""
    checks.append(
        (
            "7. no val clip carries a scene tag seen with its action in training (every tag)",
            not strict or leaks == 0,
            "ok"
            if leaks == 0
            else f"{leaks} val clip(s){share}" + ("" if strict else "; allowed: not --strict"),
        )
    )

    # The selection set: held out of training, never the test pairs' clips, and only of training pairs.
    select_ids = set(select["clip_id"])
    overlap = len(select_ids & (set(trained["clip_id"]) | set(val["clip_id"])))
    train_pairs = set(zip(trained["action"], trained["scene"], strict=True))
    foreign = sum(
        (action, scene) not in train_pairs
        for action, scene in zip(select["action"], select["scene"], strict=True)
    )
    checks.append(
        (
            "8. select.csv: no clip of train or val, every pair a training pair",
            overlap == 0 and foreign == 0,
            ("ok" if select.height else "ok (no select.csv: selection reads val)")
            if overlap == 0 and foreign == 0
            else f"{overlap} clip(s) also in train or val, {foreign} clip(s) of a pair not in train.csv",
        )
    )
    return VerifyReport(ok=all(ok for _, ok, _ in checks), checks=checks)


def _clip_ids(frame: pl.DataFrame | None) -> list[str]:
    return [] if frame is None else frame["clip_id"].to_list()


def list_splits(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return run_query(con, "saved_splits")
