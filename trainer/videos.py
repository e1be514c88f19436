"""Finding a split's video files and checking them before training: the trainer's second step.

Takes a split folder read by :func:`hvucontracts.splitfolder.load_split`, finds each
row's file under the videos directory through a name template (the presets and the
template language are the split-folder contract's), encodes the rows as a
:class:`ClipTable` (label indices and paths), and probes which files are usable
(pre-flight) before a single batch is decoded. Under torchrun each process probes
its own share (``rank``/``world_size``). Needs PyAV and numpy; never imports torch
or ``hvuaudit``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import polars as pl

from hvucontracts import runfolder
from hvucontracts.files import write_atomically, write_json_atomically
from hvucontracts.splitfolder import VideosError, clip_filename, clip_window, recorded_videos
from trainer.errors import TrainerError

VIDEOS_ENV = "HVUAUDIT_VIDEOS"


class PreflightError(TrainerError):
    """Too few of the split's clips are usable under the videos directory (exit 3)."""


# --------------------------------------------------------------------------- finding files
def resolve_videos_dir(
    cli_value: str | None,
    manifest: dict[str, Any],
    *,
    recorded: str | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[Path, str]:
    """The videos directory and where it came from.

    Order: ``--videos``, ``$HVUAUDIT_VIDEOS``, ``recorded`` (the run's config.json,
    for ``eval``), the split manifest's ``videos.dir``.
    """
    env = os.environ if env is None else env
    videos = recorded_videos(manifest)
    candidates = [
        ("--videos", cli_value),
        (f"${VIDEOS_ENV}", env.get(VIDEOS_ENV) or None),
        ("the run's config.json", recorded),
        ("the split manifest (videos.dir)", videos.get("dir")),
    ]
    for source, value in candidates:
        if value:
            path = Path(value).expanduser()
            if not path.is_dir():
                raise VideosError(
                    f"videos directory {path} (from {source}) does not exist; "
                    f"pass --videos DIR, set {VIDEOS_ENV}, or re-record it with `hvuaudit split --videos DIR`"
                )
            return path, source
    raise VideosError(
        "no videos directory: pass --videos DIR, set the environment variable "
        f"{VIDEOS_ENV}=DIR, or record one in the split with `hvuaudit split --videos DIR`"
    )


# --------------------------------------------------------------------------- clip tables
@dataclass
class ClipTable:
    """The rows of one set, encoded for the model: one entry per clip."""

    clip_id: list[str]
    path: list[str]
    action: np.ndarray  # (n,) int64 index into labels["action"]: the primary action, the head's target
    action_idx: list[np.ndarray]  # indices into labels["action"] of every action tag of the clip
    scene_idx: list[np.ndarray]  # indices into labels["scene"] of the clip's scene tags
    object_idx: list[np.ndarray]
    scene: list[str]  # the one chosen scene ('' when none)
    scenes: list[str]  # '|'-joined scene tags
    # (start, end) seconds to cut from a file that is the whole YouTube video; None when it is the clip
    window: list[tuple[float, float] | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.clip_id)

    def subset(self, keep: np.ndarray) -> ClipTable:
        idx = np.flatnonzero(keep)
        return ClipTable(
            clip_id=[self.clip_id[i] for i in idx],
            path=[self.path[i] for i in idx],
            action=self.action[idx],
            action_idx=[self.action_idx[i] for i in idx],
            scene_idx=[self.scene_idx[i] for i in idx],
            object_idx=[self.object_idx[i] for i in idx],
            scene=[self.scene[i] for i in idx],
            scenes=[self.scenes[i] for i in idx],
            window=[self.window[i] for i in idx],
        )


def _tag_indices(joined: str, index: dict[str, int]) -> np.ndarray:
    return np.array([index[t] for t in joined.split("|") if t in index], dtype=np.int64)


def build_table(df: pl.DataFrame, labels: dict[str, list[str]], videos_dir: Path, template: str) -> ClipTable:
    """Encode a split CSV: label indices, the path of each clip's file, and the times to cut from a whole
    video (:func:`hvucontracts.splitfolder.clip_window`)."""
    action_index = {a: i for i, a in enumerate(labels["action"])}
    scene_index = {s: i for i, s in enumerate(labels["scene"])}
    object_index = {o: i for i, o in enumerate(labels["object"])}
    rows = df.to_dicts()
    return ClipTable(
        clip_id=[r["clip_id"] for r in rows],
        path=[str(videos_dir / clip_filename(r, template)) for r in rows],
        action=np.array([action_index[r["action"]] for r in rows], dtype=np.int64),
        action_idx=[np.unique(_tag_indices(f"{r['action']}|{r['actions']}", action_index)) for r in rows],
        scene_idx=[_tag_indices(r["scenes"] or r["scene"], scene_index) for r in rows],
        object_idx=[_tag_indices(r["objects"], object_index) for r in rows],
        scene=[r["scene"] for r in rows],
        scenes=[r["scenes"] for r in rows],
        window=[clip_window(r, template) for r in rows],
    )


# --------------------------------------------------------------------------- pre-flight
@dataclass
class SetCheck:
    """What the pre-flight found for one set."""

    name: str
    total: int
    missing: list[tuple[str, str]] = field(default_factory=list)  # (clip_id, path)
    unreadable: list[tuple[str, str, str]] = field(default_factory=list)  # (clip_id, path, reason)
    usable: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def n_usable(self) -> int:
        return int(self.usable.sum())

    @property
    def usable_fraction(self) -> float:
        return self.n_usable / self.total if self.total else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "usable": self.n_usable,
            "missing": len(self.missing),
            "unreadable": len(self.unreadable),
            "usable_fraction": round(self.usable_fraction, 6),
        }


def probe_clip(path: str) -> str | None:
    """None when PyAV opens the file and decodes a first video frame, else the reason."""
    try:
        with av.open(path) as container:
            if not container.streams.video:
                return "no video stream"
            for _frame in container.decode(video=0):
                return None
            return "no video frames"
    except Exception as exc:  # FFmpeg, OS and codec errors all mean "unreadable"
        return f"{type(exc).__name__}: {exc}"


def preflight(
    tables: dict[str, ClipTable],
    *,
    probe: bool = True,
    threads: int = 4,
    rank: int = 0,
    world_size: int = 1,
) -> dict[str, SetCheck]:
    """Count found, missing and unreadable files of each set (probing each with PyAV).

    With ``world_size`` > 1 only rows ``rank``, ``rank + world_size``, ... are
    looked at (the others count as not usable); :func:`merge_preflight` joins
    the shares of all processes.
    """
    checks = {}
    for name, table in tables.items():
        check = SetCheck(name=name, total=len(table), usable=np.zeros(len(table), dtype=bool))
        rows = range(rank, len(table), world_size)
        exists = {i: os.path.isfile(table.path[i]) for i in rows}
        present = [i for i in rows if exists[i]]
        if probe and present:
            with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
                reasons = list(pool.map(probe_clip, [table.path[i] for i in present]))
        else:
            reasons = [None] * len(present)
        for i, reason in zip(present, reasons, strict=True):
            if reason is None:
                check.usable[i] = True
            else:
                check.unreadable.append((table.clip_id[i], table.path[i], reason))
        check.missing = [(table.clip_id[i], table.path[i]) for i in rows if not exists[i]]
        checks[name] = check
    return checks


def merge_preflight(shares: list[dict[str, SetCheck]], tables: dict[str, ClipTable]) -> dict[str, SetCheck]:
    """One check per set from the shares of :func:`preflight` of every process, problems in row order."""
    merged = {}
    for name, table in tables.items():
        row = {clip_id: i for i, clip_id in enumerate(table.clip_id)}
        parts = [share[name] for share in shares]
        merged[name] = SetCheck(
            name=name,
            total=len(table),
            missing=sorted((m for p in parts for m in p.missing), key=lambda m: row[m[0]]),
            unreadable=sorted((u for p in parts for u in p.unreadable), key=lambda u: row[u[0]]),
            usable=np.logical_or.reduce([p.usable for p in parts]),
        )
    return merged


def write_preflight(
    run_dir: Path,
    checks: dict[str, SetCheck],
    *,
    videos_dir: Path,
    template: str,
    files: tuple[str, str] = (runfolder.PREFLIGHT, runfolder.PREFLIGHT_PROBLEMS),
) -> None:
    """The counts (a JSON file) and every missing or unreadable clip (a CSV file), both written atomically."""
    summary_file, problems_file = files
    report = {
        "videos_dir": str(videos_dir),
        "name_template": template,
        "sets": {name: c.summary() for name, c in checks.items()},
    }
    write_json_atomically(run_dir / summary_file, report)

    def write_problems(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["set", "clip_id", "path", "problem"])
            for name, c in checks.items():
                for clip_id, path in c.missing:
                    writer.writerow([name, clip_id, path, "missing"])
                for clip_id, path, reason in c.unreadable:
                    writer.writerow([name, clip_id, path, f"unreadable: {reason}"])

    write_atomically(run_dir / problems_file, write_problems)


def require_usable(
    checks: dict[str, SetCheck], *, min_found: float, videos_dir: Path, template: str, report: Path
) -> None:
    """Stop when a set has fewer usable clips than ``min_found`` of its rows (or none)."""
    for name, c in checks.items():
        if c.n_usable == 0 or c.usable_fraction < min_found:
            example = c.missing[0][1] if c.missing else (c.unreadable[0][1] if c.unreadable else "")
            raise PreflightError(
                f"only {c.n_usable} of the {c.total} {name} clips ({c.usable_fraction:.0%}) are usable under "
                f"{videos_dir} with --name-template {template} ({len(c.missing)} missing, "
                f"{len(c.unreadable)} unreadable; --min-found is {min_found:.0%}). "
                f"Looked for e.g. {example}. The list is in {report}. Fix --videos / --name-template, "
                "or lower --min-found to train on what is there"
            )
