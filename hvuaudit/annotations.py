"""Human necessity annotation (paper §3.3): the queue, durable answers, exchange, agreement.

Sits beside NCA: people answer "is this scene/object necessary for this action?"
for co-occurring pairs, and the answers are compared with each other (Cohen's
and Fleiss' κ) and with NCA's verdict. Every answer is its own committed
transaction (a killed session loses nothing already answered); the current
answer per (annotator, action, tag) lives in ``annotations`` and every change
is kept in ``annotation_events``. Stores are exchanged as CSV or JSONL because
DuckDB allows one writer at a time, so annotators work on their own copies.
The terminal prompt is here; the TUI screen calls the same functions.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from hvuaudit.categories import DEFAULT_CLIPS, DEFAULT_THRESHOLD, SIDE_CATEGORIES
from hvuaudit.errors import InputError, StoreError
from hvuaudit.nca import check_clips, labelled_counts
from hvuaudit.store import check_category, require_clips, run_query, transaction

ANSWERS = ("necessary", "not_necessary", "unsure")
KEYS = {"y": "necessary", "n": "not_necessary", "u": "unsure"}
ORDERS = ("nca", "frequency", "random")
EXCHANGE_COLUMNS = ["annotator", "action", "tag", "category", "answer", "note", "answered_at", "source"]

GUIDELINES = """\
Is the {category} necessary for the action to be performed?

  necessary      the action cannot be performed without it
                 (ice swimming needs a body of water; playing violin needs a violin)
  not necessary  the action can be performed without it, even if the two often
                 appear together (breakdancing does not need a stage; climbing a tree
                 does not need shoes)
  unsure         you cannot tell, or the tag is ambiguous

Necessary is not the same as sufficient or typical: a stage is typical for
breakdancing in the data, but people breakdance in streets and gyms too.
Judge the action itself, not how often the two co-occur in the videos.

Keys: y necessary · n not necessary · u unsure · b back (change the previous answer)
      ? these guidelines · q quit (every answer is already saved)
"""


def check_annotator(name: str | None) -> str:
    if name is None or not name.strip():
        raise InputError("the annotator name is empty", hint="pass --annotator NAME (e.g. your initials)")
    return name.strip()


def build_queue(
    con: duckdb.DuckDBPyConnection,
    *,
    category: str,
    annotator: str | None = None,
    min_cooccurrence: int = 1,
    order: str = "nca",
    seed: int = 0,
    limit: int | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    clips: str = DEFAULT_CLIPS,
) -> pl.DataFrame:
    """The pairs still to answer, most informative first.

    ``nca`` puts the pairs whose NCA ratio lies closest to the threshold (on a log
    scale) first: those are the ones where NCA's verdict is least certain.
    ``frequency`` puts the most frequent pairs first; ``random`` shuffles with ``seed``.
    ``clips`` is the NCA clip mode of the ratio (:func:`hvuaudit.nca.compute_nca`).
    """
    check_category(category, SIDE_CATEGORIES)
    if order not in ORDERS:
        raise InputError(f"unknown order '{order}'", hint=f"use one of: {', '.join(ORDERS)}")
    if min_cooccurrence < 1:
        raise InputError(f"--min-cooccurrence must be at least 1 (got {min_cooccurrence})")
    require_clips(con)
    if check_clips(clips) == "labelled":
        labelled_counts(con, category, None)  # refuses a category no clip is labelled for
    pairs = run_query(
        con,
        "internal/annotation_pairs",
        category=category,
        min_cooccurrence=min_cooccurrence,
        annotator=annotator,
        clips=check_clips(clips),
    )
    if order == "nca":
        # distance of log(ratio) from log(threshold); ratio 0 counts as very certain
        closeness = (pl.col("ratio") + 1e-3).log() - np.log(threshold + 1e-3)
        pairs = pairs.with_columns(closeness.abs().alias("_key")).sort(
            ["_key", "n_both", "action", "tag"], descending=[False, True, False, False]
        )
    elif order == "frequency":
        pairs = pairs.sort(["n_both", "action", "tag"], descending=[True, False, False])
    else:
        permutation = np.random.default_rng(seed).permutation(pairs.height)
        pairs = pairs.with_columns(pl.Series("_key", permutation)).sort("_key")
    pairs = pairs.drop("_key", strict=False).with_columns(clips=pl.lit(clips))
    return pairs.head(limit) if limit is not None else pairs


def record_answer(
    con: duckdb.DuckDBPyConnection,
    *,
    annotator: str,
    action: str,
    tag: str,
    category: str,
    answer: str,
    note: str | None = None,
    source: str = "prompt",
    answered_at: datetime | None = None,
) -> None:
    """Validate and store one answer in its own transaction (durable once this returns).

    Durable through DuckDB's write-ahead log at COMMIT: no CHECKPOINT, which would have to
    wait for every open read (a TUI screen) to finish.
    """
    annotator = check_annotator(annotator)
    if answer not in ANSWERS:
        raise InputError(f"unknown answer '{answer}'", hint=f"use one of: {', '.join(ANSWERS)}")
    found = run_query(con, "internal/pair_category", action=action, tag=tag).row(0, named=True)
    if found["action_category"] != "action":
        raise InputError(f"'{action}' is not an action in the store")
    if found["tag_category"] != category:
        raise InputError(f"'{tag}' is not a {category} tag in the store")
    with transaction(con):
        run_query(
            con,
            "internal/record_answer",
            annotator=annotator,
            action=action,
            tag=tag,
            category=category,
            answer=answer,
            note=note,
            answered_at=answered_at or datetime.now(),
            source=source,
        )


def previous_answer(
    con: duckdb.DuckDBPyConnection, annotator: str, category: str, exclude: Iterable[tuple[str, str]] = ()
) -> dict | None:
    """For "back": the annotator's most recently answered pair in ``category`` that is not in ``exclude``
    (action, tag), with its counts; None when there is none."""
    keys = [f"{action}\x1f{tag}" for action, tag in exclude]
    rows = run_query(con, "internal/latest_answer", annotator=annotator, category=category, exclude=keys)
    return rows.row(0, named=True) if rows.height else None


def annotation_progress(
    con: duckdb.DuckDBPyConnection, *, annotator: str, category: str, min_cooccurrence: int = 1
) -> tuple[int, int]:
    """(answered, total) over the annotator's queue."""
    row = run_query(
        con,
        "internal/annotation_progress",
        annotator=annotator,
        category=category,
        min_cooccurrence=min_cooccurrence,
    ).row(0)
    return int(row[0]), int(row[1])


# ---------------------------------------------------------------- terminal prompt


def run_prompt(
    con: duckdb.DuckDBPyConnection,
    *,
    annotator: str,
    category: str,
    read_key: Callable[[str], str],
    write: Callable[[str], None],
    min_cooccurrence: int = 1,
    order: str = "nca",
    seed: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    clips: str = DEFAULT_CLIPS,
    examples: Callable[[str, str], list[str]] | None = None,
) -> int:
    """Ask one pair at a time; return the number of answers given. ``read_key`` returns '' at end of input."""
    annotator = check_annotator(annotator)
    queue = build_queue(
        con,
        category=category,
        annotator=annotator,
        min_cooccurrence=min_cooccurrence,
        order=order,
        seed=seed,
        threshold=threshold,
        clips=clips,
    ).iter_rows(named=True)
    answered, total = annotation_progress(
        con, annotator=annotator, category=category, min_cooccurrence=min_cooccurrence
    )
    write(GUIDELINES.format(category=category))
    given = 0
    revisit: dict | None = None
    history: list[dict] = []
    while True:
        pair = revisit or next(queue, None)
        revisit = None
        if pair is None:
            write(f"done: {answered}/{total} pairs answered for {category}")
            return given
        write(
            f"\n[{answered + 1}/{total}] action: {pair['action']}   {category}: {pair['tag']}   "
            f"(together in {pair['n_both']} of the action's {pair['n_action']} clips)"
        )
        for line in examples(pair["action"], pair["tag"]) if examples else []:
            write(f"    {line}")
        key = read_key("necessary? [y/n/u, b back, ? help, q quit] ").strip().lower()
        if key in ("", "q"):
            write(f"stopped: {answered}/{total} answered; run the same command to resume")
            return given
        if key == "?":
            write(GUIDELINES.format(category=category))
            revisit = pair
        elif key == "b":
            if not history:
                write("nothing to go back to in this session")
                revisit = pair
                continue
            previous = history.pop()
            write(f"back to {previous['action']} / {previous['tag']} (was: {previous['answer']})")
            queue = itertools.chain([pair], queue)
            revisit = previous
            answered -= 1
        elif key in KEYS:
            record_answer(
                con,
                annotator=annotator,
                action=pair["action"],
                tag=pair["tag"],
                category=category,
                answer=KEYS[key],
                source="prompt",
            )
            history.append({**pair, "answer": KEYS[key]})
            answered += 1
            given += 1
            write(f"saved: {KEYS[key]}")
        else:
            write(f"'{key}' is not a key: use y, n, u, b, ? or q")
            revisit = pair


# ---------------------------------------------------------------- exchange


def export_answers(con: duckdb.DuckDBPyConnection, path: Path, *, annotator: str | None = None) -> int:
    """Write current answers (one annotator or all) as CSV, or JSONL when ``path`` ends in .jsonl."""
    from hvucontracts.files import write_atomically

    frame = (
        run_query(con, "internal/current_answers", annotator=annotator)
        .select(EXCHANGE_COLUMNS)
        .with_columns(pl.col("answered_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f"))
    )
    if Path(path).suffix == ".jsonl":
        write_atomically(Path(path), lambda tmp: frame.write_ndjson(tmp))
    else:
        write_atomically(Path(path), lambda tmp: frame.write_csv(tmp))
    return frame.height


@dataclass
class ImportSummary:
    added: int = 0
    unchanged: int = 0
    updated: int = 0
    kept: int = 0
    conflicts: list[dict] = field(default_factory=list)

    def one_line(self) -> str:
        return (
            f"imported {self.added} new answer(s), {self.updated} newer answer(s) replaced older ones, "
            f"{self.unchanged} already present, {self.kept} answer(s) not newer than the stored one ignored; "
            f"{len(self.conflicts)} conflict(s)"
        )


def _exchange_text(path: Path) -> str:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path}, line {line}: the file is not UTF-8 (byte 0x{data[exc.start]:02x})",
            hint="export the answers again with hvuaudit annotate export, or re-save the file as UTF-8",
        ) from exc


def _read_exchange_file(path: Path) -> tuple[list[int], dict[str, list]]:
    """The physical line of each answer and its fields, column by column (right across blank lines
    and quoted newlines). Every field is a string or empty."""
    text = _exchange_text(path)
    lines: list[int] = []
    columns: dict[str, list] = {name: [] for name in EXCHANGE_COLUMNS}
    if path.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"{path}, line {number}: not JSON ({exc.msg})",
                    hint="each line must be one JSON object, as hvuaudit annotate export writes",
                ) from exc
            if not isinstance(row, dict):
                raise InputError(
                    f"{path}, line {number}: a JSON {type(row).__name__}, not an object",
                    hint="each line must be one JSON object, as hvuaudit annotate export writes",
                )
            missing = [c for c in EXCHANGE_COLUMNS if c not in row]
            if missing:
                raise InputError(
                    f"{path}, line {number}: missing field(s) {', '.join(missing)}",
                    hint=f"each object needs: {', '.join(EXCHANGE_COLUMNS)}",
                )
            for name in EXCHANGE_COLUMNS:
                value = row[name]
                if value is not None and not isinstance(value, str):
                    raise InputError(
                        f"{path}, line {number}: field '{name}' is a {type(value).__name__}, not text",
                        hint="every field is a JSON string (or null for note and source)",
                    )
                columns[name].append(value)
            lines.append(number)
        return lines, columns
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])
    missing = [c for c in EXCHANGE_COLUMNS if c not in header]
    if missing:
        raise InputError(
            f"{path}, line 1: missing column(s) {', '.join(missing)}",
            hint=f"the header must be: {','.join(EXCHANGE_COLUMNS)}",
        )
    index = [header.index(c) for c in EXCHANGE_COLUMNS]
    previous_end = reader.line_num
    for fields in reader:
        start, previous_end = previous_end + 1, reader.line_num
        if not fields:
            continue  # a blank line
        if len(fields) != len(header):
            raise InputError(
                f"{path}, line {start}: {len(fields)} field(s), the header has {len(header)}",
                hint="quote a field that contains a comma",
            )
        for name, at in zip(EXCHANGE_COLUMNS, index, strict=True):
            columns[name].append(fields[at])
        lines.append(start)
    return lines, columns


def _iso_time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _check_exchange(path: Path, order: int, lines: list[int], columns: dict[str, list]) -> pl.DataFrame:
    """The answers of one file as a frame, or the first bad row as an error naming its line."""
    frame = pl.DataFrame(
        {"_line": lines, **columns}, schema={"_line": pl.Int64, **dict.fromkeys(EXCHANGE_COLUMNS, pl.String)}
    )
    answered = pl.Series("_at", [_iso_time(t) for t in columns["answered_at"]], dtype=pl.Datetime("us"))
    frame = frame.with_columns(pl.col("annotator").str.strip_chars(), answered, pl.lit(order).alias("_order"))
    checks = [
        (pl.col("annotator").fill_null("") == "", lambda r: "the annotator is empty", None),
        (
            ~pl.col("answer").fill_null("").is_in(ANSWERS),
            lambda r: f"unknown answer '{r['answer']}'",
            f"use one of: {', '.join(ANSWERS)}",
        ),
        (
            pl.col("_at").is_null(),
            lambda r: f"answered_at '{r['answered_at']}' is not an ISO date-time",
            None,
        ),
    ]
    for bad, message, hint in checks:
        first = frame.filter(bad).head(1)
        if first.height:
            row = first.row(0, named=True)
            raise InputError(f"{path}, line {row['_line']}: {message(row)}", hint=hint)
    return frame.with_columns(
        pl.col("note").replace("", None),
        pl.col("source").replace("", None).fill_null(path.name),
        pl.lit(str(path)).alias("_file"),
    )


def import_answers(con: duckdb.DuckDBPyConnection, paths: Iterable[Path]) -> ImportSummary:
    """Merge exported answers in one set-based statement; idempotent.

    A conflict (another answer for the same annotator, action and tag) is resolved by
    answered_at: the newer answer wins. On equal answered_at the answer already in the
    store is kept; between the imported files, the one given later on the command line
    (and the later line within a file) wins.
    """
    frames = [_check_exchange(p, k, *_read_exchange_file(p)) for k, p in enumerate(map(Path, paths))]
    frame = (
        pl.concat(frames) if frames else _check_exchange(Path("-"), 0, [], {c: [] for c in EXCHANGE_COLUMNS})
    )
    con.register("imported_check", frame.select("_order", "_file", "_line", "action", "tag", "category"))
    try:
        problems = run_query(con, "internal/import_problems")
    finally:
        con.unregister("imported_check")
    if problems.height:
        row = problems.row(0, named=True)
        hint = "import into a store built from the same annotation files"
        raise InputError(f"{row['file']}, line {row['line']}: {row['problem']}", hint=hint)
    staged = frame.select(
        "annotator",
        "action",
        "tag",
        "category",
        "answer",
        "note",
        pl.col("_at").alias("answered_at"),
        "source",
    )
    # The newest answer per (annotator, action, tag) within the files themselves wins; a tie goes to the later
    # row.
    staged = staged.sort("answered_at", maintain_order=True).unique(
        ["annotator", "action", "tag"], keep="last", maintain_order=True
    )
    summary = ImportSummary()
    con.register("imported_frame", staged)
    try:
        with transaction(con):
            outcome = run_query(con, "internal/import_answers")
    finally:
        con.unregister("imported_frame")
    counts = outcome.group_by("outcome").len()
    for name, count in counts.iter_rows():
        setattr(summary, name, count)
    summary.conflicts = outcome.filter(pl.col("outcome").is_in(["updated", "kept"])).to_dicts()
    return summary


# ---------------------------------------------------------------- agreement


def cohen_kappa(a: list[str], b: list[str]) -> float | None:
    """Cohen's κ of two raters over the same items; None when undefined (no items, or no variation)."""
    if not a:
        return None
    labels = sorted(set(a) | set(b))
    index = {label: i for i, label in enumerate(labels)}
    table = np.zeros((len(labels), len(labels)))
    for x, y in zip(a, b, strict=True):
        table[index[x], index[y]] += 1
    n = table.sum()
    observed = np.trace(table) / n
    expected = float((table.sum(0) * table.sum(1)).sum() / n**2)
    return None if expected == 1.0 else float((observed - expected) / (1 - expected))


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' κ from an (items × categories) matrix of rater counts (same raters per item)."""
    if counts.shape[0] == 0:
        return None
    raters = counts.sum(1)
    if not np.all(raters == raters[0]) or raters[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings for every item")
    n, m = counts.shape[0], raters[0]
    p_item = ((counts * (counts - 1)).sum(1)) / (m * (m - 1))
    p_category = counts.sum(0) / (n * m)
    expected = float((p_category**2).sum())
    return None if expected == 1.0 else float((p_item.mean() - expected) / (1 - expected))


def annotation_stats(
    con: duckdb.DuckDBPyConnection,
    categories: list[str],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    clips: str = DEFAULT_CLIPS,
) -> dict[str, pl.DataFrame]:
    """Per-annotator results, agreement, majority labels and NCA-versus-people, per category."""
    answers = run_query(con, "annotations_of").filter(pl.col("category").is_in(categories))
    if answers.height == 0:
        raise StoreError(
            "there are no answers for " + ", ".join(categories),
            hint="collect some first: hvuaudit annotate run --annotator NAME --category scene",
        )
    per_annotator = (
        answers.group_by("category", "annotator")
        .agg(
            pl.len().alias("answers"),
            pl.col("action").n_unique().alias("actions"),
            pl.col("action").filter(pl.col("answer") == "necessary").n_unique().alias("actions_requiring"),
        )
        .with_columns(
            (100 * pl.col("actions_requiring") / pl.col("actions")).round(2).alias("pct_actions_requiring")
        )
        .sort("category", "annotator")
    )
    summary = (
        per_annotator.group_by("category")
        .agg(
            pl.len().alias("annotators"),
            pl.col("pct_actions_requiring").mean().round(3).alias("mean_pct"),
            pl.col("pct_actions_requiring").var(ddof=0).round(3).alias("variance_pct"),
        )
        .sort("category")
    )

    agreement_rows, pair_rows, majority_frames = [], [], []
    for category in categories:
        part = answers.filter(pl.col("category") == category)
        if part.height == 0:
            continue
        wide = part.pivot(
            on="annotator", index=["action", "tag"], values="answer", aggregate_function="first"
        )
        raters = sorted(c for c in wide.columns if c not in ("action", "tag"))
        complete = wide.drop_nulls(raters)
        fleiss = None
        if len(raters) >= 2 and complete.height:
            counts = np.stack(
                [(complete.select(raters).to_numpy() == label).sum(1) for label in ANSWERS], axis=1
            )
            fleiss = fleiss_kappa(counts)
        agreement_rows.append(
            {
                "category": category,
                "annotators": len(raters),
                "items_any": wide.height,
                "items_all": complete.height,
                "coverage": round(complete.height / wide.height, 4) if wide.height else 0.0,
                "fleiss_kappa": None if fleiss is None else round(fleiss, 4),
                "note": "" if len(raters) >= 2 else "κ not applicable: fewer than two annotators",
            }
        )
        for r1, r2 in itertools.combinations(raters, 2):
            both = wide.drop_nulls([r1, r2])
            kappa = cohen_kappa(both[r1].to_list(), both[r2].to_list())
            pair_rows.append(
                {
                    "category": category,
                    "annotator_a": r1,
                    "annotator_b": r2,
                    "items": both.height,
                    "cohen_kappa": None if kappa is None else round(kappa, 4),
                }
            )
        votes = part.group_by("action", "tag", "answer").len()
        top = (
            votes.sort(["action", "tag", "len"], descending=[False, False, True])
            .group_by(["action", "tag"], maintain_order=True)
            .agg(
                pl.col("answer").first().alias("majority"),
                pl.col("len").first().alias("votes"),
                pl.col("len").sum().alias("answers"),
                (pl.col("len").first() == pl.col("len").slice(1, 1).first()).fill_null(False).alias("tie"),
            )
        )
        top = top.with_columns(
            pl.when(pl.col("tie")).then(pl.lit("tie")).otherwise(pl.col("majority")).alias("majority")
        )
        majority_frames.append(top.drop("tie").with_columns(pl.lit(category).alias("category")))
    majority = pl.concat(majority_frames) if majority_frames else pl.DataFrame()
    versus, disagreements, scores = _nca_versus_people(con, majority, threshold, check_clips(clips))
    return {
        "per_annotator": per_annotator,
        "summary": summary,
        "agreement": pl.DataFrame(agreement_rows),
        "pairwise": pl.DataFrame(
            pair_rows,
            schema={
                "category": pl.String,
                "annotator_a": pl.String,
                "annotator_b": pl.String,
                "items": pl.Int64,
                "cohen_kappa": pl.Float64,
            },
        ),
        "majority": majority.select("category", "action", "tag", "majority", "votes", "answers"),
        "nca_vs_people": versus,
        "nca_scores": scores,
        "disagreements": disagreements,
    }


def _nca_versus_people(con: duckdb.DuckDBPyConnection, majority: pl.DataFrame, threshold: float, clips: str):
    """Confusion matrix of NCA's pair verdict (ratio <= threshold, over ``clips``) against the majority."""
    ratios = run_query(con, "internal/pair_ratios", clips=clips)
    joined = majority.filter(pl.col("majority").is_in(["necessary", "not_necessary"])).join(
        ratios, on=["action", "tag"], how="left"
    )
    joined = joined.with_columns(
        (pl.col("ratio").is_not_null() & (pl.col("ratio") <= threshold)).alias("nca_necessary"),
        (pl.col("majority") == "necessary").alias("human_necessary"),
    )
    confusion = (
        joined.group_by("category", "human_necessary", "nca_necessary")
        .len()
        .sort("category", "human_necessary", "nca_necessary")
        .rename({"len": "pairs"})
        .with_columns(threshold=pl.lit(threshold), clips=pl.lit(clips))
    )
    score_rows = []
    for (category,), part in joined.group_by("category", maintain_order=True):
        tp = part.filter(pl.col("human_necessary") & pl.col("nca_necessary")).height
        fp = part.filter(~pl.col("human_necessary") & pl.col("nca_necessary")).height
        fn = part.filter(pl.col("human_necessary") & ~pl.col("nca_necessary")).height
        score_rows.append(
            {
                "category": category,
                "threshold": threshold,
                "clips": clips,
                "pairs": part.height,
                "precision": round(tp / (tp + fp), 4) if tp + fp else None,
                "recall": round(tp / (tp + fn), 4) if tp + fn else None,
            }
        )
    # Disagreement strength: how far the ratio sits from the threshold, on a log scale.
    disagreements = (
        joined.filter(pl.col("human_necessary") != pl.col("nca_necessary"))
        .with_columns(
            ((pl.col("ratio").fill_null(1e6) + 1e-3).log() - np.log(threshold + 1e-3)).abs().alias("distance")
        )
        .sort("distance", descending=True)
        .select("category", "action", "tag", "majority", "votes", "ratio", "nca_necessary", "distance")
        .head(20)
        .with_columns(clips=pl.lit(clips))
    )
    return confusion, disagreements, pl.DataFrame(score_rows)
