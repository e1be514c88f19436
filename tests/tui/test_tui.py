"""The TUI driven by Pilot, started exactly as `hvuaudit tui` starts it (make_app).

Every screen is exercised against a small store built here from an HVU-format CSV:
search an action, open a pair, drill down to its clips, copy a URL, the reverse
view, change the NCA threshold and see the count change, write tasks.json,
annotate three pairs and check the store (and that a restart resumes), build a
split preview and export it, read-only mode, an empty and a missing store, help,
the command palette, and errors shown as notifications.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest
from rich.console import Console

from hvuaudit.ingest import ingest

pytest.importorskip("textual")

from textual.widgets import Button, Checkbox, DataTable, Input, Static  # noqa: E402

from hvuaudit.tui.app import HvuauditApp, make_app  # noqa: E402
from hvuaudit.tui.screens.annotate import AnnotateScreen  # noqa: E402
from hvuaudit.tui.screens.browser import BrowserScreen  # noqa: E402
from hvuaudit.tui.screens.clips import ClipsScreen, ReverseScreen  # noqa: E402
from hvuaudit.tui.screens.help import HelpScreen  # noqa: E402
from hvuaudit.tui.screens.modals import ErrorModal, PromptModal  # noqa: E402
from hvuaudit.tui.screens.nca import NcaScreen  # noqa: E402
from hvuaudit.tui.screens.overview import OverviewScreen  # noqa: E402
from hvuaudit.tui.screens.splits import SplitsScreen  # noqa: E402
from hvuaudit.tui.widgets import FrameTable, Notice  # noqa: E402
from hvuaudit.tui.widgets.frame_table import format_cell  # noqa: E402

SIZE = (120, 36)

# 22 clips, 5 actions. Objects are (nearly) necessary for their action, scenes are not;
# every action but swimming has at least two scenes, so SI splits can be built.
CLIPS_CSV = """\
Tags,youtube_id,time_start,time_end
surfing|beach|surfboard|wet,yt_surf_001,10,20
surfing|beach|surfboard,yt_surf_002,0,10
surfing|beach|surfboard|wet,yt_surf_003,5.5,15.5
surfing|ocean|surfboard|wet,yt_surf_004,30,40
surfing|ocean|surfboard,yt_surf_005,60,70
surfing|surfboard,yt_surf_006,1,11
skiing|mountain|ski,yt_ski_0001,12,22
skiing|mountain|ski|shoe,yt_ski_0002,2,12
skiing|mountain|ski,yt_ski_0003,3,13
skiing|street|ski|shoe,yt_ski_0004,4,14
dancing|stage|shoe,yt_dance_01,100,110
dancing|stage|shoe,yt_dance_02,7,17
dancing|street|shoe,yt_dance_03,8,18
dancing|beach,yt_dance_04,9,19
playing_violin|concert_hall|violin,yt_violin_1,42.7,52.7
playing_violin|concert_hall|violin,yt_violin_2,0,10
playing_violin|stage|violin|shoe,yt_violin_3,90,100
playing_violin|street|violin,yt_violin_4,15,25
swimming|pool|swimsuit|wet,yt_swim_001,0,10
swimming|pool|swimsuit,yt_swim_002,20,30
swimming|ocean|wet,yt_swim_003,40,50
beach|wet,yt_beach_01,0,10
"""
CATEGORIES_CSV = """\
Tag,Category
surfing,action
skiing,action
dancing,action
playing_violin,action
swimming,action
beach,scene
ocean,scene
mountain,scene
stage,scene
street,scene
concert_hall,scene
pool,scene
surfboard,object
ski,object
shoe,object
violin,object
swimsuit,object
wet,attribute
"""


def build_store(folder: Path, name: str = "tui.duckdb") -> Path:
    """Write the CSVs above and ingest them; returns the store path."""
    folder.mkdir(parents=True, exist_ok=True)
    clips = folder / "HVU_Val_tui.csv"
    categories = folder / "categories_tui.csv"
    clips.write_text(CLIPS_CSV, encoding="utf-8")
    categories.write_text(CATEGORIES_CSV, encoding="utf-8")
    db = folder / name
    ingest([clips], categories, db=db)
    return db


@pytest.fixture(scope="module")
def _master_store(tmp_path_factory) -> Path:
    return build_store(tmp_path_factory.mktemp("tui-master"))


@pytest.fixture
def store(_master_store, tmp_path) -> Path:
    """A fresh, writable copy of the TUI fixture store."""
    db = tmp_path / "tui.duckdb"
    shutil.copy(_master_store, db)
    return db


async def settle(pilot, rounds: int = 8) -> None:
    """Wait until no worker runs and every message they posted has been handled."""
    for _ in range(rounds):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not any(worker.is_running for worker in pilot.app.workers):
            return


async def press(pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


async def type_text(pilot, text: str) -> None:
    await pilot.press(*text)
    await settle(pilot)


async def open_annotate(pilot, annotator: str) -> AnnotateScreen:
    """Open the Annotate screen as a user does (key 4, a name, enter) and return it."""
    await settle(pilot)
    await press(pilot, "4")
    await type_text(pilot, annotator)
    await press(pilot, "enter")
    return pilot.app.screen


def screen_text(app: HvuauditApp) -> str:
    """What the terminal shows right now, as plain text (the same render as export_screenshot)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def widget_text(widget) -> str:
    """The plain text a Static-like widget shows (unwrapped)."""
    return str(widget.render())


def record_notifications(app: HvuauditApp) -> list[tuple[str, str]]:
    """Collect (severity, message) of every notification the app raises."""
    seen: list[tuple[str, str]] = []
    original = app.notify

    def notify(message, *, title="", severity="information", timeout=None, markup=True):
        seen.append((severity, f"{title}: {message}" if title else str(message)))
        original(message, title=title, severity=severity, timeout=timeout, markup=markup)

    app.notify = notify  # type: ignore[method-assign]
    return seen


def pilot_test(scenario):
    """Run an async Pilot scenario as a plain test (no pytest async plugin needed)."""

    @functools.wraps(scenario)
    def run(*args, **kwargs):
        return asyncio.run(scenario(*args, **kwargs))

    return run


def table_column(table: DataTable, column: str) -> list[str]:
    return [str(cell) for cell in table.get_column(column)]


# ------------------------------------------------------------------ overview


@pilot_test
async def test_overview_shows_the_store(store):
    app = make_app(store, read_only=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)
        sources = app.screen.query_one("#sources", FrameTable)
        assert table_column(sources, "file") == ["HVU_Val_tui.csv"]
        subsets = app.screen.query_one("#subsets", FrameTable)
        assert subsets.frame.row(0, named=True)["clips"] == 22
        categories = app.screen.query_one("#categories", FrameTable)
        assert (
            dict(zip(categories.frame["category"], categories.frame["tags_present"], strict=True))["scene"]
            == 7
        )
        text = screen_text(app)
        assert "22 clips in 1 source file(s)" in text
        assert "clips by number of tags" in text and "tags per clip" in text  # the histogram of all tags
        assert not app.screen.query_one(Notice).display
        await press(pilot, "]", "]", "]", "]", "]", "]")  # all → action → ... → scene
        text = screen_text(app)
        assert "clips by number of scene tags" in text and "scene tags per clip" in text
        shown = app.screen.histogram.filter(pl.col("category") == "scene")
        # of the 22 clips in CLIPS_CSV only yt_surf_006 has no scene; every other clip has exactly one
        assert dict(zip(shown["n_tags"], shown["clips"], strict=True)) == {0: 1, 1: 21}
        quartiles = app.screen.query_one("#tags-per-clip", FrameTable).frame
        assert quartiles.filter(pl.col("category") == "scene")["max"].item() == 1


@pilot_test
async def test_empty_store_says_which_command_fills_it(tmp_path):
    from hvuaudit.store import open_store

    db = tmp_path / "empty.duckdb"
    open_store(db, read_only=False, create=True).close()  # schema only, no clips
    app = make_app(db, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        notice = widget_text(app.screen.query_one(Notice))
        assert "is empty" in notice
        assert (
            f"hvuaudit ingest HVU_Val_V1.0.csv --categories HVU_Tags_Categories_V1.0.csv --db {db}" in notice
        )
        assert "is empty" in screen_text(app)
        await press(pilot, "2")  # the browser says the same in place
        assert "no actions yet" in screen_text(app)


@pilot_test
async def test_missing_store_is_a_modal_and_is_not_created(tmp_path):
    db = tmp_path / "nowhere.duckdb"
    app = make_app(db, read_only=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ErrorModal)
        text = screen_text(app)
        assert "does not exist" in text and "hvuaudit ingest" in text
        await press(pilot, "escape")
        assert isinstance(app.screen, OverviewScreen)
        await press(pilot, "3")  # other screens do not repeat the modal
        assert not isinstance(app.screen, ErrorModal)
    assert not db.exists()


@pilot_test
async def test_store_locked_by_another_process_is_a_modal_with_a_hint(store):
    import subprocess
    import sys

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
            "time.sleep(60)",
            str(store),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        app = make_app(store, read_only=True)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert isinstance(app.screen, ErrorModal)
            assert "another process" in app.screen.hint
            assert "cannot open store" in app.screen.message
    finally:
        holder.kill()
        holder.wait()


@pilot_test
async def test_full_garbage_collections_wait_for_idle_and_settings_are_restored(store):
    import gc
    import sys

    before = gc.get_threshold()
    app = make_app(store, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        if sys.version_info >= (3, 14):  # an incremental collector: the app leaves it alone
            assert gc.get_threshold() == before
            return
        assert gc.get_threshold()[2] > before[2]  # no automatic full collection while the app runs
        assert gc.get_freeze_count() > 0  # the libraries loaded at start are out of them for good
        gc.collect(1)  # a younger collection has passed objects on
        full_before = gc.get_stats()[2]["collections"]
        await press(pilot, "2")
        app._full_collection_if_idle()  # a key just came: not now
        assert gc.get_stats()[2]["collections"] == full_before
        app._last_input -= 10  # idle for a while
        app._full_collection_if_idle()
        assert gc.get_stats()[2]["collections"] == full_before + 1
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_closing_the_session_interrupts_a_running_read(store):
    """Quitting while a worker's query runs must not hang or raise (the connection is busy then)."""
    import threading
    import time

    from hvuaudit.errors import StoreError
    from hvuaudit.store import run_sql
    from hvuaudit.tui.session import StoreSession

    session = StoreSession(store, read_only=True)
    outcome: list[BaseException | None] = []

    def long_read() -> None:
        try:
            with session.cursor() as cur:
                run_sql(cur, "SELECT sum(i) FROM range(100000000000) t(i)")  # minutes, unless interrupted
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            outcome.append(exc)

    worker = threading.Thread(target=long_read, daemon=True)
    worker.start()
    deadline = time.monotonic() + 10
    while not session._live_cursors and time.monotonic() < deadline:  # the worker has its cursor
        time.sleep(0.01)
    time.sleep(0.2)
    started = time.monotonic()
    session.close()
    worker.join(10)
    assert time.monotonic() - started < 5 and not worker.is_alive()
    assert isinstance(outcome[0], StoreError) and "Interrupt" in outcome[0].message
    with pytest.raises(StoreError, match="being closed"):  # no worker reopens it while the app quits
        with session.cursor():
            pass
    session.reset()  # what "Reopen the store" does after close()
    with session.cursor() as cur:
        assert run_sql(cur, "SELECT count(*) AS n FROM clips")["n"].item() == 22
    session.close()


# ------------------------------------------------------------------ co-occurrence browser


@pilot_test
async def test_browser_search_pair_cells_clips_and_reverse_view(store):
    app = make_app(store, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "2")
        browser = app.screen
        assert isinstance(browser, BrowserScreen)
        actions = browser.query_one("#actions", FrameTable)
        assert actions.row_count == 5

        # search an action
        await press(pilot, "slash")
        await type_text(pilot, "viol")
        assert table_column(actions, "action") == ["playing_violin"]
        await press(pilot, "enter")  # leaves the search field for the list
        assert browser.action == "playing_violin"

        # its scenes, with the NCA cells of the top scene (concert_hall: 2 of 4 clips)
        pairs = browser.query_one("#pairs", FrameTable)
        scenes = {row["tag"]: row for row in pairs.frame.iter_rows(named=True)}
        assert set(scenes) == {"concert_hall", "stage", "street"}
        top = scenes["concert_hall"]
        assert (top["top"], top["n11"], top["n12"], top["n22"], top["ratio"]) == ("★", 2, 2, 0, 1.0)
        assert top["verdict"] == "no"
        assert "NCA top scene: concert_hall" in screen_text(app)

        # objects tab: the violin is in every clip, so it is necessary
        await press(pilot, "enter")  # focus the pairs table
        await press(pilot, "right_square_bracket")
        objects = {row["tag"]: row for row in pairs.frame.iter_rows(named=True)}
        assert objects["violin"]["n11"] == 0 and objects["violin"]["verdict"] == "necessary"
        assert objects["shoe"]["verdict"] == "no"

        # open the pair: its clips, with the URL at the right second
        pairs.move_cursor(row=pairs.get_row_index("violin"))
        await press(pilot, "enter")
        clips_screen = app.screen
        assert isinstance(clips_screen, ClipsScreen)
        clips = clips_screen.query_one("#clips", FrameTable)
        assert sorted(table_column(clips, "youtube_id")) == [
            "yt_violin_1",
            "yt_violin_2",
            "yt_violin_3",
            "yt_violin_4",
        ]
        row = clips_screen.clips.row(clips.cursor_row, named=True)
        await press(pilot, "c")
        assert app.clipboard == row["url"]
        assert (
            row["url"] == f"https://www.youtube.com/watch?v={row['youtube_id']}&t={int(row['time_start'])}s"
        )
        assert "yt_violin_1" in screen_text(app)

        # back, then the reverse view of the shoe: the actions seen with it
        await press(pilot, "escape")
        assert app.screen is browser
        pairs.move_cursor(row=pairs.get_row_index("shoe"))
        await press(pilot, "r")
        reverse = app.screen
        assert isinstance(reverse, ReverseScreen)
        shoe_actions = reverse.query_one("#reverse", FrameTable)
        assert table_column(shoe_actions, "action") == ["dancing", "skiing", "playing_violin"]
        shoe_actions.move_cursor(row=1)
        await press(pilot, "enter")  # opens skiing in the browser
        assert app.screen is browser and browser.action == "skiing"


@pytest.mark.parametrize("prefetch_fails", [False, True])
@pilot_test
async def test_enter_during_a_prefetch_waits_for_it_instead_of_querying_again(
    store, monkeypatch, prefetch_fails
):
    """Two copies of one query side by side each take twice as long: the clips screen takes the
    prefetch's rows; if that prefetch fails, the clips screen queries them itself (never waits forever)."""
    import threading

    import hvuaudit.cooccurrence as cooccurrence

    release = threading.Event()
    calls: list[tuple[str, str]] = []
    real_clips_of_pair = cooccurrence.clips_of_pair

    def slow_clips_of_pair(con, action, tag):
        calls.append((action, tag))
        release.wait(10)
        if prefetch_fails and len(calls) == 1:
            raise RuntimeError("the prefetch failed")
        return real_clips_of_pair(con, action, tag)

    app = make_app(store, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "2")
        browser = app.screen
        browser.open_action("surfing")
        await settle(pilot)
        await press(pilot, "enter")  # to the scenes of surfing (the first one's clips are prefetched)
        await asyncio.sleep(0.3)
        await settle(pilot)
        monkeypatch.setattr(cooccurrence, "clips_of_pair", slow_clips_of_pair)
        pairs = browser.query_one("#pairs", FrameTable)
        pairs.move_cursor(row=pairs.get_row_index("ocean"))
        deadline = asyncio.get_running_loop().time() + 5
        while (
            not calls and asyncio.get_running_loop().time() < deadline
        ):  # the prefetch starts after a moment
            await asyncio.sleep(0.02)
        assert calls == [("surfing", "ocean")]
        await pilot.press("enter")  # while the prefetch is still running
        await pilot.pause()
        clips_screen = app.screen
        assert isinstance(clips_screen, ClipsScreen) and clips_screen.clips.is_empty()
        release.set()
        await settle(pilot)
        assert calls == [("surfing", "ocean")] * (2 if prefetch_fails else 1)
        assert sorted(clips_screen.clips["youtube_id"]) == ["yt_surf_004", "yt_surf_005"]
        assert table_column(clips_screen.query_one("#clips", FrameTable), "youtube_id") == [
            "yt_surf_004",
            "yt_surf_005",
        ]


@pilot_test
async def test_open_url_without_a_display_copies_instead(store, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("BROWSER", raising=False)
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url, *a, **k: opened.append(url))
    app = make_app(store, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.push_screen(ClipsScreen("surfing", "beach"))
        await settle(pilot)
        notes = record_notifications(app)
        await press(pilot, "o")
        assert opened == []  # no console browser started over the TUI
        assert "&t=" in app.clipboard
        assert any("No graphical browser" in message for _, message in notes)


# ------------------------------------------------------------------ NCA


@pilot_test
async def test_nca_threshold_changes_the_count_live_and_writes_tasks(store, tmp_path):
    app = make_app(store, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3")
        nca = app.screen
        assert isinstance(nca, NcaScreen)
        summary = nca.query_one("#nca-summary", Static)

        def necessary() -> int:
            return int(nca.frame["necessary"].sum())

        # scenes at 0.2: no action has a necessary scene (the smallest ratio n11/n12 is 1/3)
        assert nca.category == "scene" and necessary() == 0
        assert "0 of 5 actions" in widget_text(summary)
        # a typed threshold: skiing's top scene (mountain, 3 of 4 clips) has n11/n12 = 1/3
        await press(pilot, "t")
        await type_text(pilot, "0.45")
        await press(pilot, "enter")
        assert app.threshold == pytest.approx(0.45) and necessary() == 1
        assert "1 of 5 actions" in widget_text(summary)
        # + raises it by 0.05: swimming's (pool, 2 of 3 clips: 1/2) becomes necessary too
        await press(pilot, "plus")
        assert app.threshold == pytest.approx(0.5)
        assert nca.query_one("#threshold", Input).value == "0.5"
        assert necessary() == 2 and "2 of 5 actions" in widget_text(summary)
        await press(pilot, "t")
        await type_text(pilot, "0")
        await press(pilot, "enter")
        assert app.threshold == 0.0 and necessary() == 0

        # objects at 0, among labelled clips: every action's clips that carry an object carry its top one
        await press(pilot, "right_square_bracket")
        assert app.clips == "labelled" and nca.category == "object" and necessary() == 5
        assert "(labelled clips)" in widget_text(summary)
        # l counts all clips: dancing and swimming each have a clip without any object, so only
        # surfboard, ski and violin are in every clip of their action
        await press(pilot, "l")
        assert app.clips == "all" and necessary() == 3
        table = nca.query_one("#nca-table", FrameTable)
        assert set(nca.frame.filter(pl.col("necessary"))["tag"]) == {"surfboard", "ski", "violin"}
        assert table.row_count == 5
        await press(pilot, "p")  # at 120 columns the plot and the roles take the table's place
        assert "t = 0.00 | all" in screen_text(app)  # the sweep plot marks t and the mode
        assert "Task roles at threshold 0, all clips" in screen_text(app)
        await press(pilot, "p")

        # the browser's verdicts follow the shared threshold and clip mode
        await press(pilot, "2")
        await settle(pilot)
        assert app.screen.query_one("#pairs", FrameTable).border_subtitle.endswith(
            "threshold 0.00 · all clips"
        )

        # write tasks.json
        await press(pilot, "3", "w")
        assert isinstance(app.screen, PromptModal)
        field = app.screen.query_one(Input)
        field.value = str(tmp_path / "tasks.json")
        await press(pilot, "enter")
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert tasks["threshold"] == 0.0 and tasks["clips"] == "all"
    # five actions cannot separate two categories (the sign test needs six that agree): undecided,
    # with the warning the trainer will print again
    assert tasks["roles"] == {"scene": "undecided", "object": "undecided"} and tasks["warnings"]


@pilot_test
async def test_a_category_without_labels_is_a_notice_not_an_error(store):
    """The fixture has no event tag: among labelled clips its tab is empty and says why."""
    app = make_app(store, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        notes = record_notifications(app)
        await settle(pilot)
        await press(pilot, "2")
        await settle(pilot)
        await press(pilot, "3")
        await settle(pilot)
        await press(pilot, "right_square_bracket", "right_square_bracket")  # scenes → objects → events
        await settle(pilot)
        nca = app.screen
        assert isinstance(nca, NcaScreen) and nca.category == "event" and nca.frame.is_empty()
        notice = nca.query_one(Notice)
        assert notice.display and "No clip carries an event tag" in widget_text(notice)
        await press(pilot, "l")
        await settle(pilot)
        assert app.clips == "all" and nca.frame.height == 5 and not notice.display
    assert not [m for severity, m in notes if severity == "error"], notes


@pilot_test
async def test_the_browser_counts_the_action_in_the_clip_mode(store):
    """surfing/beach: 3 of surfing's 6 clips (ratio 1.0), or 3 of the 5 that carry a scene (ratio 0.67)."""
    app = make_app(store, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "2")
        browser = app.screen
        assert isinstance(browser, BrowserScreen)
        browser.open_action("surfing")
        await settle(pilot)

        def beach() -> dict:
            pairs = browser.query_one("#pairs", FrameTable)
            row = pairs.frame.filter(pl.col("tag") == "beach")
            return row.row(0, named=True)

        assert app.clips == "labelled" and (beach()["n11"], beach()["n12"]) == (2, 3)
        await press(pilot, "l")
        await settle(pilot)
        assert app.clips == "all" and (beach()["n11"], beach()["n12"]) == (3, 3)
        assert "n11=3 n12=3" in widget_text(browser.query_one("#action-title", Static))


@pilot_test
async def test_bad_threshold_is_a_notification(store):
    app = make_app(store, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        notes = record_notifications(app)
        await settle(pilot)
        await press(pilot, "3", "t")
        await type_text(pilot, "-1")
        await press(pilot, "enter")
        assert app.threshold == pytest.approx(0.2)
        assert any(severity == "error" and "not a threshold" in message for severity, message in notes)


# ------------------------------------------------------------------ annotate


def _answers(db: Path) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT annotator, action, tag, category, answer, source FROM annotations ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()


@pilot_test
async def test_annotate_three_pairs_saves_each_and_resumes(store):
    app = make_app(store, read_only=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "4")
        assert isinstance(app.screen, PromptModal)  # the name is asked once
        await type_text(pilot, "alice")
        await press(pilot, "enter")
        screen = app.screen
        assert isinstance(screen, AnnotateScreen)
        total = screen.total
        assert total == len(screen.queue) > 3
        first_three = [(p["action"], p["tag"]) for p in screen.queue[:3]]
        assert screen.query_one("#examples", FrameTable).row_count >= 1  # example clips on the card
        await press(pilot, "y", "n", "u")
        assert screen.answered == 3
        assert "answered 3 / " in screen_text(app)

        # b goes back to the third pair; answering again changes it
        await press(pilot, "b")
        assert (screen.current["action"], screen.current["tag"]) == first_three[2]
        assert "answer again to change it" in screen_text(app)
        await press(pilot, "n")
        await press(pilot, "question_mark")
        assert "necessary" in screen_text(app).lower() and "sufficient" in screen_text(app)
        await press(pilot, "escape")
    answers = _answers(store)
    assert [(a, t) for _, a, t, _, _, _ in answers] == sorted(first_three)
    by_pair = {(a, t): answer for _, a, t, _, answer, _ in answers}
    assert [by_pair[p] for p in first_three] == ["necessary", "not_necessary", "not_necessary"]
    assert {row[0] for row in answers} == {"alice"} and {row[5] for row in answers} == {"tui"}

    # a restart resumes: the three pairs are no longer in the queue
    app = make_app(store, read_only=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_annotate(pilot, "alice")
        assert screen.answered == 3 and screen.total == total
        assert not {(p["action"], p["tag"]) for p in screen.queue} & set(first_three)
        # b at the start of a session brings back the last answer given
        await press(pilot, "b")
        assert (screen.current["action"], screen.current["tag"]) == first_three[2]


@pilot_test
async def test_back_past_the_first_answer_walks_the_history_with_full_cards(store):
    app = make_app(store, read_only=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_annotate(pilot, "bob")
        answered = [(p["action"], p["tag"]) for p in screen.queue[:3]]
        await press(pilot, "y", "n", "u")
    app = make_app(store, read_only=False)  # a new session: the history is in the store only
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_annotate(pilot, "bob")
        for expected in reversed(answered):  # b, b, b: each further back, never the same pair twice
            await press(pilot, "b")
            assert (screen.current["action"], screen.current["tag"]) == expected
            text = screen_text(app)
            assert "– clips together" not in text and "NCA ratio" in text
        await press(pilot, "b")  # nothing further back
        assert (screen.current["action"], screen.current["tag"]) == answered[0]
        before = screen.index
        await press(pilot, "n")  # answering a revisited card moves on
        assert screen.index == before + 1
        assert (screen.current["action"], screen.current["tag"]) == answered[1]


@pilot_test
async def test_an_answer_is_in_the_store_when_the_counter_moves(store):
    app = make_app(store, read_only=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_annotate(pilot, "carol")
        screen.action_answer("necessary")  # the key's action, run directly: no worker, no wait
        assert screen.answered == 1
        with screen.session.cursor() as cur:  # another transaction: it sees only what was committed
            assert (
                cur.execute("SELECT count(*) FROM annotation_events WHERE annotator = 'carol'").fetchone()[0]
                == 1
            )


@pilot_test
async def test_q_quits_from_the_annotate_screen(store):
    app = make_app(store, read_only=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_annotate(pilot, "dave")
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0 and not app.is_running


def _burst(app: HvuauditApp, keys: list[tuple[str, str | None]]) -> None:
    """Keys as a fast typist or tmux sends them: all queued before the app handles the first."""
    from textual import events

    for key, character in keys:
        app._driver.send_message(events.Key(key, character))


@pilot_test
async def test_keys_typed_right_after_a_screen_key_reach_the_new_screen(store):
    app = make_app(store, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        _burst(
            app,
            [("3", "3"), ("t", "t"), ("0", "0"), ("full_stop", "."), ("3", "3"), ("5", "5"), ("enter", "\r")],
        )
        await settle(pilot)
        assert isinstance(app.screen, NcaScreen)
        assert app.threshold == 0.35


@pilot_test
async def test_every_key_typed_into_a_field_arrives_before_the_function_key(store, tmp_path):
    app = make_app(store, read_only=False)
    out = tmp_path / "o" / "si2_tuned"
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "5")
        screen = app.screen
        screen.query_one("#min-videos", Input).value = "3"
        screen.query_one("#select-fraction", Input).value = "0.4"  # the tiny store has few clips to spare
        field = screen.query_one("#out", Input)
        screen.set_focus(field)
        field.value = ""
        await settle(pilot)
        names = {"/": "slash", "_": "underscore", "-": "minus", ".": "full_stop"}
        _burst(app, [(names.get(c, c), c) for c in str(out)] + [("f6", None)])
        await settle(pilot)
        await settle(pilot)
    assert (out / "manifest.json").is_file(), (
        sorted(p.name for p in out.parent.iterdir()) if out.parent.exists() else []
    )


# ------------------------------------------------------------------ splits


@pilot_test
async def test_split_preview_then_export_and_verify(store, tmp_path):
    from hvuaudit.splits import SplitParams, build_split
    from hvuaudit.store import open_store

    # a tiny store: at 0.1 no action has a training clip to spare, so the test asks for 0.4
    params = SplitParams(variant="si2", min_videos=3, val_fraction=0.3, select_fraction=0.4)
    with open_store(store, read_only=True) as con:
        expected = build_split(con, params).report

    app = make_app(store, read_only=False)
    out = tmp_path / "out" / "si2"
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "5")
        screen = app.screen
        assert isinstance(screen, SplitsScreen)
        screen.query_one("#min-videos", Input).value = "3"
        screen.query_one("#val-fraction", Input).value = "0.3"
        screen.query_one("#select-fraction", Input).value = "0.4"
        screen.query_one("#out", Input).value = str(out)
        await press(pilot, "f5")
        preview = screen.query_one("#preview-table", FrameTable)
        sides = {row["side"]: row for row in preview.frame.iter_rows(named=True)}
        assert sides["train"]["clips"] == expected["train"]["clips"]
        assert sides["val"]["clips"] == expected["val"]["clips"]
        assert sides["select"]["clips"] == expected["select"]["clips"] > 0
        text = screen_text(app)
        assert "Preview of si2" in text and "scene-only baseline" in text
        assert not out.exists()  # nothing written by a preview

        await press(pilot, "f6")
        assert (out / "manifest.json").is_file() and (out / "train.csv").is_file()
        checks = screen.query_one("#verify-table", FrameTable).frame
        assert checks.height == 8 and set(checks["ok"]) == {"ok"}
        assert (out / "select.csv").is_file()
        assert screen.query_one("#saved", FrameTable).row_count == 1

        # exporting again asks before replacing the folder
        await press(pilot, "f6")
        assert "Replace the folder?" in screen_text(app)
        await press(pilot, "y")
        assert screen.query_one("#saved", FrameTable).row_count >= 1
    con = duckdb.connect(str(store), read_only=True)
    try:
        members = con.execute("SELECT count(*) FROM split_members WHERE split = 'si2'").fetchone()[0]
    finally:
        con.close()
    assert members == expected["train"]["clips"] + expected["select"]["clips"] + expected["val"]["clips"]


@pilot_test
async def test_the_split_form_takes_strict_max_train_scenes_and_the_selection_share(store):
    from hvuaudit.splits import SplitParams, build_split
    from hvuaudit.store import open_store

    params = SplitParams(variant="si2", min_videos=3, max_train_scenes=1, strict=True, select_fraction=0)
    with open_store(store, read_only=True) as con:
        expected = build_split(con, params).report
    app = make_app(store, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "5")
        screen = app.screen
        screen.query_one("#min-videos", Input).value = "3"
        screen.query_one("#val-fraction", Input).value = ""  # empty: the default (no share limit with K)
        screen.query_one("#max-train-scenes", Input).value = "1"
        screen.query_one("#strict", Checkbox).value = True
        screen.query_one("#select-fraction", Input).value = "0"
        assert screen.form_params().normalised() == params.normalised()
        await press(pilot, "f5")
        sides = {
            row["side"]: row
            for row in screen.query_one("#preview-table", FrameTable).frame.iter_rows(named=True)
        }
        assert (sides["train"]["clips"], sides["select"]["clips"], sides["val"]["clips"]) == (
            expected["train"]["clips"],
            0,
            expected["val"]["clips"],
        )
        assert "strict: dropped train / val clips" in screen_text(app)


@pilot_test
async def test_split_errors_are_notifications_with_a_hint(store):
    app = make_app(store, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        notes = record_notifications(app)
        await settle(pilot)
        await press(pilot, "5")
        app.screen.query_one("#min-videos", Input).value = "1000"
        await press(pilot, "f5")
        errors = [message for severity, message in notes if severity == "error"]
        assert errors and "leaves no action" in errors[0] and "lower --min-videos" in errors[0]
        app.screen.query_one("#val-fraction", Input).value = "x"
        await press(pilot, "f5")
        assert any("validation fraction must be a number" in m for s, m in notes if s == "error")
        # in a text field digits are text; esc leaves the field and 1 switches screens again
        app.screen.query_one("#subset", Input).focus()
        await press(pilot, "1")
        assert isinstance(app.screen, SplitsScreen) and app.screen.query_one("#subset", Input).value == "1"
        await press(pilot, "escape", "1")
        assert isinstance(app.screen, OverviewScreen)


# ------------------------------------------------------------------ read-only, help, palette


@pilot_test
async def test_read_only_disables_annotation_and_export_and_says_why(store, tmp_path):
    before = store.read_bytes()
    app = make_app(store, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "read-only" in app.sub_title
        await press(pilot, "4")
        assert isinstance(app.screen, AnnotateScreen)  # no name prompt
        assert "Annotation is disabled" in screen_text(app) and "--read-only" in screen_text(app)
        await press(pilot, "y")
        assert app.screen.answered == 0
        await press(pilot, "5")
        splits = app.screen
        assert splits.query_one("#export", Button).disabled
        assert "Export is disabled" in screen_text(app)
        splits.query_one("#min-videos", Input).value = "3"
        splits.query_one("#select-fraction", Input).value = "0.4"  # the tiny store has few clips to spare
        splits.query_one("#out", Input).value = str(tmp_path / "never")
        await press(pilot, "f5")  # a preview needs no write access
        assert "Preview of si2" in widget_text(splits.query_one("#preview-title"))
        await press(pilot, "f6")
        assert not (tmp_path / "never").exists()
    assert store.read_bytes() == before


@pilot_test
async def test_help_screen_lists_the_keys(store):
    app = make_app(store, read_only=True)
    async with app.run_test(size=(120, 120)) as pilot:  # tall enough to show the whole page
        await settle(pilot)
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for expected in ("Screens", "Keys", "Raise the threshold by 0.05", "Read-only mode", "Copy URL"):
            assert expected in text, expected
        await press(pilot, "escape")
        assert isinstance(app.screen, OverviewScreen)


@pilot_test
async def test_command_palette_switches_screens(store):
    app = make_app(store, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "ctrl+p")
        await type_text(pilot, "Go to Splits")
        await press(pilot, "enter")
        assert isinstance(app.screen, SplitsScreen)


@pilot_test
async def test_command_palette_jumps_to_any_tag_and_runs_the_screens_keys(store):
    app = make_app(store, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # an action opens in the browser
        await press(pilot, "ctrl+p")
        await type_text(pilot, "playing_vio")
        await press(pilot, "enter")
        await settle(pilot)
        assert isinstance(app.screen, BrowserScreen) and app.screen.action == "playing_violin"
        # a scene opens its reverse view; enter there opens the action chosen
        await press(pilot, "ctrl+p")
        await type_text(pilot, "concert_hall (scene)")
        await press(pilot, "enter")
        await settle(pilot)
        assert isinstance(app.screen, ReverseScreen) and app.screen.tag == "concert_hall"
        await press(pilot, "escape")
        # the NCA screen's keys, by their names: the threshold goes up as + would
        await press(pilot, "3")
        await settle(pilot)
        before = app.threshold
        await press(pilot, "ctrl+p")
        await type_text(pilot, "Raise the threshold")
        await press(pilot, "enter")
        await settle(pilot)
        assert isinstance(app.screen, NcaScreen) and app.threshold == pytest.approx(before + 0.05)
        await press(pilot, "ctrl+p")
        await type_text(pilot, "Necessary")
        await press(pilot, "enter")
        await settle(pilot)
        assert app.screen.necessary_only is True


def test_a_write_does_not_wait_for_a_running_read(store):
    """An answer is committed while a long read (the NCA screen's) is still open on another cursor."""
    import threading

    from hvuaudit.annotations import record_answer
    from hvuaudit.tui.session import StoreSession

    session = StoreSession(store, read_only=False)
    reading, release, written = threading.Event(), threading.Event(), threading.Event()

    def long_read() -> None:
        with session.cursor() as cur:
            cur.execute("SELECT count(*) FROM clip_tags").fetchall()
            reading.set()
            release.wait(20)  # the read's cursor stays open, as a slow query's would

    def answer() -> None:
        with session.cursor(write=True) as cur:
            record_answer(
                cur, annotator="erin", action="surfing", tag="beach", category="scene", answer="necessary"
            )
        written.set()

    reader = threading.Thread(target=long_read)
    reader.start()
    assert reading.wait(10)
    writer = threading.Thread(target=answer)
    writer.start()
    try:
        assert written.wait(10), "the answer waited for the read to finish"
    finally:
        release.set()
        reader.join()
        writer.join()
    session.close()
    with duckdb.connect(str(store), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM annotation_events WHERE annotator = 'erin'").fetchone() == (
            1,
        )


# ------------------------------------------------------------------ every table: sort, filter, export
@pilot_test
async def test_any_table_sorts_by_a_header_click_or_a_key_filters_and_saves_what_it_shows(store, tmp_path):
    app = make_app(store, read_only=True)
    seen = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3")
        table = app.screen.query_one("#nca-table", FrameTable)
        table.focus()
        await settle(pilot)
        source = table.source
        # a click on a header (the message a click sends): numbers from the largest; again: the other way
        column = table.ordered_columns[[c.key.value for c in table.ordered_columns].index("ratio")]
        for descending in (True, False):
            table.post_message(DataTable.HeaderSelected(table, column.key, 0, column.label))
            await settle(pilot)
            ratios = table.frame["ratio"].drop_nulls().to_list()
            assert ratios == sorted(ratios, reverse=descending) and table.frame.height == source.height
            assert table_column(table, "ratio")[0] == format_cell(table.frame["ratio"][0])  # as it shows
        # s sorts by the next column (after ratio), S turns it round
        await press(pilot, "s")
        following = table._shown_columns()[table._shown_columns().index("ratio") + 1]
        assert table.sort_by is not None and table.sort_by[0] == following
        before = table.sort_by[1]
        await press(pilot, "S")
        assert table.sort_by == (following, not before)
        # / keeps the rows with a cell containing the text (any case)
        await press(pilot, "slash")
        assert isinstance(app.screen, PromptModal)
        await type_text(pilot, "SKI")
        await press(pilot, "enter")
        assert table.frame.height == 1 and table.frame["action"].to_list() == ["skiing"]
        assert table.row_count == 1 and any("rows with 'SKI': 1 of 5" in message for _, message in seen)
        # the cursor's row is the shown one, sorted and filtered
        assert table.current_row()["action"] == "skiing"
        # e saves the table as shown, with the CLI's writer; never over a file
        out = tmp_path / "nca.csv"
        await press(pilot, "e")
        await type_text(pilot, str(out))
        await press(pilot, "enter")
        saved = pl.read_csv(out)
        assert saved["action"].to_list() == ["skiing"] and saved.columns == table._shown_columns()
        await press(pilot, "e")
        await type_text(pilot, str(out))
        await press(pilot, "enter")  # refused in the dialog: the file exists
        assert isinstance(app.screen, PromptModal)
        await press(pilot, "escape")
        assert pl.read_csv(out)["action"].to_list() == ["skiing"]
        # an empty filter shows every row again, still sorted
        await press(pilot, "slash")
        for _ in range(3):
            await press(pilot, "backspace")
        await press(pilot, "enter")
        assert table.frame.height == source.height and table.sort_by == (following, not before)


@pilot_test
async def test_a_table_sorts_a_list_column_and_filters_on_the_text_it_shows():
    from textual.app import App

    class One(App):
        def compose(self):
            yield FrameTable(id="t", key_column="name")

    frame = pl.DataFrame(
        {"name": ["a", "b", "c"], "tags": [["z", "y"], ["b"], ["m"]], "p": [0.12345, 0.5, 0.9]}
    )
    app = One()
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one("#t", FrameTable)
        table.show_frame(frame, digits={"p": 2})
        table.set_sort("tags", descending=False)  # lists sort by their text: "b", "m", "z|y"
        assert table.frame["name"].to_list() == ["b", "c", "a"]
        table.set_filter("0.12")  # the cell shows 0.12, not 0.12345 (digits 2): it matches what is read
        assert table.frame["name"].to_list() == ["a"]
        table.set_filter("0.123")
        assert table.frame.height == 0
        # the same rows with new values (a new threshold): the filter stays; other rows: it goes, and says so
        table.set_filter("0.5")
        table.show_frame(frame.with_columns(pl.col("p") * 1.0), digits={"p": 2})
        assert table.filter_text == "0.5" and table.frame["name"].to_list() == ["b"]
        table.show_frame(frame.with_columns(pl.col("name") + "2"), digits={"p": 2})
        assert table.filter_text == "" and table.frame.height == 3
        await pilot.pause()
