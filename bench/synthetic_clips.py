"""Synthetic h264 clips and split folders for the trainer benchmarks (train_throughput.py, gpu_check.py).

The frames are a drifting texture with moving blocks, so the encoder writes
ordinary P- and B-frames and decoding costs about what a real clip of that size
costs (flat frames would decode unrealistically fast, noise unrealistically
slowly). The split folder follows the ``hvuaudit-split/1`` contract that
``hvucontracts.splitfolder.load_split`` reads. Imports neither hvuaudit nor torch.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import av
import numpy as np

from hvucontracts import splitfolder

CODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_video(
    path: Path, *, width: int, height: int, seconds: float, fps: int = 25, keyint: int = 250, seed: int = 0
) -> None:
    """An mp4 of ``seconds`` × ``fps`` frames; ``keyint`` frames between keyframes (x264's default: 250)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, size=3)
    blocks = rng.integers(0, [width - 32, height - 32], size=(4, 2))
    velocity = rng.integers(-4, 5, size=(4, 2))
    with av.open(str(path), "w") as container:
        stream = container.add_stream(CODEC, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if CODEC == "libx264":
            stream.options = {"preset": "veryfast", "g": str(keyint)}
        for i in range(int(seconds * fps)):
            texture = [
                np.sin((x + 2 * i) / 17 + phase[c]) * np.cos((y - i) / 23 + phase[c]) for c in range(3)
            ]
            frame = (np.stack(texture, axis=-1) * 80 + 128).astype(np.uint8)  # (h, w, 3)
            for (bx, by), (vx, vy) in zip(blocks, velocity, strict=True):
                cx, cy = (bx + vx * i) % (width - 32), (by + vy * i) % (height - 32)
                frame[cy : cy + 32, cx : cx + 32] = 255 - frame[cy : cy + 32, cx : cx + 32]
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_split(
    root: Path,
    *,
    n_train: int,
    n_val: int,
    width: int,
    height: int,
    seconds: float,
    fps: int = 25,
    n_actions: int = 4,
) -> tuple[Path, Path]:
    """A split folder ``root/split`` (videos.dir recorded) and its clips ``root/videos`` (mmaction names)."""
    split_dir, videos_dir = root / "split", root / "videos"
    split_dir.mkdir(parents=True)
    videos_dir.mkdir(parents=True)
    labels = {
        "action": [f"action{a}" for a in range(n_actions)],
        "scene": [f"scene{s}" for s in range(6)],
        "object": [f"object{o}" for o in range(8)],
    }
    counts = {}
    for name, n in (("train", n_train), ("val", n_val)):
        rows = []
        for i in range(n):
            action = i % n_actions
            start = 10.0 * i
            youtube_id = f"{name}{i:05d}"
            rows.append(
                {
                    "clip_id": f"{name}-{i}",
                    "youtube_id": youtube_id,
                    "time_start": str(start),
                    "time_end": str(start + seconds),
                    "action": labels["action"][action],
                    "scene": labels["scene"][action % 6],
                    "scenes": labels["scene"][action % 6],
                    "objects": "|".join(sorted({labels["object"][action % 8], labels["object"][i % 8]})),
                }
            )
            file_name = splitfolder.clip_filename(rows[-1], splitfolder.DEFAULT_TEMPLATE)
            write_video(videos_dir / file_name, width=width, height=height, seconds=seconds, fps=fps, seed=i)
        with open(split_dir / f"{name}.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=splitfolder.COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        counts[name] = n
    manifest = {
        "format": splitfolder.SPLIT_FORMAT,
        "variant": "synthetic",
        "params": {"width": width, "height": height, "seconds": seconds, "fps": fps},
        "counts": counts,
        "source": {"generator": "bench/synthetic_clips.py"},
        "videos": {"dir": str(videos_dir), "name_template": "mmaction"},
    }
    (split_dir / splitfolder.MANIFEST).write_text(json.dumps(manifest, indent=2))
    (split_dir / splitfolder.LABELS).write_text(json.dumps(labels))
    return split_dir, videos_dir
