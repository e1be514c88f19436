"""Time `hvuaudit annotate import` of one million answers (issue target: under 30 s).

Builds a store from 20,000 synthetic clips, writes 1,000,000 answers over its
co-occurring (action, scene/object) pairs as an export file would hold them
(several annotators), imports them into a fresh copy of the store, then imports
the same file again (all unchanged). Prints the figures and records them in
BENCHMARKS.md. Run: python bench/annotate_import.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_md import replace_section  # noqa: E402

from hvuaudit.annotations import ANSWERS, import_answers  # noqa: E402
from hvuaudit.ingest import ingest  # noqa: E402
from hvuaudit.store import open_store  # noqa: E402
from hvuaudit.synthetic import SynthConfig, generate_annotations  # noqa: E402

ANSWER_ROWS = 1_000_000


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="hvuaudit-bench-import-"))
    try:
        files = generate_annotations(SynthConfig(clips=20_000, seed=0, val_fraction=0.0), work / "synth")
        db = work / "s.duckdb"
        ingest(files.annotations, files.categories, db=db)
        with open_store(db) as con:
            pairs = con.sql(
                "SELECT action, tag, category FROM cooccurrence WHERE category IN ('scene', 'object')"
            ).pl()
        annotators = -(-ANSWER_ROWS // pairs.height)
        rng = np.random.default_rng(0)
        answers = pl.concat([pairs.with_columns(annotator=pl.lit(f"a{k}")) for k in range(annotators)]).head(
            ANSWER_ROWS
        )
        answers = answers.with_columns(
            answer=pl.Series(np.array(ANSWERS)[rng.integers(0, 3, answers.height)]),
            note=pl.lit(None, pl.String),
            answered_at=pl.lit(datetime(2026, 11, 1).isoformat()),
            source=pl.lit("bench"),
        ).select("annotator", "action", "tag", "category", "answer", "note", "answered_at", "source")
        path = work / "answers.csv"
        answers.write_csv(path)
        timings = {}
        for run in ("first import (all new)", "same file again (all unchanged)"):
            started = time.perf_counter()
            with open_store(db, read_only=False) as con:
                summary = import_answers(con, [path])
            timings[run] = (time.perf_counter() - started, summary.one_line())
        lines = [
            "## Annotate import (bench/annotate_import.py)",
            "",
            f"{answers.height:,} answers ({annotators} annotators × {pairs.height:,} pairs of a 20,000-clip "
            "synthetic "
            f"store) in one CSV of {path.stat().st_size / 1e6:.0f} MB, 2-core machine, "
            f"{datetime.now():%Y-%m-%d}. Target: under 30 s.",
            "",
            "| run | time | result |",
            "|---|---:|---|",
            *[f"| {run} | {seconds:.1f} s | {result} |" for run, (seconds, result) in timings.items()],
        ]
        text = "\n".join(lines) + "\n"
        print(text)
        replace_section(Path(__file__).resolve().parents[1] / "BENCHMARKS.md", lines[0], text)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
