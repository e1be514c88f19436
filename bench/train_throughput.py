"""Trainer throughput in clips/s: decoding alone, the model step alone, and end to end (issue 10).

Measures the trainer's own code paths on synthetic h264 videos (bench/synthetic_clips.py):
  - decoding alone: trainer.dataset's ClipDataset through make_loader (PyAV, seek near the
    clip's start, random resized crop and flip), per video size and worker count, plus the
    cost of one random clip in a 10 s video with sparse and with dense keyframes;
  - the model step alone: trainer.engine.train_one_epoch on synthetic uint8 clips already in
    memory (the AMT model with HVU-sized heads: 739 actions, 248 scenes, 1678 objects);
  - end to end: the same step fed by the DataLoader.
The pipeline is healthy when end to end is within 10% of the slower of the two parts.

    .venv/bin/python bench/train_throughput.py --case tiny,8,2             # backbone,batch,workers
    .venv/bin/python bench/train_throughput.py --case r3d18,4,2 --threads 1 --write BENCHMARKS.md
      (--write replaces the "## Trainer throughput" section of that file and nothing else)
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import av
import numpy as np
import torch
from benchmarks_md import replace_section
from synthetic_clips import CODEC, write_video

from trainer.dataset import ClipDataset, ClipSettings, make_loader
from trainer.decoding import decode_clip
from trainer.engine import train_one_epoch
from trainer.losses import Objective
from trainer.models import BACKBONES, ModelConfig, build_model
from trainer.utils import resolve_amp
from trainer.videos import ClipTable

SECTION_TITLE = "## Trainer throughput (bench/train_throughput.py)"
HVU_VOCABULARY = {"n_actions": 739, "n_scenes": 248, "n_objects": 1678}
HEALTHY_SHARE = 0.9


@dataclass(frozen=True)
class Case:
    backbone: str
    batch_size: int
    workers: int

    @classmethod
    def parse(cls, text: str) -> Case:
        backbone, batch_size, workers = text.split(",")
        if backbone not in BACKBONES:
            raise argparse.ArgumentTypeError(f"unknown backbone {backbone!r}; one of {', '.join(BACKBONES)}")
        return cls(backbone, int(batch_size), int(workers))


def parse_size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def clip_table(paths: list[Path], n_rows: int, windows: list | None = None) -> ClipTable:
    """``n_rows`` rows cycling over ``paths`` (and their ``windows``: the times to cut from a whole video);
    the labels do not matter for throughput."""
    rows = [str(paths[i % len(paths)]) for i in range(n_rows)]
    empty = np.zeros(0, dtype=np.int64)
    return ClipTable(
        clip_id=[f"c{i}" for i in range(n_rows)],
        path=rows,
        action=np.zeros(n_rows, dtype=np.int64),
        action_idx=[np.zeros(1, dtype=np.int64)] * n_rows,
        scene_idx=[empty] * n_rows,
        object_idx=[empty] * n_rows,
        scene=[""] * n_rows,
        scenes=[""] * n_rows,
        window=[windows[i % len(windows)] for i in range(n_rows)] if windows else [],
    )


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- decoding
def decode_rate(
    paths: list[Path],
    settings: ClipSettings,
    *,
    batch_size: int,
    workers: int,
    batches: int,
    windows: list | None = None,
) -> float:
    """Clips/s of the training DataLoader alone (the first batch, which starts the workers, not counted)."""
    dataset = ClipDataset(
        clip_table(paths, (batches + 1) * batch_size, windows),
        n_scenes=1,
        n_objects=1,
        settings=settings,
        train=True,
    )
    loader = make_loader(
        dataset, batch_size=batch_size, workers=workers, seed=0, shuffle=True, drop_last=True
    )
    loader.sampler.set_epoch(1)
    batches_left = iter(loader)
    next(batches_left)
    started = time.perf_counter()
    clips = sum(batch["n"] for batch in batches_left)
    return clips / (time.perf_counter() - started)


def random_clip_ms(path: Path, settings: ClipSettings, *, clips: int) -> float:
    """Mean milliseconds to decode one random clip of ``path`` (one process, no crop)."""
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for _ in range(clips):
        decode_clip(
            str(path),
            clip_len=settings.clip_len,
            frame_stride=settings.frame_stride,
            short_side=(settings.size, settings.size),
            rng=rng,
        )
    return 1000 * (time.perf_counter() - started) / clips


# --------------------------------------------------------------------------- the step
def synthetic_batch(batch_size: int, settings: ClipSettings, *, pin: bool) -> dict:
    """A collated batch as trainer.dataset.collate_clips makes it: uint8 video (b, 3, t, h, w) and targets."""
    generator = torch.Generator().manual_seed(0)
    video = torch.randint(
        0,
        256,
        (batch_size, 3, settings.clip_len, settings.size, settings.size),
        dtype=torch.uint8,
        generator=generator,
    )
    batch = {
        "video": video.pin_memory() if pin else video,
        "action": torch.randint(0, HVU_VOCABULARY["n_actions"], (batch_size,), generator=generator),
        "scene": (torch.rand(batch_size, HVU_VOCABULARY["n_scenes"], generator=generator) < 0.01).float(),
        "object": (torch.rand(batch_size, HVU_VOCABULARY["n_objects"], generator=generator) < 0.01).float(),
        "index": torch.arange(batch_size),
        "n": batch_size,
        "skipped": 0,
    }
    return batch


class Trainer:
    """The AMT model (action + adversarial scene + auxiliary object heads) and one SGD step function."""

    def __init__(self, backbone: str, device: torch.device, amp: str, channels_last: bool) -> None:
        torch.manual_seed(0)
        config = ModelConfig(
            backbone=backbone, head_hidden=2048, scene_head=True, object_head=True, **HVU_VOCABULARY
        )
        self.memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
        self.model = build_model(config).to(device, memory_format=self.memory_format)
        self.device = device
        self.amp_dtype = resolve_amp(amp, device)
        self.objective = Objective(lambda_=-0.3, gamma=1.0)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.9)
        spec = BACKBONES[backbone]
        self.mean = torch.tensor(spec.mean, device=device)
        self.std = torch.tensor(spec.std, device=device)

    def run(self, batches) -> int:
        """Train on ``batches``; returns the clips trained on."""
        metrics = train_one_epoch(
            self.model,
            self.objective,
            self.optimizer,
            batches,
            self.device,
            1,
            mean=self.mean,
            std=self.std,
            amp_dtype=self.amp_dtype,
            memory_format=self.memory_format,
        )
        synchronize(self.device)
        return metrics["n"]


def timed(fn) -> tuple[int, float]:
    started = time.perf_counter()
    clips = fn()
    return clips, time.perf_counter() - started


def measure_case(case: Case, paths: list[Path], settings: ClipSettings, args, device: torch.device) -> dict:
    trainer = Trainer(case.backbone, device, args.amp, args.channels_last)
    batch = synthetic_batch(case.batch_size, settings, pin=device.type == "cuda")
    trainer.run([batch] * args.warmup)  # cuDNN autotuning, allocator warm-up
    clips, seconds = timed(lambda: trainer.run([batch] * args.steps))
    step = clips / seconds

    n_rows = (args.steps + args.warmup) * case.batch_size
    dataset = ClipDataset(
        clip_table(paths, n_rows),
        n_scenes=HVU_VOCABULARY["n_scenes"],
        n_objects=HVU_VOCABULARY["n_objects"],
        settings=settings,
        train=True,
    )
    loader = make_loader(
        dataset,
        batch_size=case.batch_size,
        workers=case.workers,
        seed=0,
        shuffle=True,
        drop_last=True,
        pin_memory=device.type == "cuda",
        prefetch_factor=args.prefetch_factor,
    )
    loader.sampler.set_epoch(1)
    batches = iter(loader)
    trainer.run(itertools.islice(batches, args.warmup))  # starts the workers
    clips, seconds = timed(lambda: trainer.run(itertools.islice(batches, args.steps)))
    end_to_end = clips / seconds
    decode = decode_rate(
        paths, settings, batch_size=case.batch_size, workers=case.workers, batches=args.steps
    )
    slower = min(decode, step)
    return {
        "case": case,
        "decode": decode,
        "step": step,
        "end_to_end": end_to_end,
        "share": end_to_end / slower,
        "healthy": end_to_end >= HEALTHY_SHARE * slower,
    }


# --------------------------------------------------------------------------- report
def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{cpu}, {torch.get_num_threads()} torch thread(s)"


def section(args, device, settings, decode_rows, seek_rows, case_rows, total_seconds, loads) -> str:
    video_note = (
        f"synthetic {CODEC} videos ({args.seconds:g} s at {args.fps} fps, x264 preset veryfast, keyframe "
        "every "
        f"{args.keyint} frames; the files sit in the page cache)"
    )
    lines = [
        SECTION_TITLE,
        "",
        f"{date.today().isoformat()}. {machine(device)}; Python {platform.python_version()}, torch "
        f"{torch.__version__}, "
        f"PyAV {av.__version__}; device {device.type}, --amp {args.amp} "
        f"({resolve_amp(args.amp, device) or 'float32'}), channels-last "
        f"{'on' if args.channels_last else 'off'}. "
        f"Clips: {settings.clip_len} frames {settings.frame_stride} apart, {settings.size}×{settings.size} "
        "random "
        f"resized crops and flips, decoded by trainer.dataset from {video_note}. The model step is "
        f"trainer.engine.train_one_epoch (SGD, momentum 0.9) on the AMT model with HVU-sized heads "
        f"({HVU_VOCABULARY['n_actions']} actions, {HVU_VOCABULARY['n_scenes']} scenes, "
        f"{HVU_VOCABULARY['n_objects']} objects, width 2048) fed synthetic uint8 clips already in memory; "
        f"end to end is the same step fed by the DataLoader (prefetch factor {args.prefetch_factor}). "
        f"{args.warmup} warm-up and {args.steps} timed steps per case.",
        "",
        "### Decoding alone",
        "",
        "| video | workers | clips/s | ms per clip and worker |",
        "|---|---:|---:|---:|",
    ]
    for size, workers, rate in decode_rows:
        per_clip = 1000 * max(1, workers) / rate
        lines.append(f"| {size[0]}×{size[1]} | {workers} | {rate:.1f} | {per_clip:.0f} |")
    lines += [
        "",
        "One random clip of a 10 s video, one process (seek to the keyframe before the clip, decode from "
        "there):",
        "",
        "| video | keyframe every | ms per clip |",
        "|---|---:|---:|",
    ]
    for size, keyint, ms in seek_rows:
        lines.append(f"| {size[0]}×{size[1]} | {keyint} frames | {ms:.0f} |")
    lines += [
        "",
        f"### Step and end to end ({args.video_sizes[0][0]}×{args.video_sizes[0][1]} videos)",
        "",
        "| backbone | batch | workers | decoding alone | step alone | end to end | end to end / slower part "
        "| healthy (≥ 90%) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in case_rows:
        case = row["case"]
        lines.append(
            f"| {case.backbone} | {case.batch_size} | {case.workers} | {row['decode']:.1f} | "
            f"{row['step']:.1f} | "
            f"{row['end_to_end']:.1f} | {row['share']:.0%} | {'yes' if row['healthy'] else 'no'} |"
        )
    lines.append("")
    if device.type == "cpu":
        lines.append(
            "On CPU the decoding workers and the training step compete for the same cores, so end to end "
            "falls "
            "below the slower part whenever both are busy; the 10% rule is meant for a GPU step, which "
            "leaves "
            "the CPU cores to the workers."
        )
        lines.append("")
    lines.append(
        f"Load average before / after: {loads[0]:.2f} / {loads[1]:.2f} (other work shares the machine); "
        f"whole benchmark {total_seconds / 60:.1f} min."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--case", type=Case.parse, action="append", help="backbone,batch,workers (repeatable)"
    )
    parser.add_argument(
        "--video-sizes", type=lambda s: [parse_size(v) for v in s.split(",")], default="320x240,640x360"
    )
    parser.add_argument("--decode-workers", default="0,1,2", help="worker counts of the decoding-alone table")
    parser.add_argument("--videos", type=int, default=8, help="distinct video files per size")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--keyint", type=int, default=250, help="frames between keyframes (x264's default)")
    parser.add_argument("--clip-len", type=int, default=16)
    parser.add_argument("--frame-stride", type=int, default=2)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--steps", type=int, default=8, help="timed steps (batches) per measurement")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--prefetch-factor", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", default="auto", choices=("auto", "bf16", "fp16", "off"))
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads of the training process; 0 = default"
    )
    parser.add_argument(
        "--write", type=Path, metavar="BENCHMARKS.md", help="replace the section in this file"
    )
    args = parser.parse_args()
    cases = args.case or [Case("tiny", 8, 2)]
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    settings = ClipSettings(clip_len=args.clip_len, frame_stride=args.frame_stride, size=args.size)
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="train_throughput_") as tmp:
        videos: dict[tuple[int, int], list[Path]] = {}
        seek_rows = []
        for width, height in args.video_sizes:
            folder = Path(tmp) / f"{width}x{height}"
            folder.mkdir()
            videos[(width, height)] = []
            for i in range(args.videos):
                path = folder / f"v{i}.mp4"
                write_video(
                    path,
                    width=width,
                    height=height,
                    seconds=args.seconds,
                    fps=args.fps,
                    keyint=args.keyint,
                    seed=i,
                )
                videos[(width, height)].append(path)
            for keyint in sorted({args.keyint, args.fps}, reverse=True):
                probe = folder / f"keyint{keyint}.mp4"
                write_video(probe, width=width, height=height, seconds=10.0, fps=args.fps, keyint=keyint)
                seek_rows.append(((width, height), keyint, random_clip_ms(probe, settings, clips=20)))
            print(f"wrote {args.videos} videos of {width}×{height}", file=sys.stderr)
        decode_rows = []
        for size in args.video_sizes:
            for workers in (int(w) for w in args.decode_workers.split(",")):
                rate = decode_rate(videos[size], settings, batch_size=8, workers=workers, batches=args.steps)
                decode_rows.append((size, workers, rate))
                print(f"decoding {size[0]}×{size[1]}, {workers} workers: {rate:.1f} clips/s", file=sys.stderr)
        case_rows = []
        for case in cases:
            row = measure_case(case, videos[args.video_sizes[0]], settings, args, device)
            case_rows.append(row)
            print(
                f"{case}: decode {row['decode']:.1f}, step {row['step']:.1f}, end to end "
                f"{row['end_to_end']:.1f} clips/s",
                file=sys.stderr,
            )
    loads = (load_before, os.getloadavg()[0])
    text = section(
        args, device, settings, decode_rows, seek_rows, case_rows, time.perf_counter() - started, loads
    )
    print(text)
    if args.write:
        replace_section(args.write, SECTION_TITLE, text)
        print(f"wrote the section into {args.write}", file=sys.stderr)


if __name__ == "__main__":
    main()
