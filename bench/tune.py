"""What `hvuaudit tune` costs on the CPU demo benchmark (issue #20), in one run.

A 3 × 2 grid (λ = 0.1, 0.3, 1; γ = 0.3, 1) of AMT runs with the cpu-demo recipe on the demo's SI-2
split of seed 0: trained one after the other, then with --jobs 2 into another folder, then the
first command again (every point reused). Then each point's best.pt is scored on val.csv, the test
pairs, by `hvuaudit eval` — only to show what the choice on select.csv costs there, never to choose.

  .venv/bin/hvuaudit demo --out /tmp/demo      # once: writes /tmp/demo/seed0/si2 among others
  .venv/bin/python bench/tune.py /tmp/demo/seed0/si2
  .venv/bin/python bench/tune.py /tmp/demo/seed0/si2 --write BENCHMARKS.md
    (--write replaces the "## Tune" section of that file and nothing else)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from benchmarks_md import replace_section

GRID = ("--grid", "lambda=0.1,0.3,1", "--grid", "gamma=0.3,1")
HVUAUDIT = str(Path(sys.executable).with_name("hvuaudit"))


def timed_tune(split: Path, out: Path, *extra: str) -> float:
    command = [HVUAUDIT, "tune", "--split", str(split), "--recipe", "cpu-demo", "--method", "amt", *GRID]
    started = time.perf_counter()
    subprocess.run([*command, "--out", str(out), *extra], check=True, capture_output=True)
    return time.perf_counter() - started


def val_top1(run: Path) -> float:
    done = subprocess.run(
        [HVUAUDIT, "eval", str(run), "--sets", "val", "--workers", "0", "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout)["sets"]["val"]["top1"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("split", type=Path, help="the demo's SI-2 split folder (DEMO/seed0/si2)")
    parser.add_argument("--write", type=Path, help="replace the Tune section of this BENCHMARKS.md")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="hvuaudit-bench-tune-"))
    try:
        sequential = timed_tune(args.split, root / "one")
        parallel = timed_tune(args.split, root / "two", "--jobs", "2")
        reused = timed_tune(args.split, root / "one")
        doc = json.loads((root / "one" / "tune.json").read_text())
        in_parallel = json.loads((root / "two" / "tune.json").read_text())
        same = [p["selection_acc"] for p in doc["points"]] == [
            p["selection_acc"] for p in in_parallel["points"]
        ]
        rows = [(p, val_top1(Path(p["run"]))) for p in doc["points"]]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    chosen = doc["chosen"]["name"]
    best_val = max(rows, key=lambda row: row[1])
    lines = [
        "## Tune (bench/tune.py)",
        "",
        f"{date.today()}, {platform.machine()} with {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after. "
        f"`.venv/bin/python bench/tune.py DEMO/seed0/si2`: `hvuaudit tune --recipe cpu-demo --method amt "
        f"{' '.join(GRID)}` on the CPU demo benchmark's SI-2 split of seed 0 (6 points of 12 epochs).",
        "",
        f"- one point after the other: {sequential:.0f} s ({sequential / len(rows):.0f} s a point);",
        f"- `--jobs 2`: {parallel:.0f} s ({sequential / parallel:.2f}× faster; the same scores: {same});",
        f"- the same command again, every point reused: {reused:.1f} s.",
        "",
        "| point | select top-1 | select action loss | best epoch "
        "| val top-1 (test pairs, not used to choose) |",
        "|---|---:|---:|---:|---:|",
    ]
    for point, val in rows:
        mark = " (chosen)" if point["name"] == chosen else ""
        lines.append(
            f"| {point['name']}{mark} | {100 * point['selection_acc']:.1f} | {point['selection_loss']:.4f} | "
            f"{point['best_epoch']} | {100 * val:.1f} |"
        )
    lines += [
        "",
        f"The chosen point is {chosen}; on the test pairs the best point would have been "
        f"{best_val[0]['name']} "
        f"({100 * best_val[1]:.1f}% against {100 * dict((p['name'], v) for p, v in rows)[chosen]:.1f}%).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        replace_section(args.write, "## Tune (bench/tune.py)", text)


if __name__ == "__main__":
    main()
