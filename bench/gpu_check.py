"""GPU check of the trainer at scale (issue 10): one prepared script of a few minutes for a lent GPU.

Runs the CUDA paths that the CPU tests cannot, and prints a Markdown section:
  1. training throughput (clips/s) and peak GPU memory of r3d18 and r3d50 at 16×112×112 with
     bf16 autocast, channels_last_3d and cudnn.benchmark, per batch size; one batch size again
     without channels_last;
  2. fp16 autocast with the gradient scaler (r3d50, a few steps: finite losses, the scale);
  3. torch.compile of the r3d18 backbone: compile time and clips/s after;
  4. a 2-epoch smoke run of trainer.train on synthetic clips (decoding workers, pinned memory,
     bf16 by default, --channels-last), stopped after epoch 1 and resumed, then evaluate_run;
  5. with two or more GPUs, a one-epoch torchrun run with NCCL and --sync-bn.

    .venv/bin/python bench/gpu_check.py                          # on the GPU machine (a few minutes)
    .venv/bin/python bench/gpu_check.py --write BENCHMARKS.md    # and replace its section there
    .venv/bin/python bench/gpu_check.py --dry-run                # CPU, toy sizes, float32: checks the script
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch
from benchmarks_md import replace_section
from synthetic_clips import write_split
from train_throughput import Trainer, synchronize, synthetic_batch

from hvucontracts import runfolder
from hvueval.evaluate import evaluate_run
from trainer.config import TrainConfig
from trainer.dataset import ClipSettings
from trainer.engine import train_one_epoch
from trainer.train import train
from trainer.utils import resolve_amp

SECTION_TITLE = "## GPU check (bench/gpu_check.py)"
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Scale:
    """Sizes of one check: the real ones on a GPU, toy ones for --dry-run on CPU."""

    clip_len: int
    size: int
    batch_sizes: tuple[int, ...]
    warmup: int
    steps: int
    smoke_clips: tuple[int, int]  # train, val
    smoke_video: tuple[int, int]  # width, height
    smoke_backbone: str
    smoke_batch: int
    smoke_workers: int


GPU_SCALE = Scale(16, 112, (8, 16, 32, 64), 3, 10, (64, 32), (320, 240), "r3d18", 16, 6)
DRY_SCALE = Scale(4, 32, (2,), 1, 1, (8, 4), (64, 48), "r3d18", 4, 1)


def gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB"


def throughput(trainer: Trainer, settings: ClipSettings, batch_size: int, scale: Scale) -> dict:
    """clips/s of the training step at one batch size, and the peak memory it needed (CUDA)."""
    device = trainer.device
    batch = synthetic_batch(batch_size, settings, pin=device.type == "cuda")
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        trainer.run([batch] * scale.warmup)
        started = time.perf_counter()
        clips = trainer.run([batch] * scale.steps)
        seconds = time.perf_counter() - started
    except torch.OutOfMemoryError:
        trainer.optimizer.zero_grad(set_to_none=True)
        return {"batch": batch_size, "clips_per_s": None, "peak": None, "note": "out of memory"}
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {"batch": batch_size, "clips_per_s": clips / seconds, "peak": peak, "note": ""}


def fp16_check(device: torch.device, settings: ClipSettings, scale: Scale, backbone: str) -> dict:
    """A few fp16 steps with the gradient scaler (on CPU: float32 with the scaler on, same code path)."""
    trainer = Trainer(backbone, device, "fp16" if device.type == "cuda" else "off", channels_last=True)
    scaler = torch.amp.GradScaler(device.type, enabled=True)
    batch = synthetic_batch(scale.batch_sizes[0], settings, pin=device.type == "cuda")
    metrics = train_one_epoch(
        trainer.model,
        trainer.objective,
        trainer.optimizer,
        [batch] * (scale.warmup + scale.steps),
        device,
        1,
        mean=trainer.mean,
        std=trainer.std,
        scaler=scaler,
        amp_dtype=trainer.amp_dtype,
        memory_format=trainer.memory_format,
    )
    synchronize(device)
    return {"loss": metrics["loss"], "finite": math.isfinite(metrics["loss"]), "scale": scaler.get_scale()}


def compile_check(device: torch.device, settings: ClipSettings, scale: Scale) -> dict:
    """torch.compile of the r3d18 backbone (as --compile does): compile time, then clips/s."""
    trainer = Trainer("r3d18", device, "auto", channels_last=True)
    trainer.model.backbone.compile()
    batch_size = scale.batch_sizes[min(2, len(scale.batch_sizes) - 1)]
    batch = synthetic_batch(batch_size, settings, pin=device.type == "cuda")
    started = time.perf_counter()
    trainer.run([batch])  # compiles
    compile_seconds = time.perf_counter() - started
    trainer.run([batch] * scale.warmup)
    started = time.perf_counter()
    clips = trainer.run([batch] * scale.steps)
    return {
        "batch": batch_size,
        "compile_s": compile_seconds,
        "clips_per_s": clips / (time.perf_counter() - started),
    }


def smoke_run(root: Path, device: torch.device, scale: Scale) -> dict:
    """trainer.train for 2 epochs (1, stop, resume, 1) on synthetic clips, then evaluate_run."""
    started = time.perf_counter()
    split_dir, _ = write_split(
        root / "data",
        n_train=scale.smoke_clips[0],
        n_val=scale.smoke_clips[1],
        width=scale.smoke_video[0],
        height=scale.smoke_video[1],
        seconds=4.0 if device.type == "cuda" else 1.0,
    )
    written = time.perf_counter() - started
    cfg = TrainConfig(
        split_dir=str(split_dir),
        out=str(root / "run"),
        backbone=scale.smoke_backbone,
        epochs=2,
        batch_size=scale.smoke_batch,
        workers=scale.smoke_workers,
        clip_len=scale.clip_len,
        size=scale.size,
        patience=0,
        channels_last=True,
        device=device.type,
    )
    log_lines: list[str] = []
    train(cfg, stop_after=1, log=log_lines.append)
    train(cfg, resume=True, log=log_lines.append)
    doc = evaluate_run(root / "run", checkpoint="last", device=device.type, log=log_lines.append)
    metrics = runfolder.read_metrics(root / "run")
    # the set that each epoch selected on: val here (write_split writes no select.csv)
    selected = [runfolder.selection_metrics(line)[1] for line in metrics]
    finite = all(
        math.isfinite(part["loss"])
        for line, chosen in zip(metrics, selected, strict=True)
        for part in (line["train"], chosen)
        if part["loss"]
    )
    return {
        "videos_s": written,
        "epochs": [
            (m["epoch"], m["seconds"], m["train"]["loss"], chosen["action_acc"])
            for m, chosen in zip(metrics, selected, strict=True)
        ],
        "train_clips": metrics[-1]["train"]["n"],
        "finite": finite,
        "resumed": any("resumed" in line for line in log_lines),
        "eval_top1": doc["top1"],
        "eval_matches_val": math.isclose(doc["top1"], selected[-1]["action_acc"], rel_tol=1e-9),
        "amp": {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[resolve_amp(cfg.amp, device)],
    }


def ddp_run(root: Path, split_dir: Path) -> dict:
    """One epoch under torchrun with two GPUs, NCCL and --sync-bn."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "trainer",
        "train", "--split", str(split_dir), "--out", str(root / "ddp"),
        "--backbone", "r3d18", "--epochs", "1",
        "--batch-size", "8", "--workers", "4", "--channels-last", "--sync-bn", "--patience", "0",
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    metrics_path = root / "ddp" / runfolder.METRICS
    line = runfolder.read_metrics(root / "ddp")[-1] if metrics_path.exists() else None
    return {
        "returncode": proc.returncode,
        "seconds": time.perf_counter() - started,
        "val_n": runfolder.selection_metrics(line)[1]["n"] if line else None,
        "lr": line["lr"] if line else None,
        "stderr_tail": proc.stderr[-2000:],
    }


def environment(device: torch.device) -> str:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        gpu = f"{props.name} ({gib(props.total_memory)}), {torch.cuda.device_count()} GPU(s)"
        return (
            f"{gpu}; torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN "
            f"{torch.backends.cudnn.version()}, "
            f"Python {platform.python_version()}, {os.cpu_count()} CPU cores"
        )
    return f"dry run on CPU ({os.cpu_count()} cores), torch {torch.__version__}: toy sizes, float32, no GPU"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dry-run", action="store_true", help="CPU, toy sizes: check the script itself")
    parser.add_argument("--backbones", default="r3d18,r3d50")
    parser.add_argument("--skip-compile", action="store_true")
    parser.add_argument(
        "--write", type=Path, metavar="BENCHMARKS.md", help="replace the section in this file"
    )
    args = parser.parse_args()
    if args.dry_run:
        device, scale = torch.device("cpu"), DRY_SCALE
        if args.write:
            parser.error("--write records GPU numbers; a dry run has none")
    elif torch.cuda.is_available():
        device, scale = torch.device("cuda"), GPU_SCALE
        torch.backends.cudnn.benchmark = True  # as the trainer sets it on CUDA
    else:
        parser.error("no CUDA device here; run with --dry-run to check the script on CPU")
    settings = ClipSettings(clip_len=scale.clip_len, size=scale.size)
    amp = "auto" if device.type == "cuda" else "off"
    started = time.perf_counter()
    lines = [
        SECTION_TITLE,
        "",
        f"{date.today().isoformat()}. {environment(device)}.",
        "",
        f"### Training step at {scale.clip_len}×{scale.size}×{scale.size} "
        f"({'bf16 autocast' if device.type == 'cuda' else 'float32'}, SGD, AMT model with HVU-sized heads)",
        "",
        "| backbone | batch | channels_last | clips/s | peak GPU memory | note |",
        "|---|---:|---|---:|---:|---|",
    ]
    for backbone in args.backbones.split(","):
        for channels_last, batch_sizes in (
            (True, scale.batch_sizes),
            (False, scale.batch_sizes[-2:-1] or scale.batch_sizes),
        ):
            trainer = Trainer(backbone, device, amp, channels_last)
            for batch_size in batch_sizes:
                row = throughput(trainer, settings, batch_size, scale)
                rate = "-" if row["clips_per_s"] is None else f"{row['clips_per_s']:.1f}"
                peak = "-" if row["peak"] is None else gib(row["peak"])
                lines.append(
                    f"| {backbone} | {batch_size} | {'on' if channels_last else 'off'} | {rate} | {peak} | "
                    f"{row['note']} |"
                )
                print(lines[-1], file=sys.stderr)
            del trainer
            if device.type == "cuda":
                torch.cuda.empty_cache()

    fp16 = fp16_check(device, settings, scale, args.backbones.split(",")[-1])
    precision = "fp16 autocast" if device.type == "cuda" else "float32 (dry run)"
    lines += [
        "",
        f"{precision} with the gradient scaler ({args.backbones.split(',')[-1]}, batch "
        f"{scale.batch_sizes[0]}, "
        f"{scale.warmup + scale.steps} steps): mean loss {fp16['loss']:.3f}, finite: {fp16['finite']}, "
        f"final scale {fp16['scale']:g}.",
    ]
    if args.skip_compile or args.dry_run:
        lines.append("torch.compile: skipped" + (" (dry run)." if args.dry_run else "."))
    else:
        compiled = compile_check(device, settings, scale)
        lines.append(
            f"torch.compile of the r3d18 backbone (batch {compiled['batch']}): first step "
            f"{compiled['compile_s']:.0f} s "
            f"(compiling), then {compiled['clips_per_s']:.1f} clips/s."
        )
    print("\n".join(lines[-2:]), file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        smoke = smoke_run(Path(tmp), device, scale)
        lines += [
            "",
            f"### Smoke run: trainer.train, 2 epochs ({scale.smoke_backbone}, {scale.smoke_clips[0]} train / "
            f"{scale.smoke_clips[1]} val synthetic clips of {scale.smoke_video[0]}×{scale.smoke_video[1]}, "
            "batch "
            f"{scale.smoke_batch}, {scale.smoke_workers} workers, --amp auto = {smoke['amp']}, "
            "--channels-last)",
            "",
            "| epoch | seconds | train loss | val action acc |",
            "|---:|---:|---:|---:|",
            *(f"| {e} | {s:.1f} | {loss:.3f} | {acc:.3f} |" for e, s, loss, acc in smoke["epochs"]),
            "",
            f"Epoch 2 was a resumed call: {smoke['resumed']}. Losses finite: {smoke['finite']}. "
            f"evaluate_run top-1 {smoke['eval_top1']:.3f}, equal to the last validation: "
            f"{smoke['eval_matches_val']}. "
            f"(Writing the clips took {smoke['videos_s']:.0f} s.)",
        ]
        if device.type == "cuda" and torch.cuda.device_count() >= 2:
            ddp = ddp_run(Path(tmp), Path(tmp) / "data" / "split")
            lines.append(
                f"torchrun, 2 GPUs, NCCL, --sync-bn, 1 epoch: exit {ddp['returncode']} in "
                f"{ddp['seconds']:.0f} s, "
                f"val n {ddp['val_n']}, lr {ddp['lr']}."
            )
            if ddp["returncode"]:
                lines += ["", "```", ddp["stderr_tail"], "```"]
        else:
            lines.append("torchrun with NCCL and SyncBatchNorm: not checked (needs two GPUs).")
    lines += ["", f"Whole check: {(time.perf_counter() - started) / 60:.1f} min."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        replace_section(args.write, SECTION_TITLE, text)
        print(f"wrote the section into {args.write}", file=sys.stderr)


if __name__ == "__main__":
    main()
