"""From a split folder to batches of clips: reading, finding the files, pre-flight, decoding.

First step of the trainer. Reads the split folder written by ``hvuaudit split``
(manifest.json, train.csv, val.csv, labels.json and optional extra evaluation
sets), finds each row's video file under the videos directory through a name
template, checks which files are usable before training, and decodes clips with
PyAV in DataLoader workers. Batches hold uint8 video (b, 3, t, h, w); the engine
normalises on the device. A clip that fails to decode is dropped from its batch
and counted, never a crash. Under torchrun each process probes and loads its own
share of the clips (``rank``/``world_size`` arguments). Never imports ``hvuaudit``.
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from av.video.reformatter import VideoReformatter
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from trainer.errors import TrainerError

SPLIT_FORMAT = "hvuaudit-split/1"
COLUMNS = ("clip_id", "youtube_id", "time_start", "time_end", "action", "scene", "scenes", "objects")
VIDEOS_ENV = "HVUAUDIT_VIDEOS"
DEFAULT_TEMPLATE = "mmaction"
# Presets of --name-template, written in the same language as a custom template.
NAME_TEMPLATES = {
    "mmaction": "{youtube_id}_{start10:06d}_{end10:06d}.mp4",
    "downloader": "{youtube_id}_{start_s:06d}_{end_s:06d}.mp4",
    "raw": "{youtube_id}_{time_start}_{time_end}.mp4",
}
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


class SplitError(TrainerError):
    """The split folder is missing a file, has the wrong format or a bad row (exit 3)."""


class VideosError(TrainerError):
    """No videos directory, a missing one, or a name template that does not work (exit 3)."""


class PreflightError(TrainerError):
    """Too few of the split's clips are usable under the videos directory (exit 3)."""


# --------------------------------------------------------------------------- split folder
@dataclass(frozen=True)
class Split:
    """A split folder, read and checked."""

    dir: Path
    manifest: dict[str, Any]
    labels: dict[str, list[str]]
    sets: dict[str, pl.DataFrame]
    """"train", "val" and every extra evaluation set, with the columns of COLUMNS."""
    eval_sets: tuple[str, ...]
    """Names of the evaluation sets, "val" first."""


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise SplitError(f"{path}: missing; {what}. Rebuild the split folder with `hvuaudit split`")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, or not JSON
        raise SplitError(
            f"{path}: not valid JSON ({exc}); rebuild the split folder with `hvuaudit split`"
        ) from exc


def _check_labels(path: Path, labels: Any) -> dict[str, list[str]]:
    if not isinstance(labels, dict):
        raise SplitError(f"{path}: expected an object with 'action', 'scene' and 'object' lists")
    out = {}
    for key in ("action", "scene", "object"):
        values = labels.get(key)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise SplitError(
                f"{path}: '{key}' must be a list of names; rebuild the split with `hvuaudit split`"
            )
        if len(set(values)) != len(values):
            raise SplitError(f"{path}: '{key}' lists a name twice; rebuild the split with `hvuaudit split`")
        out[key] = values
    if not out["action"]:
        raise SplitError(f"{path}: the action vocabulary is empty; nothing to train")
    return out


def read_split_csv(path: Path, labels: dict[str, list[str]]) -> pl.DataFrame:
    """One CSV of the split, with times as floats and empty tag fields as ''."""
    if not path.is_file():
        raise SplitError(f"{path}: missing; rebuild the split folder with `hvuaudit split`")
    try:
        df = pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SplitError(f"{path}: could not be read as CSV ({exc})") from exc
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise SplitError(
            f"{path}: lacks column(s) {', '.join(missing)}; expected {','.join(COLUMNS)} "
            "(rebuild the split with `hvuaudit split`)"
        )
    df = df.select(COLUMNS).with_columns(pl.col(c).fill_null("") for c in COLUMNS)
    for col in ("time_start", "time_end"):
        cast = df[col].cast(pl.Float64, strict=False)
        bad = cast.is_null().arg_true()
        if len(bad):
            row = int(bad[0])
            raise SplitError(f"{path}: row {row + 2} has {col} {df[col][row]!r}, which is not a number")
        df = df.with_columns(cast.alias(col))
    vocab = set(labels["action"])
    unknown = df.with_row_index("row").filter(~pl.col("action").is_in(list(vocab)))
    if unknown.height:
        row = unknown.row(0, named=True)
        raise SplitError(
            f"{path}: row {row['row'] + 2} (clip {row['clip_id']}) has action {row['action']!r}, which "
            "labels.json does not list; rebuild the split folder with `hvuaudit split`"
        )
    return df


def load_split(path: str | Path) -> Split:
    """Read and check a split folder (format, files, columns, labels)."""
    root = Path(path)
    if not root.is_dir():
        raise SplitError(f"split folder {root} does not exist; write one with `hvuaudit split --out {root}`")
    manifest = _read_json(root / "manifest.json", "it says what the split is")
    if not isinstance(manifest, dict) or manifest.get("format") != SPLIT_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise SplitError(
            f"{root / 'manifest.json'}: format is {found!r}, expected {SPLIT_FORMAT!r}; "
            "rebuild the split folder with this version's `hvuaudit split`"
        )
    labels = _check_labels(root / "labels.json", _read_json(root / "labels.json", "it holds the label order"))
    files = {"train": "train.csv", "val": "val.csv"}
    extra = manifest.get("eval_sets") or {}
    if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
        raise SplitError(f"{root / 'manifest.json'}: 'eval_sets' must map set names to CSV file names")
    for name, file in extra.items():
        if name == "train":
            raise SplitError(f"{root / 'manifest.json'}: 'train' cannot be an evaluation set name")
        if Path(file).is_absolute() or (root / file).resolve().parent != root.resolve():
            raise SplitError(
                f"{root / 'manifest.json'}: eval_sets entry {name!r} points to {file!r}, outside the split folder; "
                "an evaluation set must be a CSV file in the folder itself (rebuild it with `hvuaudit split`)"
            )
        files.setdefault(name, file)
    sets = {name: read_split_csv(root / file, labels) for name, file in files.items()}
    for name in ("train", "val"):
        if sets[name].height == 0:
            raise SplitError(f"{root / files[name]}: has no rows; rebuild the split with `hvuaudit split`")
    return Split(
        dir=root.resolve(),
        manifest=manifest,
        labels=labels,
        sets=sets,
        eval_sets=("val", *[n for n in files if n not in ("train", "val")]),
    )


# --------------------------------------------------------------------------- finding files
def resolve_videos_dir(
    cli_value: str | None,
    manifest: dict[str, Any],
    *,
    recorded: str | None = None,
    env: dict[str, str] | None = None,
) -> tuple[Path, str]:
    """The videos directory and where it came from.

    Order: ``--videos``, ``$HVUAUDIT_VIDEOS``, ``recorded`` (the run's config.json,
    for ``eval``), the split manifest's ``videos.dir``.
    """
    env = os.environ if env is None else env
    videos = manifest.get("videos") if isinstance(manifest.get("videos"), dict) else {}
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


def resolve_name_template(cli_value: str | None, manifest: dict[str, Any]) -> str:
    """``--name-template``, else the manifest's ``videos.name_template``, else mmaction."""
    videos = manifest.get("videos") if isinstance(manifest.get("videos"), dict) else {}
    template = cli_value or videos.get("name_template") or DEFAULT_TEMPLATE
    check_template(template)
    return template


def _template_fields(row: dict[str, Any]) -> dict[str, Any]:
    start, end = float(row["time_start"]), float(row["time_end"])
    return {
        "youtube_id": row["youtube_id"],
        "clip_id": row["clip_id"],
        "action": row["action"],
        "time_start": start,
        "time_end": end,
        "start10": int(round(start * 10)),
        "end10": int(round(end * 10)),
        "start_s": int(round(start)),
        "end_s": int(round(end)),
    }


def clip_filename(row: dict[str, Any], template: str) -> str:
    """The file name of one split row (a preset name or a format string)."""
    return NAME_TEMPLATES.get(template, template).format(**_template_fields(row))


def check_template(template: str) -> None:
    """Reject a custom template that cannot format a row."""
    example = {"youtube_id": "abc", "clip_id": "c", "action": "a", "time_start": 1.5, "time_end": 3.0}
    fmt = NAME_TEMPLATES.get(template, template)
    if "{" not in fmt:
        raise VideosError(
            f"--name-template {template!r} is neither a preset ({', '.join(NAME_TEMPLATES)}) nor a format "
            "string with fields such as {youtube_id}"
        )
    try:
        clip_filename(example, template)
    except (KeyError, IndexError, ValueError) as exc:
        raise VideosError(
            f"--name-template {template!r} does not work ({type(exc).__name__}: {exc}); "
            f"its fields are {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}"
        ) from exc


# --------------------------------------------------------------------------- clip tables
@dataclass
class ClipTable:
    """The rows of one set, encoded for the model: one entry per clip."""

    clip_id: list[str]
    path: list[str]
    action: np.ndarray  # (n,) int64 index into labels["action"]
    scene_idx: list[np.ndarray]  # indices into labels["scene"] of the clip's scene tags
    object_idx: list[np.ndarray]
    scene: list[str]  # the one chosen scene ('' when none)
    scenes: list[str]  # '|'-joined scene tags

    def __len__(self) -> int:
        return len(self.clip_id)

    def subset(self, keep: np.ndarray) -> ClipTable:
        idx = np.flatnonzero(keep)
        return ClipTable(
            clip_id=[self.clip_id[i] for i in idx],
            path=[self.path[i] for i in idx],
            action=self.action[idx],
            scene_idx=[self.scene_idx[i] for i in idx],
            object_idx=[self.object_idx[i] for i in idx],
            scene=[self.scene[i] for i in idx],
            scenes=[self.scenes[i] for i in idx],
        )


def _tag_indices(joined: str, index: dict[str, int]) -> np.ndarray:
    return np.array([index[t] for t in joined.split("|") if t in index], dtype=np.int64)


def build_table(df: pl.DataFrame, labels: dict[str, list[str]], videos_dir: Path, template: str) -> ClipTable:
    """Encode a split CSV: label indices and the path of each clip's file."""
    action_index = {a: i for i, a in enumerate(labels["action"])}
    scene_index = {s: i for i, s in enumerate(labels["scene"])}
    object_index = {o: i for i, o in enumerate(labels["object"])}
    rows = df.to_dicts()
    return ClipTable(
        clip_id=[r["clip_id"] for r in rows],
        path=[str(videos_dir / clip_filename(r, template)) for r in rows],
        action=np.array([action_index[r["action"]] for r in rows], dtype=np.int64),
        scene_idx=[_tag_indices(r["scenes"] or r["scene"], scene_index) for r in rows],
        object_idx=[_tag_indices(r["objects"], object_index) for r in rows],
        scene=[r["scene"] for r in rows],
        scenes=[r["scenes"] for r in rows],
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
    run_dir: Path, checks: dict[str, SetCheck], *, videos_dir: Path, template: str, stem: str = "preflight"
) -> None:
    """``<stem>.json`` with the counts, ``<stem>_problems.csv`` listing every missing/unreadable clip."""
    report = {
        "videos_dir": str(videos_dir),
        "name_template": template,
        "sets": {name: c.summary() for name, c in checks.items()},
    }
    (run_dir / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    with open(run_dir / f"{stem}_problems.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["set", "clip_id", "path", "problem"])
        for name, c in checks.items():
            for clip_id, path in c.missing:
                writer.writerow([name, clip_id, path, "missing"])
            for clip_id, path, reason in c.unreadable:
                writer.writerow([name, clip_id, path, f"unreadable: {reason}"])


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


# --------------------------------------------------------------------------- decoding
def decode_clip(
    path: str,
    *,
    clip_len: int,
    frame_stride: int,
    short_side: tuple[int, int],
    rng: np.random.Generator | None,
) -> np.ndarray:
    """``clip_len`` RGB frames, ``frame_stride`` apart, scaled so the short side lies in ``short_side``.

    ``short_side = (lo, hi)``: frames whose short side is below ``lo`` are scaled up
    to ``lo``, above ``hi`` down to ``hi``; in between they keep their size.

    ``rng`` picks a random start (training); ``None`` takes the centre clip. Seeks
    near the start instead of decoding from the beginning, and converts every
    frame with one reused :class:`VideoReformatter`. Short videos repeat their
    last frame. Returns (t, h, w, 3) uint8.
    """
    with av.open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        time_base = float(stream.time_base) if stream.time_base else 0.0
        t0 = stream.start_time or 0
        n_frames = stream.frames
        if not n_frames and stream.duration and fps and time_base:
            n_frames = int(round(stream.duration * time_base * fps))
        span = (clip_len - 1) * frame_stride + 1
        first = 0
        if n_frames > span:
            first = int(rng.integers(0, n_frames - span + 1)) if rng is not None else (n_frames - span) // 2
        wanted = [first + i * frame_stride for i in range(clip_len)]
        wanted_set = set(wanted)
        can_time = fps > 0 and time_base > 0
        if first > 0 and can_time:
            container.seek(t0 + int(first / fps / time_base), stream=stream, backward=True)
        width, height = stream.codec_context.width, stream.codec_context.height
        native = min(width, height)
        scale = min(max(native, short_side[0]), short_side[1]) / native
        out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
        reformatter = VideoReformatter()  # one per stream: swscale context reused for every frame
        got: dict[int, np.ndarray] = {}
        counter = 0
        for frame in container.decode(stream):
            idx = (
                round((frame.pts - t0) * time_base * fps) if (can_time and frame.pts is not None) else counter
            )
            counter += 1
            if idx in wanted_set:
                rgb = reformatter.reformat(frame, format="rgb24", width=out_w, height=out_h, threads=1)
                got[idx] = rgb.to_ndarray()
            if idx >= wanted[-1]:
                break
    if not got:
        raise ValueError(f"{path}: no frame decoded at or after frame {first}")
    frames, last = [], got[min(got)]
    for idx in wanted:  # fill gaps (short video, frame-count estimate off) with the previous frame
        last = got.get(idx, last)
        frames.append(last)
    return np.stack(frames)  # (t, h, w, 3)


def _resize(frames: torch.Tensor, size: int) -> torch.Tensor:
    """(t, h, w, 3) uint8 -> (t, size, size, 3) uint8, bilinear with antialias."""
    if frames.shape[1] == size and frames.shape[2] == size:
        return frames
    x = frames.permute(0, 3, 1, 2).float()  # (t, 3, h, w)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def centre_crop(frames: np.ndarray, size: int) -> torch.Tensor:
    """Centre square of the short side, resized to size×size: (t, size, size, 3) uint8."""
    _, h, w, _ = frames.shape
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return _resize(torch.from_numpy(np.ascontiguousarray(frames[:, y0 : y0 + side, x0 : x0 + side])), size)


def random_resized_crop(
    frames: np.ndarray, size: int, rng: np.random.Generator, *, min_scale: float, ratio=(3 / 4, 4 / 3)
) -> torch.Tensor:
    """The same random crop (area share in [min_scale, 1], aspect in ``ratio``) for every frame."""
    _, h, w, _ = frames.shape
    for _ in range(10):
        area = rng.uniform(min_scale, 1.0) * h * w
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            return _resize(
                torch.from_numpy(np.ascontiguousarray(frames[:, y0 : y0 + ch, x0 : x0 + cw])), size
            )
    return centre_crop(frames, size)


@dataclass(frozen=True)
class ClipSettings:
    """How clips are sampled and augmented."""

    clip_len: int = 16
    frame_stride: int = 2
    size: int = 112
    min_crop_scale: float = 0.35
    hflip: bool = True


class ClipDataset(Dataset):
    """Decoded clips of one set. Returns a sample dict, or ``None`` when decoding failed.

    Keys are ``i`` (evaluation: centre clip, centre crop) or ``(epoch, i)`` from
    :class:`EpochSampler` (training: random start, random resized crop, flip),
    whose randomness comes from ``(seed, epoch, i)`` alone: the same clip gets the
    same augmentation whatever the worker count or order, which makes resume exact.
    """

    def __init__(
        self,
        table: ClipTable,
        *,
        n_scenes: int,
        n_objects: int,
        settings: ClipSettings,
        train: bool,
        seed: int = 0,
    ) -> None:
        self.table = table
        self.n_scenes, self.n_objects = n_scenes, n_objects
        self.settings = settings
        self.train = train
        self.seed = seed

    def __len__(self) -> int:
        return len(self.table)

    def _multi_hot(self, idx: np.ndarray, k: int) -> torch.Tensor:
        out = torch.zeros(k, dtype=torch.float32)
        out[torch.from_numpy(idx)] = 1.0
        return out

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any] | None:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        s = self.settings
        rng = np.random.default_rng([self.seed, epoch, i]) if self.train else None
        try:
            crop = rng is not None and s.min_crop_scale < 1.0
            # random crops are taken from frames up to 1.25× the output size, centre crops at size
            short = (s.size, math.ceil(1.25 * s.size)) if crop else (s.size, s.size)
            frames = decode_clip(
                self.table.path[i],
                clip_len=s.clip_len,
                frame_stride=s.frame_stride,
                short_side=short,
                rng=rng,
            )
            if crop:
                video = random_resized_crop(frames, s.size, rng, min_scale=s.min_crop_scale)
            else:
                video = centre_crop(frames, s.size)
        except Exception:  # a corrupt or vanished file: skipped and counted by the collate
            return None
        if rng is not None and s.hflip and rng.random() < 0.5:
            video = video.flip(2)
        return {
            "video": video.permute(3, 0, 1, 2).contiguous(),  # (3, t, size, size) uint8
            "action": int(self.table.action[i]),
            "scene": self._multi_hot(self.table.scene_idx[i], self.n_scenes),
            "object": self._multi_hot(self.table.object_idx[i], self.n_objects),
            "index": i,
        }


def collate_clips(samples: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Stack the decoded samples; failed ones (None) are dropped and counted in ``skipped``."""
    kept = [s for s in samples if s is not None]
    batch: dict[str, Any] = {"skipped": len(samples) - len(kept), "n": len(kept)}
    if kept:
        batch["video"] = torch.stack([s["video"] for s in kept])  # (b, 3, t, h, w) uint8
        batch["action"] = torch.tensor([s["action"] for s in kept], dtype=torch.int64)
        batch["scene"] = torch.stack([s["scene"] for s in kept])  # (b, n_scenes)
        batch["object"] = torch.stack([s["object"] for s in kept])  # (b, n_objects)
        batch["index"] = torch.tensor([s["index"] for s in kept], dtype=torch.int64)
    return batch


class EpochSampler(Sampler):
    """Yields ``(epoch, i)``: a permutation seeded by (seed, epoch), or the identity order."""

    def __init__(self, n: int, *, seed: int, shuffle: bool) -> None:
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        order = (
            np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
            if self.shuffle
            else range(self.n)
        )
        for i in order:
            yield (self.epoch, int(i))


class DistributedEpochSampler(DistributedSampler):
    """torch's DistributedSampler yielding ``(epoch, i)`` keys for :class:`ClipDataset`.

    Every process gets ``ceil(n / world_size)`` clips of one permutation seeded by
    ``seed + epoch`` (the first clips repeat to fill the last share), so all
    processes take the same number of steps, as DDP needs.
    """

    def __iter__(self):
        for i in super().__iter__():
            yield (self.epoch, int(i))


class ShardSampler(Sampler):
    """Rows ``rank``, ``rank + world_size``, ... in order: each clip evaluated by exactly one process.

    Unlike DistributedSampler there is no padding, so no clip is counted twice
    in the reduced metrics; shares may differ by one clip, which evaluation
    (no collective per step) allows.
    """

    def __init__(self, n: int, *, rank: int, world_size: int) -> None:
        self.rows = range(rank, n, world_size)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)


def seed_worker(worker_id: int) -> None:
    """Per-worker seeds (from the loader's generator) and one torch thread per worker."""
    torch.set_num_threads(1)
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def make_loader(
    dataset: ClipDataset,
    *,
    batch_size: int,
    workers: int,
    seed: int,
    shuffle: bool,
    drop_last: bool = False,
    pin_memory: bool = False,
    prefetch_factor: int = 2,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """A DataLoader over this process's share of ``dataset``.

    Training loaders (``shuffle``) support ``loader.sampler.set_epoch``. In one
    process the sampler is :class:`EpochSampler`; under torchrun training uses
    :class:`DistributedEpochSampler` and evaluation :class:`ShardSampler`.
    Workers stay alive between epochs (``persistent_workers``) and each keeps
    ``prefetch_factor`` batches decoded ahead; ``pin_memory`` (CUDA) lets the
    copy to the GPU run asynchronously.

    Workers start from a forkserver, not by forking the training process: that
    process has threads (the other loader's queue feeders, the pin-memory
    thread, gloo/NCCL), and a fork taken while one of them holds a lock can
    deadlock the new worker (seen under torchrun). The server imports this
    module (torch, PyAV) once; each worker is then a cheap fork of it.
    """
    context = None
    if workers > 0:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["trainer.data"])
    generator = torch.Generator()
    generator.manual_seed(seed)
    sampler: Sampler
    if world_size == 1:
        sampler = EpochSampler(len(dataset), seed=seed, shuffle=shuffle)
    elif shuffle:
        sampler = DistributedEpochSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed
        )
    else:
        sampler = ShardSampler(len(dataset), rank=rank, world_size=world_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_clips,
        pin_memory=pin_memory,
        drop_last=drop_last,
        worker_init_fn=seed_worker,
        generator=generator,
        persistent_workers=workers > 0,
        prefetch_factor=prefetch_factor if workers > 0 else None,
        multiprocessing_context=context,
    )
