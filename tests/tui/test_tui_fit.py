"""Tables that fit the window (issue #21): numbers are never cut. At 120×36 every cell of the NCA table of
the real validation annotations is visible; at 80×24 the table drops columns (named in its title, still
saved by `e`) instead of cutting digits; a resize fits it again; `n` keeps the necessary actions only and
`p` shows the plot in the table's place in a narrow window."""

from __future__ import annotations

import pytest

pytest.importorskip("textual")

from hvuaudit.tui.app import make_app  # noqa: E402
from hvuaudit.tui.screens.nca import DISPLAY_ORDER, DROP_TO_FIT  # noqa: E402
from hvuaudit.tui.widgets import FrameTable  # noqa: E402
from hvuaudit.tui.widgets.frame_table import MIN_TEXT_WIDTH, fit_columns  # noqa: E402
from tests.tui.test_tui import pilot_test, press, screen_text, settle  # noqa: E402


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
    assert narrow == {"action": MIN_TEXT_WIDTH, "tag": MIN_TEXT_WIDTH, "ratio": 6}  # p went, then n11
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
        assert {"action", "necessary", "ratio", "n11", "n12"} <= set(shown)
        _table_fits(table)
        assert "hidden to fit" in str(table.border_title) and "q" in str(table.border_title)
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
        await pilot.resize_terminal(170, 40)  # wide: the plot and roles beside the table
        await settle(pilot)
        text = screen_text(app)
        assert "Task roles at threshold" in text and "n_action" in text


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
