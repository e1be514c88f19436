"""Drill-downs of the browser: the clips of one (action, tag) pair, and the actions of one tag.

Both are pushed on top of the browser and closed with ``escape``. The clips come
from :func:`hvuaudit.cooccurrence.clips_of_pair` (their ``url`` already points at
the clip's second); the reverse view from :func:`~hvuaudit.cooccurrence.actions_of_tag`.
"""

from __future__ import annotations

import os
import sys

import polars as pl
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Static

from hvuaudit.tui import bindings
from hvuaudit.tui.screens.base import CoreScreen, reports_errors
from hvuaudit.tui.widgets import FrameStrip, FrameTable

CLIP_COLUMNS = ["youtube_id", "time_start", "time_end", "subset", "tags"]


def has_graphical_browser() -> bool:
    """False on a Linux/BSD console without a display, where webbrowser would start lynx/w3m over the TUI."""
    if sys.platform in ("darwin", "win32") or os.environ.get("TEXTUAL_DRIVER"):
        return True  # (under `tui --serve` the URL opens in the user's own browser, not the server's)
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("BROWSER"))


class ClipsScreen(CoreScreen):
    """The clips that carry both the action and the tag, with their YouTube links.

    The browser installs one instance and shows each pair in it (:meth:`show_pair`):
    composing a fresh screen each time cost more than the query.
    """

    BINDINGS = [*bindings.CLIPS]

    class ClipsLoaded(Message):
        def __init__(self, action: str, tag: str, clips: pl.DataFrame) -> None:
            super().__init__()
            self.action = action
            self.tag = tag
            self.clips = clips

    def __init__(self, action: str = "", tag: str = "") -> None:
        super().__init__()
        self.action = action
        self.tag = tag
        self.clips = pl.DataFrame()
        self._given: pl.DataFrame | None = None
        self._fetch = True
        self._mounted = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="clips-title")
        yield FrameTable(id="clips", key_column="clip_id")
        yield Static("", id="clip-detail", classes="status-line")
        yield FrameStrip(id="clip-frames")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._mounted = True
        if self.action:
            self.show_pair(self.action, self.tag, self._given, fetch=self._fetch)

    def show_pair(
        self, action: str, tag: str, clips: pl.DataFrame | None = None, *, fetch: bool = True
    ) -> None:
        """Show the clips of (action, tag): ``clips`` if the caller has them, else they are loaded.

        ``fetch=False``: the caller is already fetching them and hands them over with :meth:`deliver`.
        """
        self.action, self.tag = action, tag
        self.clips = pl.DataFrame()
        self._given, self._fetch = clips, fetch
        if not self._mounted:
            return  # on_mount comes back here
        self.query_one("#clips-title", Static).update(
            Text.assemble("Clips with ", (action, "bold"), " and ", (tag, "bold"))
        )
        if clips is not None:
            self.show_clips(self.ClipsLoaded(action, tag, clips))
            return
        self.query_one("#clips", FrameTable).clear()
        self.start_loading("#clips")
        self._show_detail()
        if fetch:
            self.load_clips(action, tag)

    def deliver(self, action: str, tag: str, clips: pl.DataFrame | None) -> None:
        """Clips fetched by someone else: shown if this screen is waiting for that pair.

        ``None``: that fetch failed, so this screen loads them itself.
        """
        if (action, tag) != (self.action, self.tag) or not self.clips.is_empty():
            return
        if not self._mounted:
            self._given, self._fetch = clips, clips is None
        elif clips is not None:
            self.show_clips(self.ClipsLoaded(action, tag, clips))
        elif not self._fetch:
            self._fetch = True
            self.load_clips(action, tag)

    @work(thread=True, exclusive=True, group="clips")
    @reports_errors("loading the clips of the pair")
    def load_clips(self, action: str, tag: str) -> None:
        from hvuaudit.cooccurrence import clips_of_pair

        with self.session.cursor() as cur:
            clips = clips_of_pair(cur, action, tag)
        self.post_fresh(self.ClipsLoaded(action, tag, clips))

    @on(ClipsLoaded)
    def show_clips(self, event: ClipsLoaded) -> None:
        if (event.action, event.tag) != (self.action, self.tag):
            return
        self.clips = event.clips
        table = self.query_one("#clips", FrameTable)
        self.stop_loading("#clips")
        table.show_frame(
            event.clips.select("clip_id", *CLIP_COLUMNS),
            hide=("clip_id",),
            labels={"time_start": "start", "time_end": "end"},
            digits={"time_start": 1, "time_end": 1},
        )
        shown = "first 200 shown" if event.clips.height >= 200 else f"{event.clips.height} clip(s)"
        table.border_subtitle = shown
        table.focus()
        self._show_detail()

    @on(DataTable.RowHighlighted, "#clips")
    def clip_highlighted(self) -> None:
        self._show_detail()

    def _current(self) -> dict | None:
        shown = self.query_one("#clips", FrameTable).current_row()  # the row under the cursor, sorted or not
        if shown is None or not self.clips.height:
            return None
        match = self.clips.filter(pl.col("clip_id") == shown["clip_id"])
        return match.row(0, named=True) if match.height else None

    def _show_detail(self) -> None:
        clip = self._current()
        detail = self.query_one("#clip-detail", Static)
        self.query_one("#clip-frames", FrameStrip).show_clip(clip)
        if clip is None:
            detail.update("")
            return
        detail.update(Text.assemble((clip["url"], "underline"), "\n", ("tags: ", "dim"), clip["tags"] or ""))

    def action_copy_url(self) -> None:
        clip = self._current()
        if clip is None:
            return
        self.app.copy_to_clipboard(clip["url"])
        self.notify(f"Copied {clip['url']}", title="URL copied", markup=False)

    def action_open_url(self) -> None:
        clip = self._current()
        if clip is None:
            return
        if not has_graphical_browser():
            self.app.copy_to_clipboard(clip["url"])
            self.notify(
                f"No graphical browser on this machine; copied the URL instead:\n{clip['url']}",
                title="Cannot open a browser here",
                severity="warning",
                markup=False,
            )
            return
        self.app.open_url(clip["url"])
        self.notify(f"Opening {clip['url']}", markup=False)

    def action_dismiss(self) -> None:  # type: ignore[override]  # textual runs sync actions too
        self.dismiss()


class ReverseScreen(CoreScreen[str | None]):
    """Reverse view: the actions seen with one scene (object, ...); enter returns the chosen action."""

    BINDINGS = [*bindings.REVERSE]

    class ActionsOfTagLoaded(Message):
        def __init__(self, actions: pl.DataFrame) -> None:
            super().__init__()
            self.actions = actions

    def __init__(self, tag: str, category: str) -> None:
        super().__init__()
        self.tag = tag
        self.category = category

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(
            Text.assemble(
                f"Actions seen with the {self.category} ",
                (self.tag, "bold"),
                "   (enter: open the action in the browser)",
            ),
            id="reverse-title",
        )
        yield FrameTable(id="reverse", key_column="action")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.start_loading("#reverse")
        self.load_actions_of_tag()

    @work(thread=True, exclusive=True, group="reverse")
    @reports_errors("loading the actions of the tag")
    def load_actions_of_tag(self) -> None:
        from hvuaudit.cooccurrence import actions_of_tag

        with self.session.cursor() as cur:
            actions = actions_of_tag(cur, self.tag)
        self.post_fresh(self.ActionsOfTagLoaded(actions))

    @on(ActionsOfTagLoaded)
    def show_actions(self, event: ActionsOfTagLoaded) -> None:
        table = self.query_one("#reverse", FrameTable)
        self.stop_loading("#reverse")
        table.show_frame(
            event.actions,
            labels={"n_both": "both", "p_action_given_tag": "P(action|tag)"},
            digits={"p_action_given_tag": 3, "lift": 2},
        )
        table.border_subtitle = f"{event.actions.height} action(s)"
        table.focus()

    @on(DataTable.RowSelected, "#reverse")
    def action_chosen(self, event: DataTable.RowSelected) -> None:
        self.dismiss(event.row_key.value if event.row_key is not None else None)

    def action_dismiss(self) -> None:  # type: ignore[override]  # textual runs sync actions too
        self.dismiss(None)
