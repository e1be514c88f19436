"""Real-video handling side by side in one run (issue #19): scan, probe, decoding before and after prepare.

- scan: `hvuaudit videos scan` over N empty files named as mmaction2 names the clips of a
  synthetic store (walking and matching; nothing is opened);
- probe: files/s of `--probe` on original-like clips, with 1 and 2 threads (does PyAV let
  threads overlap?), and the time that rate gives for 500,000 files;
- decoding: ms per clip for the trainer's decode_clip (16 frames, stride 2, short side 112-140, as for
  training crops) on
    * original-like whole videos, 640×360, 25 fps, a keyframe every 250 frames (x264's default),
      cut at a clip's times,
    * the same clips after `hvuaudit videos prepare` (short side 128, a keyframe every 16 frames),
  and their ratio (target: prepared ≥ 5× faster).

  .venv/bin/python bench/videos.py --store /tmp/s500/s500.duckdb --scan-files 500000
  .venv/bin/python bench/videos.py --write BENCHMARKS.md
    (--write replaces the "## Video files" section of that file and nothing else)
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from benchmarks_md import replace_section
from synthetic_clips import write_video
from train_throughput import Trainer, decode_rate, synthetic_batch, timed

from hvuaudit.store import open_store
from hvuaudit.videos.prepare import PrepareSettings, _Job, encode_clip
from hvuaudit.videos.probe import probe_file
from hvuaudit.videos.scan import scan_videos
from hvucontracts.splitfolder import clip_filename
from trainer.dataset import ClipSettings
from trainer.decoding import decode_clip

SECTION_TITLE = "## Video files (bench/videos.py)"


def bench_scan(store: Path, n_files: int, tmp: Path) -> dict:
    """Walk and match ``n_files`` empty files named for the store's first clips (a copy of the store)."""
    db = tmp / "scan.duckdb"
    shutil.copy(store, db)
    folder = tmp / "downloads"
    folder.mkdir()
    with open_store(db, read_only=True) as con:
        rows = con.execute(
            f"SELECT clip_id, youtube_id, time_start, time_end, '' AS action FROM clips LIMIT {n_files}"
        ).fetchall()
    started = time.perf_counter()
    for clip_id, youtube_id, start, end, action in rows:
        row = {
            "clip_id": clip_id,
            "youtube_id": youtube_id,
            "time_start": start,
            "time_end": end,
            "action": action,
        }
        (folder / clip_filename(row, "mmaction")).touch()
    written = time.perf_counter() - started
    with open_store(db, read_only=False) as con:
        started = time.perf_counter()
        first = scan_videos(con, [folder])
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        scan_videos(con, [folder])
        again_s = time.perf_counter() - started
    return {
        "store_clips": first.clips,
        "files": len(rows),
        "clips_matched": first.clips_with_file,
        "touch_s": written,
        "scan_s": first_s,
        "rescan_s": again_s,
    }


def bench_probe(paths: list[Path], threads: int) -> float:
    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(probe_file, paths))
    assert all(r["problem"] is None for r in results), results
    return len(paths) / (time.perf_counter() - started)


def decode_ms(paths: list[Path], windows: list[tuple[float, float] | None], *, repeats: int) -> list[float]:
    """ms per clip, one process: a random 16-frame clip (stride 2) of each file, ``repeats`` times."""
    rng = np.random.default_rng(0)
    times = []
    for _ in range(repeats):
        for path, window in zip(paths, windows, strict=True):
            started = time.perf_counter()
            # the training path: crops come from frames of short side 112 to 140 (trainer.dataset)
            decode_clip(str(path), clip_len=16, frame_stride=2, short_side=(112, 140), rng=rng, window=window)
            times.append(1000 * (time.perf_counter() - started))
    return times


def tiny_step_rate(*, batch_size: int, steps: int) -> float:
    """Clips/s of the tiny model's training step alone (the AMT heads, HVU-sized), on one CPU thread."""
    import torch

    torch.set_num_threads(1)
    trainer = Trainer("tiny", torch.device("cpu"), "off", False)
    batch = synthetic_batch(batch_size, ClipSettings(), pin=False)
    trainer.run([batch] * 2)
    clips, seconds = timed(lambda: trainer.run([batch] * steps))
    return clips / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--store", type=Path, default=Path("/tmp/s500/s500.duckdb"), help="a store to scan against"
    )
    parser.add_argument("--scan-files", type=int, default=100_000)
    parser.add_argument("--videos", type=int, default=12, help="original-like whole videos")
    parser.add_argument("--seconds", type=float, default=12.0, help="length of each whole video")
    parser.add_argument("--clip-seconds", type=float, default=4.0, help="the clip cut from each")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loader-batches", type=int, default=12, help="timed batches of 8 clips")
    parser.add_argument("--write", type=Path, metavar="BENCHMARKS.md")
    args = parser.parse_args()
    load_before, started = os.getloadavg()[0], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_videos_") as name:
        tmp = Path(name)
        scan = bench_scan(args.store, args.scan_files, tmp) if args.store.is_file() else None
        if scan:
            print(f"scan: {scan}", file=sys.stderr)
        originals, windows = [], []
        for i in range(args.videos):
            path = tmp / f"whole{i}.mp4"
            write_video(path, width=640, height=360, seconds=args.seconds, fps=25, keyint=250, seed=i)
            originals.append(path)
            start = 1.0 + (i % 4) * 2.0  # clips start anywhere but on a keyframe
            windows.append((start, start + args.clip_seconds))
        probe_1 = bench_probe(originals * 4, 1)
        probe_2 = bench_probe(originals * 4, 2)
        print(f"probe: {probe_1:.0f} files/s on 1 thread, {probe_2:.0f} on 2", file=sys.stderr)
        settings = PrepareSettings(short_side=128, gop=16)
        prepared = []
        encode_started = time.perf_counter()
        for i, (path, window) in enumerate(zip(originals, windows, strict=True)):
            target = tmp / f"prepared{i}.mp4"
            problem = encode_clip(_Job(f"c{i}", str(path), window, str(target)), settings)
            assert problem is None, problem
            prepared.append(target)
        encode_s = (time.perf_counter() - encode_started) / len(originals)
        before = decode_ms(originals, windows, repeats=args.repeats)
        after = decode_ms(prepared, [None] * len(prepared), repeats=args.repeats)
        # end to end: can 2 loader workers feed the tiny model's step on this 2-core machine?
        loader = {
            "original": decode_rate(
                originals,
                ClipSettings(),
                batch_size=8,
                workers=2,
                batches=args.loader_batches,
                windows=windows,
            ),
            "prepared": decode_rate(
                prepared, ClipSettings(), batch_size=8, workers=2, batches=args.loader_batches
            ),
        }
        step = tiny_step_rate(batch_size=8, steps=args.loader_batches)
        print(f"loader (2 workers): {loader}, tiny step {step:.1f} clips/s", file=sys.stderr)
    ratio = statistics.median(before) / statistics.median(after)
    print(
        f"decode: original {statistics.median(before):.1f} ms, prepared {statistics.median(after):.1f} ms, "
        f"{ratio:.1f}×",
        file=sys.stderr,
    )
    loads = (load_before, os.getloadavg()[0])
    lines = [
        SECTION_TITLE,
        "",
        f"{date.today().isoformat()}, {platform.machine()} with {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; load average {loads[0]:.1f} before, {loads[1]:.1f} after; "
        f"{time.perf_counter() - started:.0f} s in all. `.venv/bin/python bench/videos.py` "
        f"(`--scan-files {args.scan_files}`).",
        "",
    ]
    if scan:
        lines += [
            f"- **scan**: {scan['files']:,} empty files named as mmaction2 names the clips of "
            f"`{args.store.name}` ({scan['store_clips']:,} synthetic clips): walked and matched in "
            f"{scan['scan_s']:.1f} s "
            f"({scan['files'] / scan['scan_s']:,.0f} files/s; {scan['clips_matched']:,} clips matched), "
            f"a rescan that changes nothing {scan['rescan_s']:.1f} s.",
        ]
    lines += [
        f"- **probe** (open, read the stream, decode one frame) of 640×360 whole videos: {probe_1:,.0f} "
        f"files/s on 1 thread, {probe_2:,.0f} on 2 ({probe_2 / probe_1:.2f}×): 500,000 files take about "
        f"{500_000 / probe_2 / 60:.0f} min with 2 threads.",
        f"- **prepare**: {encode_s * 1000:.0f} ms per {args.clip_seconds:g}-s clip (cut from a 640×360 whole "
        "video, short side 128, a keyframe every 16 frames, one process).",
        "",
        "| decoding one random 16-frame clip (stride 2, short side 112–140 as for training crops), one "
        "process | median ms | p90 ms |",
        "|---|---:|---:|",
        f"| original-like: 640×360 whole video, 25 fps, keyframe every 250 frames, cut at the clip's times | "
        f"{statistics.median(before):.1f} | {np.percentile(before, 90):.1f} |",
        f"| after `videos prepare` (short side 128, keyframe every 16) | {statistics.median(after):.1f} | "
        f"{np.percentile(after, 90):.1f} |",
        "",
        f"Prepared clips decode **{ratio:.1f}×** faster per clip and worker (target ≥ 5×).",
        "",
        "End to end, 2 DataLoader workers (16 frames, stride 2, 112 px random crops and flips, batches of "
        f"8) deliver {loader['original']:.0f} clips/s from the originals and {loader['prepared']:.0f} "
        "clips/s from the prepared clips; the tiny model's training step alone (AMT heads of HVU's size, one "
        f"thread) takes {step:.0f} clips/s, so the prepared clips "
        + ("keep up with it." if loader["prepared"] >= step else "do **not** keep up with it on 2 cores."),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        replace_section(args.write, SECTION_TITLE, text)
        print(f"wrote the section into {args.write}", file=sys.stderr)


if __name__ == "__main__":
    main()
