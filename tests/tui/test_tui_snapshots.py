"""Snapshot tests (pytest-textual-snapshot): every screen at 120x36 on the TUI fixture store.

The app is started through make_app with a relative store path (the working
directory is a temporary folder), so the header reads the same on every machine.
Refresh after an intended change with `pytest tests/tui/test_tui_snapshots.py --snapshot-update`
and review the SVGs in tests/tui/__snapshots__/ before committing them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("pytest_textual_snapshot")

from hvuaudit.tui.app import make_app  # noqa: E402
from tests.tui.test_tui import SIZE, build_store, settle  # noqa: E402


@pytest.fixture(scope="module")
def _snapshot_master(tmp_path_factory) -> Path:
    return build_store(tmp_path_factory.mktemp("tui-snap-master"))


@pytest.fixture
def app_in_tmp(_snapshot_master, tmp_path, monkeypatch):
    """make_app on a copy of the fixture store called by a relative path."""
    shutil.copy(_snapshot_master, tmp_path / "tui.duckdb")
    monkeypatch.chdir(tmp_path)

    def build(read_only: bool = True):
        return make_app(Path("tui.duckdb"), read_only=read_only)

    return build


def keys_then_settle(*keys: str):
    async def run_before(pilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        # a screen pushed over another blurs the widget focused below it a moment later; wait for it,
        # so that the dimmed background is the same on every run
        await pilot.pause(0.1)
        await settle(pilot)

    return run_before


def test_overview(snap_compare, app_in_tmp):
    assert snap_compare(app_in_tmp(), terminal_size=SIZE, run_before=keys_then_settle())


def test_browser_with_a_pair(snap_compare, app_in_tmp):
    assert snap_compare(
        app_in_tmp(),
        terminal_size=SIZE,
        run_before=keys_then_settle("2", "down", "down", "enter", "right_square_bracket"),
    )


def test_clips_of_a_pair(snap_compare, app_in_tmp):
    assert snap_compare(
        app_in_tmp(), terminal_size=SIZE, run_before=keys_then_settle("2", "enter", "enter", "enter")
    )


def test_nca(snap_compare, app_in_tmp):
    assert snap_compare(
        app_in_tmp(), terminal_size=SIZE, run_before=keys_then_settle("3", "right_square_bracket", "plus")
    )


def test_annotate(snap_compare, app_in_tmp):
    keys = ("4", *"alice", "enter", "y")
    assert snap_compare(app_in_tmp(read_only=False), terminal_size=SIZE, run_before=keys_then_settle(*keys))


def test_splits_preview(snap_compare, app_in_tmp):
    async def run_before(pilot) -> None:
        await keys_then_settle("5")(pilot)
        pilot.app.screen.query_one("#min-videos").value = "3"
        pilot.app.screen.query_one("#select-fraction").value = "0.4"  # the tiny store has few clips to spare
        await keys_then_settle("f5")(pilot)

    assert snap_compare(app_in_tmp(), terminal_size=SIZE, run_before=run_before)


def test_help(snap_compare, app_in_tmp):
    assert snap_compare(app_in_tmp(), terminal_size=SIZE, run_before=keys_then_settle("question_mark"))
