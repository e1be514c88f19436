"""Benchmark of `hvuaudit tui` on the 500k-clip synthetic store (issue 6: start < 1.5 s, selections < 200 ms).

Measured on one store, in one run:
  - startup in a real terminal: `hvuaudit tui` under tmux (120x36), from the moment the
    command starts to the moment the overview's first screen, then its store summary, appear
    in the pane (capture-pane polled every 10 ms; includes Python start, imports, compose and the
    first paint, and then the overview worker's queries);
  - startup headless, in a fresh process: time to the first frame, to the overview summary and to the
    tags-per-clip pane (quartiles and histogram, which follow the summary),
    from before `import hvuaudit.tui.app` (so imports are counted);
  - selection latencies, in-process with Pilot (headless, 120x36): from the key press to the
    moment the widgets show the new data, for moving through the action list, switching a
    category tab, drilling into a pair's clips, changing the NCA threshold and category,
    sorting (s) and filtering (/) a table (the NCA table and the browser's action list), and
    answering an annotation card (the next card with its example clips).

    .venv/bin/python bench/tui.py                        # builds the store, prints the section
    .venv/bin/python bench/tui.py --db /tmp/s500k.duckdb # reuse a store made by hvuaudit ingest
    .venv/bin/python bench/tui.py --write BENCHMARKS.md  # and replaces its "## TUI" section

With --first-nca DB (the real 31k validation store, issue 21: under 1 s), only the first open of the NCA
screen is timed, in a fresh app each run: from the key 3 to the table, to the Fig. 2d plot and to the
roles; --write then replaces the "## TUI: first NCA open" section.

    .venv/bin/python bench/tui.py --first-nca hvu_val.duckdb --write BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from benchmarks_md import replace_section

SECTION_TITLE = "## TUI (bench/tui.py)"
FIRST_NCA_TITLE = "## TUI: first NCA open (bench/tui.py --first-nca)"
SIZE = (120, 36)
ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ store


def build_store(work: Path, clips: int) -> tuple[Path, float]:
    from hvuaudit.ingest import ingest
    from hvuaudit.synthetic import SynthConfig, generate_annotations

    started = time.perf_counter()
    files = generate_annotations(SynthConfig(clips=clips, seed=0), work / "synth")
    db = work / "synth.duckdb"
    ingest(files.annotations, files.categories, db=db)
    return db, time.perf_counter() - started


# ------------------------------------------------------------------ startup


def startup_in_tmux(db: Path, runs: int) -> list[tuple[float, float]]:
    """(first screen, store summary) seconds for `hvuaudit tui` in a real terminal."""
    tmux = shutil.which("tmux")
    if tmux is None:
        return []
    script = Path(sys.executable).with_name("hvuaudit")
    results = []
    for run in range(runs):
        socket = f"hvuaudit-bench-{os.getpid()}-{run}"
        command = f"env -u COLUMNS -u LINES TERM=xterm-256color {script} tui --db {db} --read-only"
        started = time.perf_counter()
        subprocess.run(
            [
                tmux,
                "-L",
                socket,
                "new-session",
                "-d",
                "-s",
                "b",
                "-x",
                str(SIZE[0]),
                "-y",
                str(SIZE[1]),
                command,
            ],
            check=True,
        )
        first = summary = None
        try:
            while time.perf_counter() - started < 30:
                pane = subprocess.run(
                    [tmux, "-L", socket, "capture-pane", "-p", "-t", "b"], capture_output=True, text=True
                ).stdout
                now = time.perf_counter() - started
                if first is None and "2 Browse" in pane and "hvuaudit" in pane:  # header and footer painted
                    first = now
                if "clips in" in pane and "source file(s)" in pane:
                    summary = now
                    break
                time.sleep(0.01)
        finally:
            subprocess.run([tmux, "-L", socket, "kill-server"], capture_output=True)
        if first is not None and summary is not None:
            results.append((first, summary))
    return results


CHILD_STARTUP = r"""
import asyncio, sys, time
t0 = time.perf_counter()
from pathlib import Path
from hvuaudit.tui.app import make_app
from hvuaudit.tui.widgets import FrameTable
imported = time.perf_counter() - t0

async def main():
    app = make_app(Path(sys.argv[1]), read_only=True)
    async with app.run_test(size=(120, 36)) as pilot:
        ready = time.perf_counter() - t0
        table = app.screen.query_one("#subsets", FrameTable)
        while table.row_count == 0:
            await asyncio.sleep(0.002)
        data = time.perf_counter() - t0
        quartiles = app.screen.query_one("#tags-per-clip", FrameTable)
        while quartiles.row_count == 0:
            await asyncio.sleep(0.002)
        tags_per_clip = time.perf_counter() - t0
    print(f"{imported:.4f} {ready:.4f} {data:.4f} {tags_per_clip:.4f}")

asyncio.run(main())
"""


def startup_headless(db: Path, runs: int) -> list[tuple[float, float, float, float]]:
    """(imports, first frame, overview data, tags-per-clip pane) seconds in a fresh process, headless."""
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", CHILD_STARTUP, str(db)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout.split()
        results.append(tuple(float(x) for x in out))  # type: ignore[misc]
    return results


# ------------------------------------------------------------------ selections


async def _until(pilot, condition, timeout: float = 30.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the screen did not update")
        await asyncio.sleep(0.001)
    await pilot.pause()


async def _settle(pilot) -> None:
    for _ in range(10):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in pilot.app.workers):
            return


async def _measure(pilot, key: str, condition) -> float:
    """Seconds from the key press until ``condition()`` holds (polled every millisecond).

    Polled by a task beside the press, because Pilot's press also waits for animations
    (the tab underline slides for ~0.3 s) that do not delay the data.
    """
    started = time.perf_counter()
    seen: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def holds() -> bool:
        try:
            return bool(condition())
        except Exception:  # noqa: BLE001 - e.g. a screen still composing its widgets
            return False

    async def watch() -> None:
        while not holds():
            await asyncio.sleep(0.001)
        seen.set_result(time.perf_counter() - started)

    watcher = asyncio.create_task(watch())
    await pilot.press(key)
    try:
        elapsed = await asyncio.wait_for(seen, 30)
    except TimeoutError:
        raise TimeoutError(
            f"after {key!r} the screen did not update: {pilot.app.screen}, focus on {pilot.app.focused}"
        ) from None
    finally:
        watcher.cancel()
    await _settle(pilot)
    return elapsed


async def selections(db: Path, moves: int) -> dict[str, list[float]]:
    from hvuaudit.tui.app import make_app
    from hvuaudit.tui.screens.clips import ClipsScreen
    from hvuaudit.tui.widgets import FrameTable

    timings: dict[str, list[float]] = {}
    app = make_app(db, read_only=False)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)

        # first open of the browser: actions list, first action's pairs, NCA cells of 5 categories
        started = time.perf_counter()
        await pilot.press("2")
        browser = app.screen
        await _until(pilot, lambda: browser.shown is not None)
        timings["first open of the browser (actions + first action + NCA cells)"] = [
            time.perf_counter() - started
        ]
        await _settle(pilot)

        actions = browser.query_one("#actions", FrameTable)
        for _ in range(moves):
            target = str(actions.get_row_at(actions.cursor_row + 1)[0])
            timings.setdefault("browser: next action (↓) → its tags with NCA cells", []).append(
                await _measure(
                    pilot, "down", lambda t=target: browser.shown is not None and browser.shown[0] == t
                )
            )
        await pilot.press("enter")  # focus the tags table
        await _settle(pilot)
        for _ in range(4):
            before = browser.category
            timings.setdefault("browser: category tab (]) → the tags of that category", []).append(
                await _measure(
                    pilot,
                    "right_square_bracket",
                    lambda b=before: browser.shown is not None and browser.shown[1] != b,
                )
            )
        opened = lambda: isinstance(app.screen, ClipsScreen) and app.screen.clips.height > 0  # noqa: E731
        for _ in range(min(moves, 10)):
            # at once: the clips are queried after the key
            timings.setdefault("browser: open a pair's clips (enter at once)", []).append(
                await _measure(pilot, "enter", opened)
            )
            await pilot.press("escape", "down")
            await _settle(pilot)
        for _ in range(min(moves, 10)):
            # after the row was highlighted for 0.4 s: the screen fetched its clips meanwhile
            await asyncio.sleep(0.4)
            await _settle(pilot)
            timings.setdefault("browser: open a pair's clips (enter after 0.4 s on the row)", []).append(
                await _measure(pilot, "enter", opened)
            )
            await pilot.press("escape", "down")
            await _settle(pilot)

        await pilot.press("3")
        nca = app.screen
        await _until(pilot, lambda: nca.frame is not None)
        await _settle(pilot)
        for _ in range(moves // 2):
            for key in ("plus", "minus"):
                target = round(app.threshold + (0.05 if key == "plus" else -0.05), 6)
                timings.setdefault("NCA: threshold ± 0.05 → table and count (the roles follow)", []).append(
                    await _measure(
                        pilot,
                        key,
                        lambda t=target: (
                            nca.frame is not None
                            and f"at {t:g}" in str(nca.query_one("#nca-summary").render())
                        ),
                    )
                )
        for _ in range(5):
            before = nca.category
            timings.setdefault("NCA: category tab (]) → table recomputed", []).append(
                await _measure(
                    pilot,
                    "right_square_bracket",
                    lambda b=before: nca.category != b and nca.frame is not None,
                )
            )

        # every table sorts and filters (issue 21): on the NCA table, then on the browser's action list
        for label, screen_key, table_id in (
            ("NCA table", "3", "#nca-table"),
            ("browser's actions", "2", "#actions"),
        ):
            await pilot.press(screen_key)
            await _settle(pilot)
            table = app.screen.query_one(table_id, FrameTable)
            table.focus()
            await _settle(pilot)
            for _ in range(6):
                before = table.sort_by
                timings.setdefault(f"any table: sort by the next column (s), {label}", []).append(
                    await _measure(pilot, "s", lambda b=before, t=table: t.sort_by != b)
                )
            if label == "NCA table":  # on the browser / is its own search
                for text in ("a", "in", "ing", "zzz", ""):
                    await pilot.press("slash")
                    await _settle(pilot)
                    await pilot.press(*["backspace"] * 8, *text)
                    await _settle(pilot)
                    timings.setdefault(f"any table: filter (/ text enter), {label}", []).append(
                        await _measure(pilot, "enter", lambda x=text, t=table: t.filter_text == x)
                    )
            timings[f"rows in the {label}"] = [float(table.source.height)]

        started = time.perf_counter()
        await pilot.press("4")
        await pilot.press(*"bench", "enter")
        annotate = app.screen
        await _until(pilot, lambda: getattr(annotate, "current", None) is not None, timeout=60)
        timings["annotate: first card (build_queue)"] = [time.perf_counter() - started]
        await _until(pilot, lambda: annotate.progress_known, timeout=60)
        timings["annotate: progress shown (annotation_progress)"] = [time.perf_counter() - started]
        await _settle(pilot)
        for _ in range(min(moves, 10)):
            index = annotate.index
            timings.setdefault("annotate: answer (y) → next card + examples", []).append(
                await _measure(
                    pilot,
                    "y",
                    lambda i=index: (
                        annotate.index == i + 1 and annotate.query_one("#examples").loading is False
                    ),
                )
            )
    return timings


async def first_nca_open(db: Path) -> tuple[float, float, float]:
    """Seconds from the key 3, in an app that has only shown its overview, to the NCA table, the plot
    and the roles (polled beside the press, as in _measure)."""
    from hvuaudit.tui.app import make_app
    from hvuaudit.tui.screens.nca import NcaScreen

    app = make_app(db, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await asyncio.sleep(1.0)  # a user reads the overview for a moment
        await _settle(pilot)

        def nca() -> NcaScreen | None:
            return app.screen if isinstance(app.screen, NcaScreen) else None

        conditions = (
            lambda s: s.frame is not None and s.query_one("#nca-table").row_count > 0,
            lambda s: all(key in s.sweeps for key in s._sweep_keys()),
            lambda s: (app.threshold, app.clips) in s.roles,
        )
        seen: list[float | None] = [None, None, None]
        started = time.perf_counter()

        async def watch() -> None:
            while None in seen:
                screen = nca()
                for index, condition in enumerate(conditions):
                    try:
                        if seen[index] is None and screen is not None and condition(screen):
                            seen[index] = time.perf_counter() - started
                    except Exception:  # noqa: BLE001 - the screen is still composing
                        pass
                await asyncio.sleep(0.001)

        watcher = asyncio.create_task(watch())
        await pilot.press("3")
        await asyncio.wait_for(watcher, 60)
        await _settle(pilot)
    return seen[0], seen[1], seen[2]  # type: ignore[return-value]


def first_nca_section(db: Path, runs: list[tuple[float, float, float]], load: tuple[float, float]) -> str:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        clips = con.execute("SELECT count(*) FROM clips").fetchone()[0]
    lines = [
        FIRST_NCA_TITLE,
        "",
        f"{clips:,} clips ({db.name}), {date.today()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {SIZE[0]}x{SIZE[1]}, a fresh app per run (headless, Pilot), "
        f"after its overview. Target (issue 21): the table under 1 s. Load average before / after: "
        f"{load[0]:.2f} / {load[1]:.2f}.",
        "",
        "| first open of the NCA screen (key 3) → | median | max | runs | target |",
        "|---|---:|---:|---:|---|",
    ]
    for index, what in enumerate(("the table and its count", "the Fig. 2d plot", "the task roles")):
        values = [run[index] for run in runs]
        target = "< 1 s" if index == 0 else ""
        lines.append(
            f"| {what} | **{fmt_ms(statistics.median(values))}** | {fmt_ms(max(values))} | {len(values)} | "
            f"{target} |"
        )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ report


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def section(
    args, store_s: float | None, tmux_runs, headless_runs, timings, loads: tuple[float, float]
) -> str:
    lines = [SECTION_TITLE, ""]
    lines.append(
        f"{args.clips:,} synthetic clips (seed 0), {date.today().isoformat()}, "
        f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores shared with other work, Python {platform.python_version()}, terminal "
        "120x36. "
        "Targets (issue 6): start < 1.5 s, every selection < 200 ms. "
        + (f"Store built in {store_s:.1f} s (generate + ingest). " if store_s is not None else "")
        + f"Load average before / after: {loads[0]:.2f} / {loads[1]:.2f} (other work shared the cores; "
        "compare numbers within one run)."
    )
    lines.append("")
    lines.append("| what | median | max | runs | target |")
    lines.append("|---|---:|---:|---:|---|")
    if tmux_runs:
        firsts = [f for f, _ in tmux_runs]
        summaries = [s for _, s in tmux_runs]
        lines.append(
            "| **startup in tmux: first screen** (`hvuaudit tui --read-only`) | "
            f"**{statistics.median(firsts):.2f} s** "
            f"| {max(firsts):.2f} s | {len(firsts)} | < 1.5 s |"
        )
        lines.append(
            f"| startup in tmux: overview with the store summary | {statistics.median(summaries):.2f} s "
            f"| {max(summaries):.2f} s | {len(summaries)} |  |"
        )
    if headless_runs:
        for index, label in enumerate(
            [
                "headless: imports (textual, polars, duckdb, app)",
                "headless: first frame",
                "headless: overview data shown",
                "headless: tags-per-clip statistics and histogram shown",
            ]
        ):
            values = [run[index] for run in headless_runs]
            lines.append(
                f"| {label} | {statistics.median(values):.2f} s | {max(values):.2f} s | {len(values)} | |"
            )
    for label, values in timings.items():
        if label.startswith("rows in the"):
            lines.append(f"| {label} | {values[0]:,.0f} rows | | | |")
            continue
        target = "< 200 ms" if len(values) > 1 else ""
        bold = "**" if target else ""
        lines.append(
            f"| {label} | {bold}{fmt_ms(statistics.median(values))}{bold} | {fmt_ms(max(values))} "
            f"| {len(values)} | {target} |"
        )
    lines.append("")
    lines.append(
        "Selections are timed from the key press to the moment the widget holds the new rows (Pilot, "
        "headless), "
        "so they include the worker's core call, the message back and the table refill; the first open of a "
        "screen and the first annotation queue are one-off loads, shown for completeness. Startup in tmux is "
        "the wall time from starting the command to the text appearing in the pane."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=500_000)
    parser.add_argument(
        "--db", type=Path, default=None, help="an existing store (copied; the original is not written)"
    )
    parser.add_argument("--runs", type=int, default=5, help="startup runs")
    parser.add_argument("--moves", type=int, default=20, help="selections per kind")
    parser.add_argument("--write", type=Path, default=None, help="replace the section in this markdown file")
    parser.add_argument(
        "--first-nca", type=Path, default=None, help="only time the first NCA open on this store"
    )
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    if args.first_nca is not None:
        runs = [asyncio.run(first_nca_open(args.first_nca)) for _ in range(args.runs)]
        text = first_nca_section(args.first_nca, runs, (load_before, os.getloadavg()[0]))
        print(text)
        if args.write:
            replace_section(args.write, FIRST_NCA_TITLE, text)
        return
    with tempfile.TemporaryDirectory(prefix="hvuaudit-bench-tui-") as tmp:
        work = Path(tmp)
        store_s = None
        if args.db is not None:
            db = work / "store.duckdb"
            shutil.copy(args.db, db)
        else:
            db, store_s = build_store(work, args.clips)
            print(f"store built in {store_s:.1f} s", file=sys.stderr)
        tmux_runs = startup_in_tmux(db, args.runs)
        print(f"tmux startup: {tmux_runs}", file=sys.stderr)
        headless_runs = startup_headless(db, args.runs)
        print(f"headless startup: {headless_runs}", file=sys.stderr)
        timings = asyncio.run(selections(db, args.moves))
    text = section(args, store_s, tmux_runs, headless_runs, timings, (load_before, os.getloadavg()[0]))
    print(text)
    if args.write:
        replace_section(args.write, SECTION_TITLE, text)
        print(f"wrote the section to {args.write}", file=sys.stderr)


if __name__ == "__main__":
    main()
