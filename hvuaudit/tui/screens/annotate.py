"""Annotate: is this scene (object) necessary for this action? One pair at a time.

Asks for the annotator's name once per session, then walks the queue of
:func:`hvuaudit.annotations.build_queue` (which skips pairs already answered, so
a restart resumes). ``y``/``n``/``u`` save the answer at once with
:func:`~hvuaudit.annotations.record_answer`; ``b`` goes back to the previous
pair (:func:`~hvuaudit.annotations.previous_answer` when the session has just
started); ``?`` shows :data:`~hvuaudit.annotations.GUIDELINES`. Example clips
come from :func:`hvuaudit.cooccurrence.clips_of_pair`. Disabled with ``--read-only``.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, ProgressBar, Static, Tab, Tabs

from hvuaudit.categories import STUDY_CATEGORIES
from hvuaudit.tui import bindings
from hvuaudit.tui.messages import CoreFailed
from hvuaudit.tui.screens.base import CoreScreen, reports_errors
from hvuaudit.tui.screens.clips import has_graphical_browser
from hvuaudit.tui.screens.modals import PromptModal, TextModal
from hvuaudit.tui.session import READ_ONLY_REASON
from hvuaudit.tui.widgets import FrameStrip, FrameTable, Notice
from hvuaudit.tui.widgets.frame_table import format_cell

EXAMPLES = 5
ANSWER_LABELS = {"necessary": "necessary", "not_necessary": "not necessary", "unsure": "unsure"}
ANSWER_KEYS = {"answer", "back", "open_example", "category"}


def check_name(text: str) -> str | None:
    return None if text.strip() else "the annotator's name cannot be empty"


class AnnotateScreen(CoreScreen):
    """The necessity-annotation card."""

    BINDINGS = [*bindings.ANNOTATE]

    class QueueBuilt(Message):
        def __init__(self, category: str, queue: pl.DataFrame) -> None:
            super().__init__()
            self.category = category
            self.queue = queue

    class ProgressCounted(Message):
        """annotation_progress, counted after the queue is on screen (it rebuilds the queue twice)."""

        def __init__(self, category: str, answered: int, total: int) -> None:
            super().__init__()
            self.category = category
            self.answered = answered
            self.total = total

    class ExamplesLoaded(Message):
        def __init__(self, action: str, tag: str, clips: pl.DataFrame) -> None:
            super().__init__()
            self.action = action
            self.tag = tag
            self.clips = clips

    class PreviousFound(Message):
        def __init__(self, previous: dict | None) -> None:
            super().__init__()
            self.previous = previous

    def __init__(self) -> None:
        super().__init__()
        self.queue: list[dict] = []  # pairs of the current category, in queue order
        self.index = 0  # the pair on the card
        self.answers: dict[tuple[str, str], str] = {}  # this session's answers, for "back"
        self.answered = (
            0  # of the category's queue, from the store when the queue is built, then counted here
        )
        self.total = 0
        self.progress_known = False  # answered / total arrive just after the queue
        self._answered_since_build = 0
        self.examples = pl.DataFrame()
        self.example_cache: dict[tuple[str, str], pl.DataFrame] = {}  # the next card's are fetched ahead
        self._ready = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Tabs(*[Tab(f"{c}s", id=c) for c in STUDY_CATEGORIES], id="annotate-categories")
        yield Notice(id="annotate-notice")
        with VerticalScroll(id="annotate"):  # a short window scrolls down to the examples and frames
            yield Static("", id="annotate-status")
            yield ProgressBar(id="annotate-progress", show_eta=False)
            yield Static("", id="card")
            yield FrameTable(id="examples", classes="short-table")
            yield FrameStrip(id="example-frames")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        if self.session.read_only:
            self.query_one("#annotate").display = False
            self.query_one(Notice).say(
                f"Annotation is disabled: {READ_ONLY_REASON}.",
                "Annotators usually work on their own copy of the store and merge answers with "
                "`hvuaudit annotate export` / `hvuaudit annotate import`.",
            )
            return
        self.query_one("#annotate").display = False
        self._ask_name()

    def _ask_name(self, *, again: bool = False) -> None:
        if self.app.annotator and not again:
            self._start()
            return

        def named(name: str | None) -> None:
            if not name:
                if not self._ready:
                    self.query_one(Notice).say("No annotator name given.", "Press a to type your name.")
                return
            if name != self.app.annotator:
                self.answers.clear()
            self.app.annotator = name
            self._start()

        self.app.push_screen(
            PromptModal(
                "Who is annotating?",
                value=self.app.annotator or "",
                placeholder="your name (kept with every answer)",
                note="Your answers are saved under this name as you give them; "
                "the queue skips pairs you have already answered.",
                validate=check_name,
            ),
            named,
        )

    def action_annotator(self) -> None:
        """Type (or change) the annotator's name."""
        if self.session.read_only:
            self.notify(f"Annotation is disabled: {READ_ONLY_REASON}.", severity="warning", markup=False)
            return
        self._ask_name(again=True)

    def _start(self) -> None:
        self._ready = True
        self.query_one(Notice).clear()
        self.reload()

    def reload(self) -> None:
        if self.session.read_only or not self.app.annotator:
            return
        self.query_one("#annotate").display = True
        self.start_loading("#card")
        # the NCA order ranks pairs by their ratio's distance to the app's threshold, in its clip mode
        self.build(self.category, self.app.annotator, self.app.threshold, self.app.clips)

    @property
    def category(self) -> str:
        return self.query_one("#annotate-categories", Tabs).active or STUDY_CATEGORIES[0]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ANSWER_KEYS and (self.session.read_only or not self._ready):
            return None  # greyed out in the footer; the notice says why
        return True

    # ------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, group="annotate-queue")
    @reports_errors("building the annotation queue")
    def build(self, category: str, annotator: str, threshold: float, clips: str) -> None:
        from hvuaudit.annotations import annotation_progress, build_queue

        # One read cursor for both: an answer given once the card is up is saved (a write) only after
        # the count, so the count never includes this session's answers (see show_progress).
        with self.session.cursor() as cur:
            queue = build_queue(cur, category=category, annotator=annotator, threshold=threshold, clips=clips)
            self.post_fresh(self.QueueBuilt(category, queue))
            answered, total = annotation_progress(cur, annotator=annotator, category=category)
        self.post_fresh(self.ProgressCounted(category, answered, total))

    @work(thread=True, exclusive=True, group="annotate-examples")
    @reports_errors("loading example clips")
    def load_examples(self, action: str, tag: str) -> None:
        from hvuaudit.cooccurrence import clips_of_pair

        with self.session.cursor() as cur:
            clips = clips_of_pair(cur, action, tag).head(EXAMPLES)
        self.post_fresh(self.ExamplesLoaded(action, tag, clips))

    @work(thread=True, exclusive=True, group="annotate-prefetch")
    @reports_errors("loading example clips")
    def prefetch_examples(self, action: str, tag: str) -> None:
        from hvuaudit.cooccurrence import clips_of_pair

        with self.session.cursor() as cur:
            clips = clips_of_pair(cur, action, tag).head(EXAMPLES)
        self.post_fresh(self.ExamplesLoaded(action, tag, clips))

    @work(thread=True, exclusive=True, group="annotate-back")
    @reports_errors("finding the previous answer")
    def find_previous(self, annotator: str, category: str, on_screen: list[tuple[str, str]]) -> None:
        from hvuaudit.annotations import previous_answer

        with self.session.cursor() as cur:
            previous = previous_answer(cur, annotator, category, exclude=on_screen)
        self.post_fresh(self.PreviousFound(previous))

    # ------------------------------------------------------------ handlers

    @on(QueueBuilt)
    def show_queue(self, event: QueueBuilt) -> None:
        if event.category != self.category:
            return
        self.stop_loading("#card")
        self.queue = list(event.queue.iter_rows(named=True))
        self.index = 0
        self.answered = self.total = 0
        self.progress_known = False
        self._answered_since_build = 0
        self._show_card()

    @on(ProgressCounted)
    def show_progress(self, event: ProgressCounted) -> None:
        if event.category != self.category:
            return
        self.answered = event.answered + self._answered_since_build
        self.total = event.total
        self.progress_known = True
        self._show_status()

    @on(PreviousFound)
    def show_previous(self, event: PreviousFound) -> None:
        previous = event.previous
        if not previous:
            self.notify(f"Nothing to go back to: no earlier {self.category} answers.", markup=False)
            return
        if previous["category"] != self.category:
            return  # the category changed while it was looked up
        self.answers[(previous["action"], previous["tag"])] = previous["answer"]
        self.queue.insert(self.index, previous)  # a card like the queue's own: counts and ratio included
        self._show_card()

    @on(ExamplesLoaded)
    def store_examples(self, event: ExamplesLoaded) -> None:
        if len(self.example_cache) > 100:
            self.example_cache.clear()
        self.example_cache[(event.action, event.tag)] = event.clips
        pair = self.current
        if pair is not None and (pair["action"], pair["tag"]) == (event.action, event.tag):
            self._show_examples(event.clips)

    def _show_examples(self, clips: pl.DataFrame) -> None:
        self.examples = clips
        table = self.query_one("#examples", FrameTable)
        self.stop_loading("#examples")
        table.show_frame(
            clips.select("clip_id", "youtube_id", "time_start", "time_end", "tags", "url"),
            hide=("clip_id", "url"),  # kept for `o` and the frames: the row under the cursor, however sorted
            labels={"time_start": "start", "time_end": "end"},
            digits={"time_start": 1, "time_end": 1},
            keep_cursor=False,
        )
        table.border_title = f"example clips ({clips.height}; o: open the highlighted one)"
        self._show_frames()

    @on(DataTable.RowHighlighted, "#examples")
    def _show_frames(self) -> None:
        """The frames of the highlighted example (decoded in the strip's worker)."""
        self.query_one("#example-frames", FrameStrip).show_clip(
            self.query_one("#examples", FrameTable).current_row()
        )

    @on(Tabs.TabActivated, "#annotate-categories")
    def category_changed(self) -> None:
        if self._ready:
            self.reload()

    # ------------------------------------------------------------ the card

    @property
    def current(self) -> dict | None:
        return self.queue[self.index] if 0 <= self.index < len(self.queue) else None

    def _show_status(self) -> None:
        progress = self.query_one("#annotate-progress", ProgressBar)
        if self.progress_known:
            progress.update(total=max(self.total, 1), progress=self.answered)
        counts = f"{self.answered} / {self.total}" if self.progress_known else "counting…"
        self.query_one("#annotate-status", Static).update(
            Text.assemble(
                ("annotator ", "dim"),
                (self.app.annotator or "", "bold"),
                ("   category ", "dim"),
                (self.category, "bold"),
                ("   answered ", "dim"),
                (counts, "bold"),
                ("   y necessary · n not necessary · u unsure · b back · ? guidelines", "dim"),
            )
        )

    def _show_card(self) -> None:
        self._show_status()
        pair = self.current
        card = self.query_one("#card", Static)
        examples = self.query_one("#examples", FrameTable)
        if pair is None:
            examples.clear(columns=True)
            card.update(
                Text.assemble(
                    (f"All {self.category} pairs are answered. ", "bold green"),
                    "Press ] for the other category, or b to change your last answer.",
                )
            )
            self.refresh_bindings()
            return
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim")
        grid.add_column()
        grid.add_row("action", Text(pair["action"], style="bold"))
        grid.add_row(pair["category"], Text(pair["tag"], style="bold"))
        counts = (
            f"{format_cell(pair.get('n_both'))} clips together; {format_cell(pair.get('n_action'))} with the "
            "action, "
            f"{format_cell(pair.get('n_tag'))} with the {pair['category']}"
        )
        grid.add_row("co-occurrence", counts)
        if pair.get("ratio") is not None:
            grid.add_row("NCA ratio n11/n12", format_cell(pair["ratio"]))
        previous = self.answers.get((pair["action"], pair["tag"]))
        if previous:
            grid.add_row(
                "your answer",
                Text(f"{ANSWER_LABELS.get(previous, previous)} (answer again to change it)", style="yellow"),
            )
        question = Text.assemble(
            "\nIs ",
            (pair["tag"], "bold"),
            f" ({pair['category']}) necessary for ",
            (pair["action"], "bold"),
            " to be performed?   ",
            ("y", "bold reverse"),
            " yes  ",
            ("n", "bold reverse"),
            " no  ",
            ("u", "bold reverse"),
            " unsure",
        )
        card.update(_stack(grid, question))
        cached = self.example_cache.get((pair["action"], pair["tag"]))
        if cached is not None:
            self._show_examples(cached)
        else:
            self.start_loading("#examples")
            self.load_examples(pair["action"], pair["tag"])
        if self.index + 1 < len(self.queue):  # fetch the next card's examples while this one is read
            following = self.queue[self.index + 1]
            if (following["action"], following["tag"]) not in self.example_cache:
                self.prefetch_examples(following["action"], following["tag"])
        self.refresh_bindings()

    # ------------------------------------------------------------ actions

    def action_answer(self, answer: str) -> None:
        pair = self.current
        if pair is None:
            self.notify("No pair on the card.", markup=False)
            return
        key = (pair["action"], pair["tag"])
        new = key not in self.answers  # a first answer moves the progress; changing one does not
        # Saved here, on the UI thread, before anything on screen moves: when the counter changes the
        # answer is committed (durable in DuckDB's log), so a kill -9 right after loses nothing. It takes
        # a few ms: a write waits for no read (see StoreSession.cursor), only for another write.
        try:
            self._save(pair, answer)
        except Exception as exc:  # noqa: BLE001 - shown to the user; the card stays, to be answered again
            self.post_message(CoreFailed(f"saving the answer for {pair['action']} × {pair['tag']}", exc))
            return
        self.answers[key] = answer
        self.answered += int(new)
        self._answered_since_build += int(new)
        self.index += 1
        self._show_card()

    def _save(self, pair: dict, answer: str) -> None:
        from hvuaudit.annotations import record_answer

        with self.session.cursor(write=True) as cur:
            record_answer(
                cur,
                annotator=self.app.annotator or "",
                action=pair["action"],
                tag=pair["tag"],
                category=pair["category"],
                answer=answer,
                source="tui",
            )

    def action_back(self) -> None:
        if self.index > 0:
            self.index -= 1
            self._show_card()
        elif self.app.annotator:
            on_screen = [
                (p["action"], p["tag"]) for p in self.queue if (p["action"], p["tag"]) in self.answers
            ]
            self.find_previous(self.app.annotator, self.category, on_screen)

    def action_guidelines(self) -> None:
        from hvuaudit.annotations import GUIDELINES

        keys = "\nKeys in this screen:\n" + "\n".join(
            f"  {b.key_display or b.key:<3} {b.tooltip or b.description}"
            for b in bindings.ANNOTATE
            if b.description
        )
        self.app.push_screen(
            TextModal("Annotation guidelines", GUIDELINES.format(category=self.category) + keys)
        )

    def action_open_example(self) -> None:
        row = self.query_one("#examples", FrameTable).current_row()
        if row is None:
            return
        url = row["url"]
        self.app.copy_to_clipboard(url)
        if has_graphical_browser():
            self.app.open_url(url)
            self.notify(f"Opening {url}", markup=False)
        else:
            self.notify(f"No graphical browser here; copied the URL:\n{url}", markup=False)

    def action_category(self, step: int) -> None:
        tabs = self.query_one("#annotate-categories", Tabs)
        tabs.action_next_tab() if step > 0 else tabs.action_previous_tab()


def _stack(*renderables: Any) -> Table:
    grid = Table.grid()
    grid.add_column()
    for renderable in renderables:
        grid.add_row(renderable)
    return grid
