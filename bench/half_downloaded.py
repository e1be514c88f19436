"""A half-downloaded HVU folder for the walkthrough of docs/videos.md, from the clips of a real store.

For the clips of a few actions it writes small mp4s (PyAV) under the names the download tools
give them (mmaction2, HVU-Downloader trimmed and untrimmed, seconds as decimals, whole videos by
YouTube id), and leaves some holes: clips never downloaded, YouTube's 252-byte leftovers and
empty files. The numbers of docs/videos.md come from running its commands on this folder.

    .venv/bin/python bench/half_downloaded.py --db hvu.duckdb --out /tmp/hvu-downloads \\
        --actions playing_congas,skiing,surfing_water,rafting
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import duckdb
import numpy as np

CODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_video(path: Path, seconds: float, *, fps: int = 8, size: tuple[int, int] = (64, 36)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(CODEC, rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(max(1, round(seconds * fps))):
            image = np.full((size[1], size[0], 3), (7 * i) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--actions", required=True, help="comma-separated action tags")
    args = parser.parse_args()
    actions = [a.strip() for a in args.actions.split(",") if a.strip()]
    with duckdb.connect(str(args.db), read_only=True) as con:
        rows = con.execute(
            "SELECT DISTINCT c.clip_id, c.youtube_id, c.time_start, c.time_end FROM clips c "
            "JOIN clip_tag_ids ct USING (clip_key) JOIN tags t USING (tag_id) "
            "WHERE t.category = 'action' AND list_contains($actions, t.tag) ORDER BY c.clip_id",
            {"actions": actions},
        ).fetchall()
    rng = np.random.default_rng(0)
    written = {"missing": 0, "broken": 0}
    for _clip_id, video, start, end in rows:
        luck = rng.random()
        s10, e10, s, e = int(start * 10), int(end * 10), int(start), int(end)
        if luck < 0.12:  # never downloaded (removed from YouTube, private, ...)
            written["missing"] += 1
            continue
        if luck < 0.15:
            (args.out / f"{video}_{s10:06d}_{e10:06d}.mp4").write_bytes(b"\0" * 252)
            written["broken"] += 1
            continue
        if luck < 0.16:
            (args.out / "hvu_downloader" / f"{video}_{s:06d}_{e:06d}_.mp4").parent.mkdir(
                parents=True, exist_ok=True
            )
            (args.out / "hvu_downloader" / f"{video}_{s:06d}_{e:06d}_.mp4").write_bytes(b"")
            written["broken"] += 1
            continue
        if luck < 0.55:
            write_video(args.out / "mmaction" / f"{video}_{s10:06d}_{e10:06d}.mp4", end - start)
        elif luck < 0.80:
            write_video(args.out / "hvu_downloader" / f"{video}_{s:06d}_{e:06d}_.mp4", end - start)
        elif luck < 0.90:
            write_video(args.out / "form" / f"{video}_{start}_{end}.mp4", end - start)
        else:
            write_video(args.out / "whole" / f"{video}.mp4", end + 1.0)
    (args.out / "download_report.json").write_text("[]\n")
    print(
        f"{len(rows)} clips of {', '.join(actions)}: {written['missing']} left out, "
        f"{written['broken']} broken"
    )


if __name__ == "__main__":
    main()
