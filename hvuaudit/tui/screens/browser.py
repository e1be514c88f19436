"""Co-occurrence browser: actions → their tags per category (with NCA cells) → the clips of a pair.

Left: a searchable list of actions (:func:`hvuaudit.cooccurrence.list_actions`).
Right: the highlighted action's tags of one category (tabs), from
:func:`~hvuaudit.cooccurrence.action_cooccurrence`, with each pair's NCA cells
and verdict at the shared threshold and clip mode (``l`` switches it). The cells of
the action's top tag come from :func:`hvuaudit.nca.compute_nca` (computed once per
category); for the other tags they are n11 = n_action − n_both, n12 = n_both,
n22 = n_tag − n_both, with n_action counted in the same clip mode.
Enter on a tag drills down to the pair's clips; ``r`` opens the reverse view.
"""

from __future__ import annotations

import polars as pl
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Static, Tab, Tabs
from textual.worker import Worker

from hvuaudit.categories import SIDE_CATEGORIES
from hvuaudit.tui import bindings
from hvuaudit.tui.screens.base import CoreScreen, reports_errors
from hvuaudit.tui.screens.clips import ClipsScreen, ReverseScreen
from hvuaudit.tui.widgets import FrameTable, Notice
from hvuaudit.tui.widgets.frame_table import format_cell

PREFETCH_DELAY = 0.15  # seconds a tag stays highlighted before its clips are fetched
VERDICT_STYLES = {"necessary": "bold green", "no": "dim", "not necessary": "dim"}


def pairs_with_cells(
    cooccurrence: pl.DataFrame, category: str, top_tag: str | None, threshold: float
) -> pl.DataFrame:
    """The rows of one category, with the NCA cells and the verdict of each pair (see module docstring)."""
    return (
        cooccurrence.filter(pl.col("category") == category)
        .with_columns(
            top=pl.when(pl.col("tag") == pl.lit(top_tag, dtype=pl.String))
            .then(pl.lit("★"))
            .otherwise(pl.lit("")),
            n11=pl.col("n_action") - pl.col("n_both"),
            n12=pl.col("n_both"),
            n22=pl.col("n_tag") - pl.col("n_both"),
        )
        .with_columns(ratio=pl.col("n11") / pl.col("n12"))
        .with_columns(
            verdict=pl.when(pl.col("ratio") <= threshold).then(pl.lit("necessary")).otherwise(pl.lit("no"))
        )
        # the verdict and the ratio first, so that they show without scrolling; n12 is n_both
        .select("top", "tag", "verdict", "ratio", "p_tag_given_action", "lift", "n11", "n12", "n22", "n_both")
    )


class BrowserScreen(CoreScreen):
    """Browse the co-occurrence of actions with scenes, objects, events, attributes and concepts."""

    BINDINGS = [*bindings.BROWSER]
    AUTO_FOCUS = "#actions"

    class ActionsLoaded(Message):
        def __init__(self, actions: pl.DataFrame) -> None:
            super().__init__()
            self.actions = actions

    class TopTagsComputed(Message):
        def __init__(self, category: str, frame: pl.DataFrame, clips: str) -> None:
            super().__init__()
            self.category = category
            self.frame = frame
            self.clips = clips

    class ClipsPrefetched(Message):
        def __init__(self, action: str, tag: str, clips: pl.DataFrame | None) -> None:
            super().__init__()
            self.action = action
            self.tag = tag
            self.clips = clips

    class CooccurrenceLoaded(Message):
        def __init__(
            self, action: str, cooccurrence: pl.DataFrame, top_tags: dict[str, pl.DataFrame], clips: str
        ) -> None:
            super().__init__()
            self.action = action
            self.cooccurrence = cooccurrence
            self.top_tags = top_tags
            self.clips = clips

    def __init__(self) -> None:
        super().__init__()
        self.actions = pl.DataFrame(schema={"action": pl.String, "n_clips": pl.Int64})
        self.action: str | None = None  # the action whose tags are shown
        self.cooccurrence: pl.DataFrame | None = None
        self.cooccurrence_for: str | None = None  # the action of self.cooccurrence (self.action once loaded)
        self.shown: tuple[str, str] | None = None  # (action, category) whose rows the tags table holds
        self.top_tags: dict[str, pl.DataFrame] = {}  # category -> compute_nca frame (top tag per action)
        self._pending_action: str | None = None
        self._top_tags_started = False
        # clips of the highlighted pair, fetched once it stays highlighted a moment, so that enter is instant
        self.clips_cache: dict[tuple[str, str], pl.DataFrame] = {}
        self._prefetch: tuple[tuple[str, str], Worker] | None = None  # the last prefetch: pair, worker
        self._prefetch_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Notice(id="browser-notice")
        with Horizontal(id="browser"):
            with Vertical(id="actions-pane", classes="pane"):
                yield Input(placeholder="/ search actions", id="search")
                yield FrameTable(id="actions", key_column="action")
            with Vertical(id="pairs-pane", classes="pane"):
                yield Static("Select an action on the left.", id="action-title")
                yield Tabs(*[Tab(f"{c}s", id=c) for c in SIDE_CATEGORIES], id="categories")
                yield FrameTable(id="pairs", key_column="tag")
                yield Static("", id="pair-detail", classes="status-line")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.watch(self.app, "threshold", self._threshold_changed, init=False)
        self.watch(self.app, "clips", self._clips_changed, init=False)
        self.reload()

    def reload(self) -> None:
        self.top_tags.clear()
        self.clips_cache.clear()
        self._top_tags_started = False
        self.action = self.cooccurrence_for = None
        self.start_loading("#actions")
        self.load_actions()

    # ------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, group="actions")
    @reports_errors("loading the actions")
    def load_actions(self) -> None:
        from hvuaudit.cooccurrence import list_actions

        with self.session.cursor() as cur:
            actions = list_actions(cur)
        self.post_fresh(self.ActionsLoaded(actions))

    @work(thread=True, exclusive=True, group="cooccurrence")
    @reports_errors("loading the co-occurrences of the action")
    def load_cooccurrence(
        self, action: str, category: str, known_top_tags: frozenset[str], clips: str
    ) -> None:
        from hvuaudit.cooccurrence import action_cooccurrence
        from hvuaudit.nca import compute_nca_or_empty

        with self.session.cursor() as cur:
            cooccurrence = action_cooccurrence(cur, action, clips=clips)
            # the NCA cells of the tab on screen now; the other tabs' come from load_top_tags
            top_tags = (
                {category: compute_nca_or_empty(cur, category, clips=clips)}
                if category not in known_top_tags
                else {}
            )
        self.post_fresh(self.CooccurrenceLoaded(action, cooccurrence, top_tags, clips))

    @work(thread=True, exclusive=True, group="top-tags")
    @reports_errors("computing NCA cells")
    def load_top_tags(self, categories: list[str], clips: str) -> None:
        from hvuaudit.nca import compute_nca_or_empty

        for category in categories:
            with self.session.cursor() as cur:
                frame = compute_nca_or_empty(cur, category, clips=clips)
            self.post_fresh(self.TopTagsComputed(category, frame, clips))

    @work(thread=True, exclusive=True, group="clips-prefetch")
    @reports_errors("loading the clips of the pair")
    def prefetch_clips(self, action: str, tag: str) -> None:
        from hvuaudit.cooccurrence import clips_of_pair

        # Posted even when a newer prefetch replaced this one (the rows are right for their pair), and
        # on failure too (clips=None), so that a clips screen waiting for this pair never waits forever.
        try:
            with self.session.cursor() as cur:
                clips = clips_of_pair(cur, action, tag)
        except Exception:
            self.post_message(self.ClipsPrefetched(action, tag, None))
            raise
        self.post_message(self.ClipsPrefetched(action, tag, clips))

    # ------------------------------------------------------------ handlers

    @on(ClipsPrefetched)
    def store_clips(self, event: ClipsPrefetched) -> None:
        if event.clips is not None:
            if len(self.clips_cache) > 50:
                self.clips_cache.clear()
            self.clips_cache[(event.action, event.tag)] = event.clips
        if self.app.is_screen_installed("clips"):  # opened while this fetch was under way: it waits for it
            clips = self.app.get_screen("clips")
            assert isinstance(clips, ClipsScreen)
            clips.deliver(event.action, event.tag, event.clips)

    @on(ActionsLoaded)
    def show_actions(self, event: ActionsLoaded) -> None:
        self.stop_loading("#actions")
        self.actions = event.actions
        notice = self.query_one(Notice)
        if event.actions.is_empty():
            notice.say("The store has no actions yet.", f"Fill it with:\n  {self.session.ingest_command}")
            return
        notice.clear()
        self._filter_actions(self.query_one("#search", Input).value)
        if self._pending_action:
            self.open_action(self._pending_action)

    @on(Input.Changed, "#search")
    def search_changed(self, event: Input.Changed) -> None:
        self._filter_actions(event.value)

    @on(Input.Submitted, "#search")
    def search_submitted(self) -> None:
        self.query_one("#actions", FrameTable).focus()

    def _filter_actions(self, text: str) -> None:
        needle = text.strip().lower()
        shown = (
            self.actions.filter(pl.col("action").str.to_lowercase().str.contains(needle, literal=True))
            if needle
            else self.actions
        )
        table = self.query_one("#actions", FrameTable)
        table.show_frame(shown, labels={"n_clips": "clips"}, widths={"action": 22})
        table.border_subtitle = f"{shown.height} of {self.actions.height}"

    @on(DataTable.RowHighlighted, "#actions")
    def action_highlighted(self, event: DataTable.RowHighlighted) -> None:
        action = event.row_key.value if event.row_key is not None else None  # None: an empty table
        if action and action != self.action:
            self.action = action
            self.start_loading("#pairs")
            self.load_cooccurrence(action, self.category, frozenset(self.top_tags), self.app.clips)

    @on(DataTable.RowSelected, "#actions")
    def action_selected(self) -> None:
        self.query_one("#pairs", FrameTable).focus()

    @on(CooccurrenceLoaded)
    def show_cooccurrence(self, event: CooccurrenceLoaded) -> None:
        if event.clips != self.app.clips:  # counted in the mode the user has just left
            return
        self.top_tags.update(event.top_tags)
        if event.action != self.action:  # the user has moved on
            return
        self.stop_loading("#pairs")
        self.cooccurrence = event.cooccurrence
        self.cooccurrence_for = event.action
        self._show_pairs(keep_cursor=False)
        missing = [c for c in SIDE_CATEGORIES if c not in self.top_tags]
        if missing and not self._top_tags_started:
            self._top_tags_started = True
            self.load_top_tags(missing, self.app.clips)

    @on(TopTagsComputed)
    def store_top_tags(self, event: TopTagsComputed) -> None:
        if event.clips != self.app.clips:
            return
        self.top_tags[event.category] = event.frame
        if event.category == self.category:
            self._show_pairs()

    @on(Tabs.TabActivated, "#categories")
    def category_changed(self) -> None:
        self._show_pairs(keep_cursor=False)

    def _threshold_changed(self) -> None:
        self._show_pairs()

    def _clips_changed(self) -> None:
        """Every NCA cell changes with the clip mode: recount the action on screen and the top tags."""
        self.top_tags.clear()
        self._top_tags_started = False
        if self.action is not None:
            self.cooccurrence_for = None
            self.start_loading("#pairs")
            self.load_cooccurrence(self.action, self.category, frozenset(), self.app.clips)

    @property
    def category(self) -> str:
        return self.query_one("#categories", Tabs).active or SIDE_CATEGORIES[0]

    def _top_row(self) -> dict | None:
        frame = self.top_tags.get(self.category)
        if frame is None or self.action is None:
            return None
        rows = frame.filter(pl.col("action") == self.action)
        return rows.row(0, named=True) if rows.height else None

    def _show_pairs(self, *, keep_cursor: bool = True) -> None:
        if self.cooccurrence is None or self.action is None or self.cooccurrence_for != self.action:
            return
        category = self.category
        top = self._top_row()
        pairs = pairs_with_cells(self.cooccurrence, category, top["tag"] if top else None, self.app.threshold)
        table = self.query_one("#pairs", FrameTable)
        table.show_frame(
            pairs,
            labels={"top": "", "p_tag_given_action": "P(t|a)", "n12": "n12=both"},
            hide=("n_both",),
            widths={"tag": 24},
            drop=("n22", "n11", "lift", "n12", "p_tag_given_action"),  # in a narrow window, first gone first
            digits={"p_tag_given_action": 3, "lift": 2, "ratio": 2},
            styles={"verdict": VERDICT_STYLES},
            keep_cursor=keep_cursor,
        )
        table.border_subtitle = (
            f"{pairs.height} {category}s · threshold {self.app.threshold:.2f} · {self.app.clips} clips"
        )
        self.shown = (self.action, category)
        self.query_one("#action-title", Static).update(self._title(category, top))
        self._show_pair_detail()

    def _title(self, category: str, top: dict | None) -> Text:
        n_clips = self.actions.filter(pl.col("action") == self.action)["n_clips"]
        text = Text(self.action or "", style="bold")
        if n_clips.len():
            text.append(f"  {n_clips[0]:,} clips")
        if category not in self.top_tags:
            text.append(f"\ncomputing the NCA cells of the {category}s…", style="dim")
            return text
        if top is None or top["tag"] is None:
            text.append(f"\nno {category} co-occurs with this action", style="dim")
            return text
        verdict = (
            "necessary"
            if top["ratio"] is not None and top["ratio"] <= self.app.threshold
            else "not necessary"
        )
        text.append(f"\nNCA top {category}: ")
        text.append(top["tag"], style="bold")
        text.append(
            f"  n11={top['n11']:,} n12={top['n12']:,} n22={top['n22']:,}  "
            f"ratio {format_cell(top['ratio'])} vs threshold {self.app.threshold:.2f} → "
        )
        text.append(verdict, style=VERDICT_STYLES[verdict])
        text.append(f"  (p={format_cell(top['p_value'])}, q={format_cell(top['q_value'])})", style="dim")
        return text

    @on(DataTable.RowHighlighted, "#pairs")
    def pair_highlighted(self) -> None:
        self._show_pair_detail()
        if self._prefetch_timer is not None:
            self._prefetch_timer.stop()
        self._prefetch_timer = self.set_timer(PREFETCH_DELAY, self._prefetch_highlighted_clips)

    def _prefetch_highlighted_clips(self) -> None:
        row = self.query_one("#pairs", FrameTable).current_row()
        if row is None or not self.action:
            return
        pair = (self.action, row["tag"])
        if pair not in self.clips_cache and not self._prefetching(pair):
            self._prefetch = (pair, self.prefetch_clips(*pair))

    def _prefetching(self, pair: tuple[str, str]) -> bool:
        """Whether a worker is fetching the clips of ``pair`` right now (a failed one has finished)."""
        return self._prefetch is not None and self._prefetch[0] == pair and self._prefetch[1].is_running

    def _show_pair_detail(self) -> None:
        row = self.query_one("#pairs", FrameTable).current_row()
        detail = self.query_one("#pair-detail", Static)
        if row is None:
            detail.update("")
            return
        detail.update(
            Text.assemble(
                (f"{self.action} × {row['tag']}", "bold"),
                f": {row['n_both']:,} clips together; P(tag|action) "
                f"{format_cell(row['p_tag_given_action'])}, "
                f"lift {format_cell(row['lift'], digits=2)}. enter: clips   r: actions with this "
                f"{self.category}",
            )
        )

    @on(DataTable.RowSelected, "#pairs")
    def pair_selected(self, event: DataTable.RowSelected) -> None:
        tag = event.row_key.value if event.row_key is not None else None
        if self.action and tag:
            if not self.app.is_screen_installed("clips"):
                self.app.install_screen(ClipsScreen(), "clips")
            clips = self.app.get_screen("clips")
            assert isinstance(clips, ClipsScreen)
            if self._prefetch_timer is not None:
                self._prefetch_timer.stop()  # the clips screen fetches them now, if no one has
            pair = (self.action, tag)
            # two copies of one query side by side would each take twice as long
            clips.show_pair(*pair, self.clips_cache.get(pair), fetch=not self._prefetching(pair))
            self.app.push_screen(clips)

    # ------------------------------------------------------------ actions

    def open_action(self, action: str) -> None:
        """Show ``action`` (clearing the search); remembered until the actions are loaded."""
        if self.actions.is_empty():
            self._pending_action = action
            return
        self._pending_action = None
        search = self.query_one("#search", Input)
        if search.value:
            with search.prevent(Input.Changed):
                search.value = ""
            self._filter_actions("")
        table = self.query_one("#actions", FrameTable)
        if action not in table.rows:
            self.notify(f"'{action}' is not an action of this store", severity="warning")
            return
        table.move_cursor(row=table.get_row_index(action), scroll=True)
        table.focus()

    def action_focus_search(self) -> None:
        # set_focus now, not focus() (which waits a turn): keys typed right after '/' go to the field
        self.set_focus(self.query_one("#search", Input))

    def action_back_to_actions(self) -> None:
        self.query_one("#actions", FrameTable).focus()

    def action_category(self, step: int) -> None:
        tabs = self.query_one("#categories", Tabs)
        tabs.action_next_tab() if step > 0 else tabs.action_previous_tab()

    def action_reverse(self) -> None:
        row = self.query_one("#pairs", FrameTable).current_row()
        if row is None:
            self.notify("Highlight a tag on the right first (select an action, then tab to its tags).")
            return
        self.app.push_screen(ReverseScreen(row["tag"], self.category), self._reverse_done)

    def _reverse_done(self, action: str | None) -> None:
        if action:
            self.open_action(action)
