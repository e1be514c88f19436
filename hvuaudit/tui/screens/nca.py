"""NCA: per category, which actions have a necessary top tag at the chosen threshold.

The table is :func:`hvuaudit.nca.compute_nca` (as ``hvuaudit nca``), the plot is
:func:`~hvuaudit.nca.nca_sweep` (Fig. 2d) with the threshold marked, and the
roles come from :func:`hvuaudit.roles.recommend_roles` at the same threshold and
clip mode, with their band and any warning. The threshold and the clip mode are the
app's (``+``/``-`` by 0.05, ``t`` to type it, ``l`` for labelled/all clips), so the
browser's verdicts follow them. ``w`` writes ``tasks.json`` with
:func:`~hvuaudit.roles.write_tasks`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Input, Label, Static, Tab, Tabs

from hvuaudit.categories import SIDE_CATEGORIES, with_article
from hvuaudit.tui import bindings
from hvuaudit.tui.messages import CoreFailed
from hvuaudit.tui.screens.base import CoreScreen, reports_errors
from hvuaudit.tui.screens.browser import VERDICT_STYLES
from hvuaudit.tui.screens.modals import PromptModal
from hvuaudit.tui.widgets import FrameTable, Notice, SweepPlot

SWEEP_STEP = 0.05  # the Fig. 2d grid: 0, 0.05, ..., max(1, threshold)
# hvuaudit nca's columns, the verdict first so that it shows without scrolling
DISPLAY_ORDER = [
    "action",
    "tag",
    "necessary",
    "ratio",
    "n11",
    "n12",
    "n22",
    "n_action",
    "n_tag",
    "share",
    "p_value",
    "q_value",
]
ROLE_STYLES = {"auxiliary": "bold green", "adversarial": "bold red", "undecided": "bold yellow"}
SWEEP_BASE = ("scene", "object")  # Fig. 2d's two curves; the current category is added when different
# Hidden first when the window is too narrow for every column (the verdict, ratio, n11 and n12 stay).
DROP_TO_FIT = ("q_value", "share", "n_tag", "n_action", "p_value", "n22")
# From this width the plot and the roles sit beside the table with every column of the table in view
# (3/5 of the width for the table, as app.tcss gives it); below it they share its place (key p).
SIDE_BY_SIDE_WIDTH = 200


class NcaScreen(CoreScreen):
    """Decide with NCA: live table, sweep plot and task roles for one category and threshold."""

    BINDINGS = [*bindings.NCA]
    # Below SIDE_BY_SIDE_WIDTH the table takes the whole width, so that 120 columns show every cell
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (SIDE_BY_SIDE_WIDTH, "-wide")]

    class NcaComputed(Message):
        """compute_nca frames, keyed by (category, threshold, clips); the current one and prefetched ones."""

        def __init__(self, frames: dict[tuple[str, float, str], pl.DataFrame]) -> None:
            super().__init__()
            self.frames = frames

    class SweepComputed(Message):
        """nca_sweep of single categories, keyed by (category, grid end, clips)."""

        def __init__(self, sweeps: dict[tuple[str, float, str], pl.DataFrame]) -> None:
            super().__init__()
            self.sweeps = sweeps

    class RolesRecommended(Message):
        def __init__(self, roles) -> None:
            super().__init__()
            self.roles = roles

    class TasksWritten(Message):
        def __init__(self, path: Path, roles) -> None:
            super().__init__()
            self.path = path
            self.roles = roles

    def __init__(self) -> None:
        super().__init__()
        self.frame: pl.DataFrame | None = None  # the table on screen (current category and threshold)
        # Caches: a tab switch or a threshold revisited shows at once; the other categories are
        # computed in the background after the first table, so that their tabs are instant too.
        self.frames: dict[tuple[str, float, str], pl.DataFrame] = {}
        self.sweeps: dict[tuple[str, float, str], pl.DataFrame] = {}
        self.roles: dict[tuple[float, str], Any] = {}  # (threshold, clips) -> TaskRoles
        self._prefetched = False
        self.necessary_only = False  # key n: the actions whose top tag is necessary, alone
        self._computing: tuple[str, float, str] | None = None  # the table the compute_tables worker makes

    def compose(self) -> ComposeResult:
        yield Header()
        yield Tabs(*[Tab(f"{c}s", id=c) for c in SIDE_CATEGORIES], id="nca-categories")
        yield Notice(id="nca-notice")
        with Horizontal(id="nca"):
            with Vertical(id="nca-left", classes="pane"):
                with Horizontal(id="threshold-bar"):
                    yield Label("threshold  n11/n12 ≤", id="threshold-label")
                    yield Input(id="threshold", type="number", max_length=10)
                    yield Static("", id="nca-summary")
                yield FrameTable(id="nca-table", key_column="action")
            with Vertical(id="nca-right", classes="pane"):
                yield SweepPlot(id="sweep")
                yield Static("", id="roles")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#threshold", Input).value = f"{self.app.threshold:g}"
        self.watch(self.app, "threshold", self._threshold_changed, init=False)
        self.watch(self.app, "clips", self._clips_changed, init=False)
        # set_focus now, not focus() (which waits a turn and would take the focus back from the
        # threshold field when `t` and digits are typed the moment the screen opens)
        self.set_focus(self.query_one("#nca-table", FrameTable))
        self.reload()

    def reload(self) -> None:
        self._computing = None
        self.frames.clear()
        self.sweeps.clear()
        self.roles.clear()
        self._prefetched = False
        self._compute()

    @property
    def category(self) -> str:
        return self.query_one("#nca-categories", Tabs).active or SIDE_CATEGORIES[0]

    def _sweep_keys(self) -> list[tuple[str, float, str]]:
        top = max(1.0, math.ceil(self.app.threshold * 4) / 4)  # the grid reaches the marker
        return [(category, top, self.app.clips) for category in dict.fromkeys((*SWEEP_BASE, self.category))]

    def _compute(self) -> None:
        threshold, clips = self.app.threshold, self.app.clips
        key = (self.category, threshold, clips)
        if key in self.frames:
            self._show_table()
        else:
            if self.frame is None:
                self.start_loading("#nca-table")
            if key != self._computing:  # the tabs' first activation asks again for the table under way
                self._computing = key
                self.compute_tables([key])
            if self.frame is None:
                # the first table goes first, alone on the cores: the plot and the roles follow it
                # (store_tables calls _compute_side again once it is in)
                return
        self._compute_side()

    def _compute_side(self) -> None:
        """The Fig. 2d plot and the roles at the app's threshold and clip mode (cached or computed)."""
        threshold, clips = self.app.threshold, self.app.clips
        if (threshold, clips) in self.roles:
            self._show_roles()
        else:
            self.compute_roles(threshold, clips)
        missing = [k for k in self._sweep_keys() if k not in self.sweeps]
        if missing:
            self.compute_sweeps(missing)
        else:
            self._draw_sweep()

    # ------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, group="nca-table")
    @reports_errors("computing NCA")
    def compute_tables(self, keys: list[tuple[str, float, str]]) -> None:
        from hvuaudit.nca import compute_nca_or_empty

        with self.session.cursor() as cur:
            frames = {
                (category, threshold, clips): compute_nca_or_empty(
                    cur, category, threshold=threshold, clips=clips
                )
                for category, threshold, clips in keys
            }
        self.post_fresh(self.NcaComputed(frames))

    @work(thread=True, exclusive=True, group="nca-prefetch")
    @reports_errors("computing NCA for the other categories")
    def prefetch_tables(self, keys: list[tuple[str, float, str]]) -> None:
        from hvuaudit.nca import compute_nca_or_empty

        for category, threshold, clips in keys:
            with self.session.cursor() as cur:
                frame = compute_nca_or_empty(cur, category, threshold=threshold, clips=clips)
            self.post_fresh(self.NcaComputed({(category, threshold, clips): frame}))

    @work(thread=True, exclusive=True, group="nca-sweep")
    @reports_errors("computing the NCA sweep")
    def compute_sweeps(self, keys: list[tuple[str, float, str]]) -> None:
        from hvuaudit.nca import SWEEP_SCHEMA, NoLabelledClipsError, nca_sweep, parse_thresholds

        sweeps = {}
        with self.session.cursor() as cur:
            for category, top, clips in keys:
                try:
                    grid = parse_thresholds(f"0:{top:g}:{SWEEP_STEP}")
                    sweeps[(category, top, clips)] = nca_sweep(cur, [category], grid, clips=clips)
                except NoLabelledClipsError:  # no curve for it; the table's notice says why
                    sweeps[(category, top, clips)] = pl.DataFrame(schema=SWEEP_SCHEMA)
        self.post_fresh(self.SweepComputed(sweeps))

    @work(thread=True, exclusive=True, group="nca-roles")
    @reports_errors("recommending task roles")
    def compute_roles(self, threshold: float, clips: str) -> None:
        from hvuaudit.roles import recommend_roles

        with self.session.cursor() as cur:
            roles = recommend_roles(cur, threshold=threshold, clips=clips)
        self.post_fresh(self.RolesRecommended(roles))

    @work(thread=True, exclusive=True, group="nca-write")
    @reports_errors("writing tasks.json")
    def write_tasks_file(self, path: Path, threshold: float, clips: str) -> None:
        from hvuaudit.roles import recommend_roles, write_tasks

        with self.session.cursor() as cur:
            roles = recommend_roles(cur, threshold=threshold, clips=clips)
        write_tasks(roles, path)
        self.post_message(self.TasksWritten(path, roles))

    # ------------------------------------------------------------ handlers

    def on_core_failed(self, event: CoreFailed) -> None:
        self._computing = None  # a failed table may be asked for again (after the store is reopened)
        super().on_core_failed(event)

    @on(NcaComputed)
    def store_tables(self, event: NcaComputed) -> None:
        if len(self.frames) > 200:  # thresholds typed one after another: keep the cache small
            self.frames.clear()
        self.frames.update(event.frames)
        if self._computing in event.frames:
            self._computing = None
        current = (self.category, self.app.threshold, self.app.clips)
        if current in event.frames:
            first = self.frame is None
            self._show_table()
            if first:
                self._compute_side()
            if not self._prefetched:  # once: the other tabs at the first threshold
                self._prefetched = True
                rest = [(c, *current[1:]) for c in SIDE_CATEGORIES if (c, *current[1:]) not in self.frames]
                self.prefetch_tables(rest)

    def _show_table(self) -> None:
        category, threshold, clips = self.category, self.app.threshold, self.app.clips
        frame = self.frames[(category, threshold, clips)]
        self.frame = frame
        if frame.is_empty() and clips == "labelled":
            self.query_one(Notice).say(
                f"No clip carries {with_article(category)} tag, so no action "
                "can be counted among labelled clips.",
                "Press l to count all clips.",
            )
        else:
            self.query_one(Notice).clear()
        table = self.query_one("#nca-table", FrameTable)
        self.stop_loading("#nca-table")
        rows = frame.filter(pl.col("necessary")) if self.necessary_only else frame
        shown = rows.with_columns(
            necessary=pl.when(pl.col("necessary")).then(pl.lit("necessary")).otherwise(pl.lit("no"))
        ).select(DISPLAY_ORDER)
        table.show_frame(
            shown,
            digits={"ratio": 3, "share": 3, "p_value": 2, "q_value": 2},
            widths={"action": 24, "tag": 22},
            drop=DROP_TO_FIT,
            labels={"p_value": "p", "q_value": "q"},
            styles={"necessary": VERDICT_STYLES},
        )
        necessary = int(frame["necessary"].sum())
        summary = Text.assemble(
            (f"{necessary}", "bold"),
            f" of {frame.height} actions have a necessary {category} at {threshold:g} ({clips} clips)",
            ("; only those shown (n: all)" if self.necessary_only else ""),
        )
        self.query_one("#nca-summary", Static).update(summary)
        table.border_subtitle = "enter: open the action in the browser"

    @on(SweepComputed)
    def store_sweeps(self, event: SweepComputed) -> None:
        self.sweeps.update(event.sweeps)
        self._draw_sweep()

    def _draw_sweep(self) -> None:
        keys = self._sweep_keys()
        if all(key in self.sweeps for key in keys):
            sweep = pl.concat([self.sweeps[key] for key in keys])
            self.query_one(SweepPlot).show_sweep(sweep, threshold=self.app.threshold, current=self.category)

    @on(RolesRecommended)
    def store_roles(self, event: RolesRecommended) -> None:
        key = (event.roles.threshold, event.roles.clips)
        self.roles[key] = event.roles
        if key == (self.app.threshold, self.app.clips):
            self._show_roles()

    def _show_roles(self) -> None:
        roles = self.roles[(self.app.threshold, self.app.clips)]
        pairs = roles.differences[roles.clips]
        intervals = "\n".join(
            f"{p['category']} − {p['versus']}: {p['difference']:+.3f} "
            f"[{p['ci_low']:+.3f}, {p['ci_high']:+.3f}]"
            for p in pairs
        )
        table = Table(
            title=f"Task roles at threshold {roles.threshold:g}, {roles.clips} clips",
            title_justify="left",
            box=None,
            padding=(0, 1),
            pad_edge=False,
            caption=f"share of actions with a necessary tag, difference and {roles.bootstrap.confidence:.0%} "
            f"bootstrap interval:\n{intervals}\nadversarial / auxiliary: clearly less / more often necessary "
            f"than another category; band: the thresholds around {roles.anchor:g} where that holds.  "
            "w: write tasks.json",
            caption_justify="left",
        )
        table.add_column("category", no_wrap=True)
        table.add_column("role", no_wrap=True)
        table.add_column("band", no_wrap=True)
        table.add_column("necessary", justify="right", no_wrap=True)
        for category, role in roles.roles.items():
            evidence = roles.evidence[roles.clips][category]
            table.add_row(
                category,
                Text(role, style=ROLE_STYLES[role]),
                roles.band(category).describe(),
                f"{evidence['actions_necessary']} / {evidence['actions']}",
            )
        warnings = Text("\n".join(f"⚠ {w}" for w in roles.warnings), style="yellow")
        self.query_one("#roles", Static).update(Group(table, warnings) if roles.warnings else table)

    @on(TasksWritten)
    def tasks_written(self, event: TasksWritten) -> None:
        roles = ", ".join(f"{c}: {r}" for c, r in event.roles.roles.items())
        warned = (
            f"\n{len(event.roles.warnings)} warning(s), recorded in the file" if event.roles.warnings else ""
        )
        self.notify(
            f"Wrote {event.path}\n{roles}{warned}",
            title="tasks.json written",
            severity="warning" if event.roles.warnings else "information",
            markup=False,
        )

    @on(Tabs.TabActivated, "#nca-categories")
    def category_changed(self) -> None:
        if self.is_mounted and self.query("#nca-table"):
            self._compute()

    def _clips_changed(self) -> None:
        """Every number on the screen changes with the clip mode: show that the table is recounting."""
        self._prefetched = False  # the other tabs, in the new mode, once its first table is in
        if (self.category, self.app.threshold, self.app.clips) not in self.frames:
            self.start_loading("#nca-table")
        self._compute()

    def _threshold_changed(self, threshold: float) -> None:
        field = self.query_one("#threshold", Input)
        if not field.has_focus:
            field.value = f"{threshold:g}"
        self._compute()

    @on(Input.Submitted, "#threshold")
    def threshold_typed(self, event: Input.Submitted) -> None:
        from hvuaudit.errors import InputError
        from hvuaudit.nca import check_threshold

        try:
            value = check_threshold(float(event.value))
        except (ValueError, InputError):
            self.notify(
                f"'{event.value}' is not a threshold: type a number ≥ 0, such as 0.2",
                severity="error",
                markup=False,
            )
            return
        self.app.threshold = round(value, 6)
        self.query_one("#nca-table", FrameTable).focus()

    @on(DataTable.RowSelected, "#nca-table")
    async def open_in_browser(self, event: DataTable.RowSelected) -> None:
        if event.row_key is not None and event.row_key.value:
            await self.app.show_action(event.row_key.value)

    # ------------------------------------------------------------ actions

    def action_threshold(self, step: float) -> None:
        self.app.threshold = max(0.0, round(self.app.threshold + step, 6))

    def action_type_threshold(self) -> None:
        field = self.query_one("#threshold", Input)
        self.set_focus(field)  # at once, so that the digits typed next land in the field
        field.select_all()

    def action_necessary_only(self) -> None:
        """Show the actions whose top tag is necessary, alone; again: every action."""
        self.necessary_only = not self.necessary_only
        if self.frame is not None:
            self._show_table()

    def action_toggle_plot(self) -> None:
        """In a window too narrow for both: the plot and the roles in the table's place, and back."""
        if self.has_class("-wide"):
            self.notify("The plot and the roles are beside the table already", timeout=2)
            return
        self.toggle_class("-show-plot")

    def action_category(self, step: int) -> None:
        tabs = self.query_one("#nca-categories", Tabs)
        tabs.action_next_tab() if step > 0 else tabs.action_previous_tab()

    def action_write_tasks(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                self.write_tasks_file(Path(path).expanduser(), self.app.threshold, self.app.clips)

        self.app.push_screen(
            PromptModal(
                "Write tasks.json",
                value="tasks.json",
                note=f"Roles at threshold {self.app.threshold:g} ({self.app.clips} clips), with their bands "
                "and warnings, go to this file, read by `hvuaudit train --tasks`. "
                "An existing file is replaced.",
            ),
            chosen,
        )
