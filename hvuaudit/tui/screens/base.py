"""What every store-backed screen shares: the session, error reporting from workers, freshness."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.worker import get_current_worker

from hvuaudit.errors import StoreError
from hvuaudit.tui.messages import CoreFailed
from hvuaudit.tui.session import StoreSession
from hvuaudit.tui.widgets.notice import Notice

if TYPE_CHECKING:
    from hvuaudit.tui.app import HvuauditApp

F = TypeVar("F", bound=Callable[..., Any])
ResultT = TypeVar("ResultT")


def reports_errors(doing: str) -> Callable[[F], F]:
    """Wrap a worker body so that any exception reaches the user as a message, never the terminal.

    Put it under ``@work(...)``: the worker then never fails, and the screen gets a
    :class:`CoreFailed` that bubbles to the app (notification or modal).
    """

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def run(self: CoreScreen, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every failure is shown to the user
                self.post_message(CoreFailed(doing, exc))
                return None

        return run  # type: ignore[return-value]

    return decorate


LOADING_DELAY = 0.25  # seconds of work before a spinner appears (quick updates must not flicker)


class CoreScreen(Screen[ResultT]):
    """A screen whose workers read (or write) the store through the app's session."""

    app: HvuauditApp

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loading_timers: dict[str, Timer] = {}
        self._focus_before_loading: Widget | None = None

    def start_loading(self, selector: str) -> None:
        """Show a loading indicator over ``selector`` if the work takes longer than a moment."""
        self.stop_loading(selector)

        def show() -> None:
            self._loading_timers.pop(selector, None)
            if self.focused is not None:
                self._focus_before_loading = self.focused
            for widget in self.query(selector):
                widget.loading = True

        self._loading_timers[selector] = self.set_timer(LOADING_DELAY, show)

    def stop_loading(self, selector: str) -> None:
        timer = self._loading_timers.pop(selector, None)
        if timer is not None:
            timer.stop()
        for widget in self.query(selector):
            if widget.loading:
                widget.loading = False
                self._restore_focus()

    def _restore_focus(self) -> None:
        """A loading indicator takes the focus from what it covers; give it back once it is gone."""
        if self.focused is not None:
            return
        before, self._focus_before_loading = self._focus_before_loading, None
        if before is not None and before.is_attached and before.focusable:
            self.set_focus(before)
        elif self.AUTO_FOCUS and (targets := self.query(self.AUTO_FOCUS)):
            self.set_focus(targets.first())

    @property
    def session(self) -> StoreSession:
        return self.app.session

    def on_core_failed(self, event: CoreFailed) -> None:
        """Stop the spinners; a store problem (empty, missing, locked) is also said in the screen's Notice.

        The event then bubbles to the app, which notifies (or, for a store that
        cannot be opened, shows one modal); an empty store is only said in place.
        """
        for selector in list(self._loading_timers):
            self.stop_loading(selector)
        for widget in self.query("*"):
            if widget.loading:
                widget.loading = False
        error = event.error
        if not isinstance(error, StoreError):
            return
        notices = self.query(Notice)
        if notices:
            notices.first().say(f"Cannot show this screen: {error.message}", error.hint)
            if error is not self.session.open_error:
                event.stop()

    def post_fresh(self, message: Message) -> None:
        """Post from a worker unless a newer worker of the same group replaced it."""
        if not get_current_worker().is_cancelled:
            self.post_message(message)
