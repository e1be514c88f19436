"""Tables that fit the window (issue #21): numbers are never cut. At 120×36 every cell of the NCA table of
the real validation annotations is visible; at 80×24 the table drops columns (named in its title, still
saved by `e`) instead of cutting digits; a resize fits it again; `n` keeps the necessary actions only and
`p` shows the plot in the table's place in a narrow window."""

from __future__ import annotations

import pytest

pytest.importorskip("textual")

from hvuaudit.tui.app import make_app  # noqa: E402
from hvuaudit.tui.commands import ScreenActionCommands  # noqa: E402
from hvuaudit.tui.screens.nca import DISPLAY_ORDER, DROP_TO_FIT  # noqa: E402
from hvuaudit.tui.widgets import FrameTable  # noqa: E402
from hvuaudit.tui.widgets.frame_table import fit_columns  # noqa: E402
from tests.tui.test_tui import build_store, open_annotate, pilot_test, press, screen_text, settle  # noqa: E402


@pytest.fixture
def store_copy(tmp_path):
    return build_store(tmp_path / "store")


async def _resized(pilot, table: FrameTable, size: tuple[int, int], columns) -> list[str]:
    """Resize the terminal and wait (up to 5 s) until the table's columns satisfy ``columns``."""
    await pilot.resize_terminal(*size)
    for _ in range(50):
        await settle(pilot)
        shown = [str(k.value) for k in table.columns]
        if columns(shown):
            return shown
        await pilot.pause(0.1)
    raise AssertionError(f"the columns at {size} stayed {shown}")


NAMES = ["action", "tag", "ratio", "n11", "p"]
NATURAL = {"action": 30, "tag": 20, "ratio": 6, "n11": 5, "p": 8}


def test_fit_shrinks_names_first_then_drops_columns_in_order_and_never_cuts_a_number():
    everything = sum(NATURAL.values()) + 2 * len(NAMES)
    assert fit_columns(NAMES, NATURAL, {"action": 24, "tag": 22}, ("p",), 1000, 2) == {
        **NATURAL,
        "action": 24,
    }
    tight = fit_columns(NAMES, NATURAL, {"action": 30, "tag": 20}, ("p", "n11"), everything - 12, 2)
    assert tight["ratio"] == 6 and tight["n11"] == 5 and tight["p"] == 8  # the names paid
    assert tight["action"] + tight["tag"] == 50 - 12 and abs(tight["action"] - tight["tag"]) <= 10
    narrow = fit_columns(NAMES, NATURAL, {"action": 30, "tag": 20}, ("p", "n11"), 35, 2)
    assert narrow == {"action": 12, "tag": 11, "ratio": 6}  # p went, then n11; what they freed to the names
    # what a dropped column frees goes back to the names: p gone, the names grow into its 10 cells
    # (31 cells short: names at 10 save 30, so p must go, and its 10 cells less the 1 still short go back)
    freed = fit_columns(NAMES, NATURAL, {"action": 30, "tag": 20}, ("p",), everything - 31, 2)
    assert "p" not in freed and freed["action"] + freed["tag"] == 20 + 9
    assert sum(w + 2 for w in freed.values()) == everything - 31
    # nothing left to drop: the numbers keep their width and the table scrolls
    assert fit_columns(NAMES, NATURAL, {}, (), 10, 2) == NATURAL


def _table_fits(table: FrameTable) -> None:
    """Every numeric column as wide as its widest cell, and all columns inside the table's width."""
    frame = table.frame
    for key, column in table.columns.items():
        name = str(key.value)
        if frame.schema[name].is_numeric():
            longest = max(
                cell.width for row in table._cells for cell in [row[list(table.columns).index(key)]]
            )
            assert column.width >= longest, f"{name}: {column.width} < {longest}"
    used = sum(column.get_render_width(table) for column in table.columns.values())
    assert used <= table.scrollable_content_region.width, (used, table.scrollable_content_region.width)


@pilot_test
async def test_every_nca_cell_shows_at_120_by_36_and_columns_drop_at_80_by_24(real_store):
    app = make_app(real_store, read_only=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await press(pilot, "3")
        await settle(pilot)
        table = app.screen.query_one("#nca-table", FrameTable)
        assert table.row_count > 700  # the real validation actions
        assert [str(k.value) for k in table.columns] == DISPLAY_ORDER  # every column
        _table_fits(table)
        assert not table.border_title
        shown = await _resized(pilot, table, (80, 24), lambda shown: len(shown) < len(DISPLAY_ORDER))
        assert shown == [c for c in DISPLAY_ORDER if c in shown] and len(shown) < len(DISPLAY_ORDER)
        dropped = [c for c in DISPLAY_ORDER if c not in shown]
        assert dropped == [c for c in DISPLAY_ORDER if c in DROP_TO_FIT[: len(dropped)]]  # in the order given
        assert {"action", "tag", "necessary", "ratio", "n11", "n12"} <= set(shown)
        _table_fits(table)
        assert "hidden to fit" in str(table.border_title) and "q" in str(table.border_title)
        # s sorts by the columns on screen only; e saves every column, those hidden to fit included
        for _ in range(len(shown) + 1):
            await press(pilot, "s")
            assert table.sort_by is not None and table.sort_by[0] in shown
        saved = real_store.parent / "nca_80x24.csv"
        table._export_to(str(saved))
        await settle(pilot)
        assert saved.read_text().splitlines()[0].split(",") == DISPLAY_ORDER
        await _resized(pilot, table, (120, 36), lambda shown: shown == DISPLAY_ORDER)
        _table_fits(table)
        assert not table.border_title


@pilot_test
async def test_n_shows_the_necessary_actions_only_and_p_the_plot_in_a_narrow_window(real_store):
    app = make_app(real_store, read_only=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await press(pilot, "3")
        await settle(pilot)
        screen = app.screen
        table = screen.query_one("#nca-table", FrameTable)
        everyone = table.row_count
        necessary = int(screen.frame["necessary"].sum())
        await press(pilot, "n")
        assert table.row_count == necessary < everyone
        assert set(table.frame["necessary"].to_list()) == {"necessary"}
        assert "only those shown" in screen_text(app)
        await press(pilot, "n")
        assert table.row_count == everyone
        assert screen.query_one("#nca-right").display is False or not screen.query_one("#nca-right").region
        await press(pilot, "p")
        await settle(pilot)
        assert "Task roles at threshold" in screen_text(app) and "n_action" not in screen_text(app)
        await press(pilot, "p")
        await settle(pilot)
        assert "n_action" in screen_text(app)
        await pilot.resize_terminal(199, 40)  # still narrow: the table alone, every column
        await settle(pilot)
        assert "Task roles at threshold" not in screen_text(app) and len(table.columns) == len(DISPLAY_ORDER)
        await pilot.resize_terminal(200, 40)  # wide: the plot and the roles beside the table, every column
        await settle(pilot)
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "Task roles at threshold" in text and len(table.columns) == len(DISPLAY_ORDER)
        _table_fits(table)


@pilot_test
async def test_the_browse_table_keeps_tag_verdict_and_ratio_at_80_by_24(real_store):
    app = make_app(real_store, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "2")
        await settle(pilot)
        table = app.screen.query_one("#pairs", FrameTable)
        assert table.row_count > 0
        shown = [str(k.value) for k in table.columns]
        assert {"tag", "verdict", "ratio"} <= set(shown) and "n22" not in shown
        drop = ("n22", "n11", "lift", "n12", "p_tag_given_action")  # the order docs/tui.md gives
        hidden = [c for c in drop if c not in shown]
        assert hidden == list(drop[: len(hidden)])
        _table_fits(table)
        assert "hidden to fit" in str(table.border_title)


@pilot_test
async def test_the_nca_modules_are_imported_while_the_overview_shows(tiny_store):
    from hvuaudit.tui.app import PRELOAD_DELAY

    app = make_app(tiny_store, read_only=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        for _ in range(50):
            await pilot.pause(PRELOAD_DELAY / 5)
            if app.preloaded:
                break
        assert app.preloaded, "the preload worker did not finish"


@pilot_test
async def test_an_empty_store_survives_every_key_the_palette_offers(tmp_path):
    from hvuaudit.store import open_store
    from hvuaudit.tui.commands import OUR_ACTIONS

    empty = tmp_path / "empty.duckdb"
    open_store(empty, read_only=False, create=True).close()
    app = make_app(empty, read_only=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await press(pilot, "2")
        await press(pilot, "ctrl+end", "ctrl+home", "enter", "down")  # Textual's own moves on an empty table
        assert app.screen.query_one("#actions").row_count == 0  # and no crash
        commands = ScreenActionCommands(app.screen)
        offered = {text for text, _, _ in commands._commands()}
        assert offered and not any(text.startswith(("Bottom", "Top", "Cursor")) for text in offered)
        assert all(active.binding.action in OUR_ACTIONS or not active.binding.description
                   or f"{active.binding.description} (" not in " ".join(offered)
                   for active in app.screen.active_bindings.values())  # fmt: skip


@pilot_test
async def test_a_short_window_scrolls_the_annotate_screen_down_to_the_examples(store_copy):
    app = make_app(store_copy, read_only=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_annotate(pilot, "ann")
        await settle(pilot)
        container = screen.query_one("#annotate")
        assert container.max_scroll_y > 0  # taller than the window: it scrolls
        container.scroll_end(animate=False)
        await settle(pilot)
        examples = screen.query_one("#examples", FrameTable)
        assert examples.region.height > 1 and examples.row_count > 0
