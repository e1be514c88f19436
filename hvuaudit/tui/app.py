"""The hvuaudit Textual app and its one factory, :func:`make_app` (used by the CLI and the tests).

Five screens run as app *modes* (keys 1–5, or the command palette): Overview,
Co-occurrence browser, NCA, Annotate and Splits. The app owns the store
session (one DuckDB connection, a cursor per worker), the NCA threshold shared
by the browser and the NCA screen, and the annotator's name. Errors from
workers arrive as :class:`~hvuaudit.tui.messages.CoreFailed` and become a
notification, or a modal when the store itself cannot be opened; nothing is
printed over the screen.
"""

from __future__ import annotations

import functools
import gc
import importlib
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from textual import events, on
from textual.app import App, SystemCommand
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Input, TextArea

from hvuaudit.categories import CLIP_MODES, DEFAULT_CLIPS, DEFAULT_THRESHOLD
from hvuaudit.errors import HvuauditError, InputError
from hvuaudit.tui import bindings
from hvuaudit.tui.commands import ScreenActionCommands, TagCommands
from hvuaudit.tui.messages import CoreFailed
from hvuaudit.tui.screens.annotate import AnnotateScreen
from hvuaudit.tui.screens.browser import BrowserScreen
from hvuaudit.tui.screens.help import HelpScreen
from hvuaudit.tui.screens.modals import ErrorModal
from hvuaudit.tui.screens.nca import NcaScreen
from hvuaudit.tui.screens.overview import OverviewScreen
from hvuaudit.tui.screens.splits import SplitsScreen
from hvuaudit.tui.session import StoreSession
from hvuaudit.videos.frames import VideoSource

GC_IDLE_SECONDS = 2.0  # a full garbage collection waits until no key or mouse event came for this long


# Imported in a worker once the overview is up: the NCA statistics and their tests (issue 21: the first
# NCA open of the 31k validation store took over a second, half of it importing scipy.stats).
PRELOADED_MODULES = (
    "scipy.stats",
    "hvuaudit.nca",
    "hvuaudit.roles",
    "hvuaudit.cooccurrence",
    "hvuaudit.splits",
)
PRELOAD_DELAY = 0.5  # seconds after the start: the overview's own queries go first


class HvuauditApp(App[None]):
    """Explore HVU's biases, decide with NCA, annotate necessity, build splits."""

    CSS_PATH = "app.tcss"
    TITLE = "hvuaudit"
    BINDINGS = [*bindings.APP]
    # ctrl+p: the screens and system commands, any tag of the store, and every key of the screen
    COMMANDS = App.COMMANDS | {TagCommands, ScreenActionCommands}
    MODES = {
        "overview": OverviewScreen,
        "browser": BrowserScreen,
        "nca": NcaScreen,
        "annotate": AnnotateScreen,
        "splits": SplitsScreen,
    }

    threshold: reactive[float] = reactive(DEFAULT_THRESHOLD)
    """The NCA threshold on n11/n12, shared by the NCA screen and the browser's verdicts."""
    clips: reactive[str] = reactive(DEFAULT_CLIPS)
    """The NCA clip mode (labelled or all), shared like the threshold; ``l`` switches it."""

    def __init__(self, session: StoreSession) -> None:
        super().__init__()
        self.session = session
        self.annotator: str | None = None
        self._store_error_shown = False
        self._gc_thresholds: tuple[int, int, int] | None = (
            None  # the interpreter's, while the app changes them
        )
        self._last_input = time.monotonic()
        self.preloaded = False  # PRELOADED_MODULES imported

    def on_mount(self) -> None:
        self.call_after_refresh(self._collect_garbage_when_idle)  # after the first frame: it costs ~30 ms
        mode = "read-only" if self.session.read_only else "read-write"
        self.sub_title = f"{mode} · {self.session.path}"
        self.switch_mode("overview")
        self.set_timer(PRELOAD_DELAY, self._preload)

    def _preload(self) -> None:
        """Import what the other screens need while the user reads the overview (scipy.stats alone takes
        half a second), so that the first NCA open does not wait for it."""
        self.run_worker(
            self._import_preloaded, name="preload", thread=True, group="preload", exit_on_error=False
        )

    def _import_preloaded(self) -> None:
        for name in PRELOADED_MODULES:
            importlib.import_module(name)
        self.preloaded = True

    def on_unmount(self) -> None:
        try:
            if self._gc_thresholds is not None:
                gc.set_threshold(*self._gc_thresholds)
                gc.unfreeze()
                self._gc_thresholds = None
        finally:
            self.session.close()

    # ------------------------------------------------------------ garbage collection

    def _collect_garbage_when_idle(self) -> None:
        """Move Python's full garbage collections to moments when no one is typing.

        Textual keeps ~100k small objects per screen (rendered lines and their caches), and a
        full collection then takes 130-170 ms; it came every few seconds of use and stalled the
        selection under way, and the worker threads with it (through the GIL). Automatic
        collections now stop at generation 1, and a full one runs once the user has been idle
        for GC_IDLE_SECONDS. What exists at start-up (the imported libraries) is frozen out of
        them for good. ``on_unmount`` restores the interpreter's settings.

        Left alone on Python 3.14 and later, whose collector is incremental (its pauses are short
        and its thresholds mean something else), and where the host has frozen objects itself
        (``on_unmount`` could not tell its frozen objects from ours).
        """
        if sys.version_info >= (3, 14) or gc.get_freeze_count():
            return
        self._gc_thresholds = gc.get_threshold()
        gc.collect()  # frozen garbage would never be freed
        gc.freeze()
        gc.set_threshold(self._gc_thresholds[0], self._gc_thresholds[1], 1_000_000)
        self._collections_at_last_full = gc.get_stats()[1]["collections"]
        self.set_interval(GC_IDLE_SECONDS / 2, self._full_collection_if_idle)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.InputEvent):
            self._last_input = time.monotonic()
        await super().on_event(event)

    def _full_collection_if_idle(self) -> None:
        idle = time.monotonic() - self._last_input >= GC_IDLE_SECONDS
        # only when younger collections have passed objects on since the last full one
        pending = gc.get_stats()[1]["collections"] > self._collections_at_last_full
        if idle and pending:
            gc.collect()
            self._collections_at_last_full = gc.get_stats()[1]["collections"]

    # ------------------------------------------------------------ navigation

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "switch_mode" and isinstance(self.focused, Input | TextArea):
            return False  # a digit typed into a field is text, not a screen key
        return True

    async def action_switch_mode(self, mode: str) -> None:
        """Switch screens and wait until the new one is mounted.

        Textual's own action does not wait: the keys typed right after a screen key (``3 t 0.35``)
        then reach a screen that has no widgets yet, and are lost or act as global keys. Awaited
        here, the app handles the next key only once the new screen can take it.
        """
        await self.switch_mode(mode)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_clips(self) -> None:
        """``l``: count only the clips labelled for a category, or every clip (docs/nca.md)."""
        self.clips = CLIP_MODES[(CLIP_MODES.index(self.clips) + 1) % len(CLIP_MODES)]
        self.notify(f"NCA now counts {self.clips} clips", timeout=2)

    def action_leave_field(self) -> None:
        """esc in a text field: drop the focus, so that single-letter keys act again."""
        if isinstance(self.focused, Input | TextArea):
            self.screen.set_focus(None)

    async def show_action(self, action: str) -> None:
        """Open ``action`` in the co-occurrence browser (from the NCA table or the reverse view)."""
        await self.switch_mode("browser")
        browser = self.screen
        if isinstance(browser, BrowserScreen):
            browser.open_action(action)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for number, (mode, label, about) in enumerate(bindings.SCREENS, start=1):
            yield SystemCommand(f"Go to {label} ({number})", about, functools.partial(self.switch_mode, mode))
        yield SystemCommand(
            "Help (?)", "Every key and screen, and what read-only mode disables", self.action_help
        )
        yield SystemCommand(
            "Reopen the store",
            f"Try again to open {self.session.path} (after another process released it)",
            self.action_reopen_store,
        )
        yield from super().get_system_commands(screen)

    def action_reopen_store(self) -> None:
        self.session.close()
        self.session.reset()
        self._store_error_shown = False
        reload = getattr(self.screen, "reload", None)
        if callable(reload):
            reload()
        self.notify(f"reopening {self.session.path}", timeout=3)

    # ------------------------------------------------------------ errors

    @on(CoreFailed)
    def show_failure(self, event: CoreFailed) -> None:
        error = event.error
        if isinstance(error, HvuauditError):
            if error is self.session.open_error:
                if not self._store_error_shown:  # every screen hits it: say it once, as a modal
                    self._store_error_shown = True
                    self.push_screen(ErrorModal("The store cannot be opened", error.message, error.hint))
                return
            text = error.message + (f"\nWhat to do: {error.hint}" if error.hint else "")
            self.notify(text, title=f"Error while {event.doing}", severity="error", markup=False, timeout=12)
            return
        self.log.error(f"{event.doing}: {error!r}")
        self.notify(
            f"{type(error).__name__}: {error}\nThis is a bug in hvuaudit: please report it with the steps "
            "that led here.",
            title=f"Unexpected error while {event.doing}",
            severity="error",
            markup=False,
            timeout=20,
        )


def make_app(db: Path | None, *, read_only: bool, videos: VideoSource | None = None) -> HvuauditApp:
    """The one way to build the app: ``hvuaudit tui`` and every test call this.

    ``db`` is the store (``None``: ``$HVUAUDIT_DB``, else ``./hvu.duckdb``); ``videos`` where the frame
    strips find clip files (default: the store's scan). Nothing is opened here; the first screen opens
    the store in a worker after the first paint.
    """
    return HvuauditApp(StoreSession(db, read_only=read_only, videos=videos))


WEB_DRIVER_ENV = "TEXTUAL_DRIVER"  # set by textual-serve for the apps it runs


def run(db: Path | None, *, read_only: bool, videos: VideoSource | None = None) -> None:
    """Run the app in this terminal (what ``hvuaudit tui`` does)."""
    # textual-serve (`hvuaudit tui --serve`) runs the app with its output to a pipe and names the web
    # driver in TEXTUAL_DRIVER; anything else without a terminal would draw into a file
    if not sys.stdout.isatty() and not os.environ.get(WEB_DRIVER_ENV):
        raise InputError(
            "hvuaudit tui needs a terminal",
            hint="run it in a terminal, not through a pipe, or in a browser: hvuaudit tui --serve",
        )
    make_app(db, read_only=read_only, videos=videos).run()
