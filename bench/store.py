"""Benchmark of the audit core at full HVU training-set scale (500k synthetic clips).

Times, in one run on this machine:
  * generating 500k clips with the synthetic generator;
  * ingest + a full ``SELECT * FROM cooccurrence`` (DuckDB), against the same
    work done the straightforward way in pandas (read, explode, self-merge,
    group-by), each in its own process so peak RSS is measured per approach;
  * reading one action's co-occurrence rows (the TUI's hot path);
  * NCA for one category over all actions, and a 21-point threshold sweep;
  * building (and exporting) an SI-2 split.
Writes the figures into the "Store, NCA and splits" section of BENCHMARKS.md.

Run: .venv/bin/python bench/store.py [--clips 500000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks_md import replace_section

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Store, NCA and splits (bench/store.py)"

# VmHWM is this process's own peak; ru_maxrss would also count the parent's peak before exec.
PEAK_RSS = """
def peak_rss_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
"""

DUCKDB_JOB = (
    PEAK_RSS
    + """
import json, sys, time
from hvuaudit.ingest import ingest
from hvuaudit.store import open_store
files, categories, db = sys.argv[1].split(","), sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
summary = ingest(files, categories, db=db)
t1 = time.perf_counter()
with open_store(db) as con:
    rows = con.sql("SELECT * FROM cooccurrence").to_arrow_table().num_rows
t2 = time.perf_counter()
print(json.dumps({"ingest_s": t1 - t0, "cooccurrence_s": t2 - t1, "pairs": rows,
                  "clip_tags": summary.clip_tags_added,
                  "peak_rss_mb": peak_rss_mb()}))
"""
)

PANDAS_JOB = (
    PEAK_RSS
    + """
import json, sys, time
import pandas as pd
files, categories = sys.argv[1].split(","), sys.argv[2]
t0 = time.perf_counter()
clips = pd.concat([pd.read_csv(f, dtype=str) for f in files], ignore_index=True)
clips["clip"] = range(len(clips))
cats = pd.read_csv(categories, dtype=str).set_index("Tag")["Category"]
pairs = clips[["clip", "Tags"]].assign(tag=clips["Tags"].str.split("|")).explode("tag")[["clip", "tag"]]
pairs = pairs.drop_duplicates()
pairs["category"] = pairs["tag"].map(cats)
t1 = time.perf_counter()
actions = pairs[pairs["category"] == "action"]
others = pairs[pairs["category"] != "action"]
both = actions.merge(others, on="clip", suffixes=("_a", "_t"))
counts = both.groupby(["tag_a", "tag_t"]).size().rename("n_both").reset_index()
tag_n = pairs.groupby("tag").size()
counts["n_action"] = counts["tag_a"].map(tag_n)
counts["n_tag"] = counts["tag_t"].map(tag_n)
counts["p"] = counts["n_both"] / counts["n_action"]
counts["lift"] = counts["n_both"] * len(clips) / (counts["n_action"] * counts["n_tag"])
t2 = time.perf_counter()
print(json.dumps({"ingest_s": t1 - t0, "cooccurrence_s": t2 - t1, "pairs": len(counts),
                  "peak_rss_mb": peak_rss_mb()}))
"""
)


def run_child(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh interpreter (it reports its own peak RSS); return its JSON output."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"benchmark job failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def timed(func, repeat: int = 1) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=500_000)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()

    from hvuaudit.nca import compute_nca, nca_sweep, parse_thresholds
    from hvuaudit.roles import recommend_roles
    from hvuaudit.splits import SplitParams, build_split, export_split
    from hvuaudit.store import open_store, run_query
    from hvuaudit.synthetic import SynthConfig, generate_annotations

    work = Path(tempfile.mkdtemp(prefix="hvuaudit-bench-"))
    t0 = time.perf_counter()
    files = generate_annotations(SynthConfig(clips=args.clips, seed=0), work / "synth")
    generate_s = time.perf_counter() - t0
    csvs = ",".join(str(p) for p in files.annotations)

    pandas = run_child(PANDAS_JOB, csvs, str(files.categories))
    ours = run_child(DUCKDB_JOB, csvs, str(files.categories), str(work / "bench.duckdb"))
    ours_rss, pandas_rss = ours["peak_rss_mb"], pandas["peak_rss_mb"]
    ours_total = ours["ingest_s"] + ours["cooccurrence_s"]
    pandas_total = pandas["ingest_s"] + pandas["cooccurrence_s"]

    db = work / "bench.duckdb"
    with open_store(db) as con:
        actions = run_query(con, "actions")["action"].to_list()
        sample = actions[:: max(1, len(actions) // 20)][:20]
        one_action = statistics.median(
            timed(lambda a=a: run_query(con, "action_cooccurrence", action=a)) for a in sample
        )
        nca_scene = timed(lambda: compute_nca(con, "scene"), repeat=3)
        nca_object = timed(lambda: compute_nca(con, "object"), repeat=3)
        sweep = timed(lambda: nca_sweep(con, ["scene"], parse_thresholds("0:1:0.05")), repeat=3)
        nca_all_clips = timed(lambda: compute_nca(con, "scene", clips="all"), repeat=3)
        roles = timed(lambda: recommend_roles(con), repeat=3)  # both clip modes, 2,000 resamples, the band
        split_build = timed(lambda: build_split(con, SplitParams(variant="2", min_videos=124)), repeat=3)
    with open_store(db, read_only=False) as con:
        result = build_split(con, SplitParams(variant="2", min_videos=124))
        split_export = timed(lambda: export_split(con, result, work / "si2", force=True))
    # the command as a user runs it, in its own process once the store is free
    hvuaudit = [sys.executable, "-c", "from hvuaudit.cli import main; main()"]
    roles_command = timed(
        lambda: subprocess.run([*hvuaudit, "nca", "roles", "--db", str(db)], capture_output=True, check=True),
        repeat=3,
    )

    rows = [
        ("synthetic generator, 500k clips", f"{generate_s:.1f} s", ""),
        ("ingest (DuckDB)", f"{ours['ingest_s']:.2f} s", f"{ours['clip_tags']:,} clip-tag rows"),
        ("full `SELECT * FROM cooccurrence`", f"{ours['cooccurrence_s']:.2f} s", f"{ours['pairs']:,} pairs"),
        ("**ingest + co-occurrence, DuckDB**", f"**{ours_total:.2f} s**", f"peak RSS {ours_rss:.0f} MB"),
        (
            "ingest + co-occurrence, pandas",
            f"{pandas_total:.2f} s",
            f"peak RSS {pandas_rss:.0f} MB; read+explode {pandas['ingest_s']:.1f} s, merge+count "
            f"{pandas['cooccurrence_s']:.1f} s",
        ),
        ("**speed-up over pandas**", f"**{pandas_total / ours_total:.1f}×**", "target ≥ 3×"),
        (
            "one action's co-occurrence rows (median of 20 actions)",
            f"{one_action * 1000:.0f} ms",
            "target < 100 ms",
        ),
        (
            "NCA, scene, all actions (labelled clips, the default)",
            f"{nca_scene * 1000:.0f} ms",
            "target < 1 s",
        ),
        ("NCA, object, all actions (labelled clips)", f"{nca_object * 1000:.0f} ms", "target < 1 s"),
        ("NCA sweep, 21 thresholds, scene", f"{sweep * 1000:.0f} ms", "target < 1 s"),
        ("NCA, scene, counting all clips", f"{nca_all_clips * 1000:.0f} ms", "target < 1 s"),
        (
            "`recommend_roles` (scene vs object, both clip modes, 2,000 resamples, exact band)",
            f"{roles * 1000:.0f} ms",
            "target < 1 s",
        ),
        (
            "`hvuaudit nca roles`, the whole command (Python's start included)",
            f"{roles_command:.2f} s",
            "target < 1 s",
        ),
        (
            "SI-2 split, build (min-videos 124)",
            f"{split_build:.2f} s",
            f"{result.train.height:,} train / {result.val.height:,} val clips; target < 5 s",
        ),
        ("SI-2 split, export (folder + store)", f"{split_export:.2f} s", ""),
    ]
    table = "| step | time | notes |\n|---|---|---|\n" + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    text = (
        f"{SECTION}\n\n"
        f"{args.clips:,} synthetic clips (`hvuaudit synth annotations`, seed 0), 2-core machine, "
        f"{time.strftime('%Y-%m-%d')}. Each of ingest+co-occurrence and pandas runs in its own process; "
        "peak RSS is that process's own high-water mark (VmHWM).\n\n"
        f"{table}\n"
    )
    print(text)
    if not args.no_write:
        replace_section(ROOT / "BENCHMARKS.md", SECTION, text)


if __name__ == "__main__":
    main()
