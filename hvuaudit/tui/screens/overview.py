"""Overview: what the store holds (sources, clips per subset, tags per category, tags per clip).

Reads :func:`hvuaudit.store.store_sources`, :func:`hvuaudit.cooccurrence.store_stats`
and the bundled ``tags_per_clip_histogram`` query in one worker: the summary first,
then the slower tags-per-clip statistics. The histogram of
tags per clip is drawn for one category at a time (tabs, ``[``/``]``), from the rows
already loaded. An empty or missing store is shown in place, with the command that fills it.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, Header, Label, Static, Tab, Tabs

from hvuaudit.categories import HVU_CATEGORIES
from hvuaudit.errors import StoreError
from hvuaudit.tui import bindings
from hvuaudit.tui.screens.base import CoreScreen, reports_errors
from hvuaudit.tui.widgets import FrameTable, HistogramPlot, Notice


class OverviewScreen(CoreScreen):
    """The first screen: the store at a glance."""

    AUTO_FOCUS = "#sources"
    BINDINGS = [*bindings.OVERVIEW]
    HISTOGRAM_CATEGORIES = ("all", *HVU_CATEGORIES)

    class OverviewLoaded(Message):
        def __init__(self, sources: pl.DataFrame, stats: dict[str, pl.DataFrame]) -> None:
            super().__init__()
            self.sources = sources
            self.stats = stats

    class TagsPerClipLoaded(Message):
        def __init__(self, quartiles: pl.DataFrame, histogram: pl.DataFrame) -> None:
            super().__init__()
            self.quartiles = quartiles
            self.histogram = histogram

    class StoreFoundEmpty(Message):
        pass

    def compose(self) -> ComposeResult:
        yield Header()
        yield Notice(id="overview-notice")
        with Horizontal(id="overview"):
            with Vertical(classes="pane"):
                yield Label("Sources", classes="pane-title")
                yield FrameTable(id="sources", classes="short-table")
                yield Label("Clips per subset", classes="pane-title")
                yield FrameTable(id="subsets", classes="short-table")
                yield Label("Tags per category", classes="pane-title")
                yield FrameTable(id="categories", classes="short-table")
            with Vertical(id="tags-per-clip-pane", classes="pane"):
                yield Label("Tags per clip, by category", classes="pane-title")
                yield FrameTable(id="tags-per-clip", classes="short-table")
                yield Tabs(*[Tab(c, id=c) for c in self.HISTOGRAM_CATEGORIES], id="histogram-categories")
                yield HistogramPlot(id="histogram")
        yield Static(id="overview-status", classes="status-line")
        yield Footer(compact=True)

    histogram = pl.DataFrame()  # every category's rows of tags_per_clip_histogram, once loaded

    def on_mount(self) -> None:
        self.reload()

    def reload(self) -> None:
        self.start_loading("#overview")
        self.load_overview()

    @work(thread=True, exclusive=True, group="overview")
    @reports_errors("reading the store overview")
    def load_overview(self) -> None:
        from hvuaudit.cooccurrence import store_stats
        from hvuaudit.store import require_clips, run_query, store_sources

        with self.session.cursor() as cur:
            try:
                require_clips(cur)
            except StoreError:
                self.post_fresh(self.StoreFoundEmpty())
                return
            sources = pl.DataFrame(
                [
                    {"file": Path(s.path).name, "subset": s.subset, "rows": s.rows, "sha256": s.sha256[:12]}
                    for s in store_sources(cur)
                ],
                schema={"file": pl.String, "subset": pl.String, "rows": pl.Int64, "sha256": pl.String},
            )
            self.post_fresh(self.OverviewLoaded(sources, store_stats(cur, tags_per_clip=False)))
            # the slow part (grouped passes over every clip-tag) follows the summary
            quartiles = run_query(cur, "stats_tags_per_clip")
            histogram = run_query(cur, "tags_per_clip_histogram")
        self.post_fresh(self.TagsPerClipLoaded(quartiles, histogram))

    @on(OverviewLoaded)
    def show_overview(self, event: OverviewLoaded) -> None:
        overview = self.query_one("#overview")
        self.stop_loading("#overview")
        self.start_loading("#tags-per-clip-pane")  # until TagsPerClipLoaded
        overview.display = True
        self.query_one(Notice).clear()
        self.query_one("#sources", FrameTable).show_frame(event.sources)
        self.query_one("#subsets", FrameTable).show_frame(
            event.stats["subsets"],
            labels={
                "clips_without_action": "no action",
                "clips_without_scene": "no scene",
                "mean_tags_per_clip": "tags/clip",
            },
            digits={"mean_tags_per_clip": 2},
        )
        self.query_one("#categories", FrameTable).show_frame(
            event.stats["categories"],
            labels={"tags_defined": "defined", "tags_present": "present", "clip_tag_links": "clip-tag links"},
        )
        clips = int(event.stats["subsets"]["clips"].sum())
        self.query_one("#overview-status", Static).update(
            f"{clips:,} clips in {event.sources.height} source file(s). "
            "Press 2 to browse co-occurrences, 3 for NCA, ? for help."
        )

    @on(TagsPerClipLoaded)
    def show_tags_per_clip(self, event: TagsPerClipLoaded) -> None:
        self.stop_loading("#tags-per-clip-pane")
        self.query_one("#tags-per-clip", FrameTable).show_frame(
            event.quartiles, digits={"mean": 2, "median": 1}
        )
        self.histogram = event.histogram
        self.show_histogram()

    @on(Tabs.TabActivated, "#histogram-categories")
    def show_histogram(self) -> None:
        if self.histogram.is_empty():
            return  # not counted yet (a store with clips always has rows): TagsPerClipLoaded draws it
        category = self.query_one("#histogram-categories", Tabs).active or "all"
        rows = self.histogram.filter(pl.col("category") == category)
        tags = "tags" if category == "all" else f"{category} tags"
        self.query_one(HistogramPlot).show_histogram(
            rows, title=f"clips by number of {tags}", xlabel=f"{tags} per clip"
        )

    def action_category(self, step: int) -> None:
        tabs = self.query_one("#histogram-categories", Tabs)
        tabs.action_next_tab() if step > 0 else tabs.action_previous_tab()

    @on(StoreFoundEmpty)
    def show_empty(self) -> None:
        overview = self.query_one("#overview")
        self.stop_loading("#overview")
        self.stop_loading("#tags-per-clip-pane")
        overview.display = False
        self.query_one("#overview-status", Static).update("")
        db = self.session.path
        self.query_one(Notice).say(
            f"The store {db} is empty: it has no clips yet.",
            f"Fill it with the HVU annotation files:\n  {self.session.ingest_command}\n\n"
            "or try it on synthetic data first:\n"
            "  hvuaudit synth annotations --clips 10000 --out synth/\n"
            "  hvuaudit ingest synth/HVU_*_Synth.csv --categories synth/HVU_Tags_Categories_Synth.csv --db "
            f"{db}\n\n"
            "then restart hvuaudit tui (or ctrl+p → Reopen the store).",
        )
