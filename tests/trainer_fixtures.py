"""Tiny mp4 clips and split folders for the trainer tests, written by hand (no hvuaudit import).

A clip's frame i is a flat grey of level ``10 + 15 * i`` (so tests can tell which
frames were decoded) with a small bright square whose position depends on the
action (so a model can learn something in a few steps).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import av
import numpy as np

CODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"
COLUMNS = ["clip_id", "youtube_id", "time_start", "time_end", "action", "scene", "scenes", "objects"]
ACTIONS = "actions"  # optional: every action tag of the clip
LABELS = {
    "action": ["jump", "run", "swim"],
    "scene": ["beach", "field", "pool", "gym"],
    "object": ["ball", "rope", "net", "cap", "towel"],
}


def write_clip(path: Path, *, n_frames: int = 8, size: int = 32, action: int = 0, fps: int = 10) -> None:
    """An mp4 of ``n_frames`` frames of size×size, frame i at grey level 10 + 15·i."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(CODEC, rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(n_frames):
            img = np.full((size, size, 3), min(250, 10 + 15 * i), dtype=np.uint8)
            y = 4 + 8 * action
            img[y : y + 6, 4 + i : 10 + i] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def mmaction_name(youtube_id: str, start: float, end: float) -> str:
    return f"{youtube_id}_{round(start * 10):06d}_{round(end * 10):06d}.mp4"


def make_rows(prefix: str, n: int, *, seed: int) -> list[dict[str, str]]:
    """Split rows: action i % 3, a chosen scene correlated with the action, 1-2 objects."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        a = i % 3
        scene = LABELS["scene"][(a + (i // 3) % 2) % 4]
        objects = sorted({LABELS["object"][a], LABELS["object"][int(rng.integers(0, 5))]})
        start = float(10 * i)
        rows.append(
            {
                "clip_id": f"{prefix}{i:03d}",
                "youtube_id": f"{prefix}vid{i:03d}",
                "time_start": str(start),
                "time_end": str(start + 1.0),
                "action": LABELS["action"][a],
                "scene": scene,
                "scenes": "|".join(sorted({scene, "gym"})),
                "objects": "|".join(objects),
                # every fourth clip is also tagged with the next action: right for top-1 any, not top-1
                "actions": "|".join([LABELS["action"][a], *([LABELS["action"][(a + 1) % 3]] * (i % 4 == 0))]),
            }
        )
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*COLUMNS, ACTIONS])
        writer.writeheader()
        writer.writerows(rows)


def make_split(
    root: Path,
    *,
    n_train: int = 24,
    n_val: int = 12,
    n_select: int = 6,
    extra_sets: dict[str, int] | None = None,
    record_videos: bool = False,
    n_frames: int = 8,
) -> tuple[Path, Path]:
    """A split folder ``root/split`` and its videos ``root/videos`` (mmaction names).

    ``n_select`` clips form select.csv, the selection set (0: none, as in folders from before it existed).
    """
    split_dir, videos_dir = root / "split", root / "videos"
    split_dir.mkdir(parents=True)
    videos_dir.mkdir(parents=True)
    sets = {"train": make_rows("t", n_train, seed=1), "val": make_rows("v", n_val, seed=2)}
    files = {"train": "train.csv", "val": "val.csv"}
    if n_select:
        sets["select"], files["select"] = make_rows("s", n_select, seed=9), "select.csv"
    for k, (name, n) in enumerate((extra_sets or {}).items()):
        sets[name] = make_rows(f"e{k}", n, seed=3 + k)
        files[name] = f"eval_{name}.csv"
    for name, rows in sets.items():
        write_csv(split_dir / files[name], rows)
        for row in rows:
            name = mmaction_name(row["youtube_id"], float(row["time_start"]), float(row["time_end"]))
            write_clip(
                videos_dir / name,
                n_frames=n_frames,
                action=LABELS["action"].index(row["action"]),
            )
    manifest = {
        "format": "hvuaudit-split/1",
        "variant": "si2",
        "params": {"seed": 0},
        "counts": {name: len(rows) for name, rows in sets.items()},
        "source": {"store": "fixture"},
    }
    if record_videos:
        manifest["videos"] = {"dir": str(videos_dir), "name_template": "mmaction"}
    if n_select:
        manifest["select_set"] = "select.csv"
    if extra_sets:
        manifest["eval_sets"] = {"val": "val.csv", **{n: files[n] for n in extra_sets}}
    (split_dir / "manifest.json").write_text(json.dumps(manifest))
    (split_dir / "labels.json").write_text(json.dumps(LABELS))
    return split_dir, videos_dir


TINY_ARGS = [
    "--backbone",
    "tiny",
    "--clip-len",
    "8",
    "--size",
    "32",
    "--frame-stride",
    "1",
    "--batch-size",
    "8",
    "--workers",
    "0",
    "--threads",
    "1",
    "--head-hidden",
    "16",
    "--device",
    "cpu",
]


def write_tasks(path: Path, scene: str = "adversarial", obj: str = "auxiliary") -> Path:
    path.write_text(
        json.dumps(
            {
                "format": "hvuaudit-tasks/1",
                "threshold": 1.0,
                "rule": "fixture",
                "roles": {"scene": scene, "object": obj, "event": "auxiliary"},
                "evidence": {},
            }
        )
    )
    return path
