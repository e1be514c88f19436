"""What every store-backed screen shares: the session, error reporting from workers, freshness."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from textual.message import Message
from textual.screen import Screen
from textual.worker import get_current_worker

from hvuaudit.tui.messages import CoreFailed
from hvuaudit.tui.session import StoreSession

if TYPE_CHECKING:
    from hvuaudit.tui.app import HvuauditApp

F = TypeVar("F", bound=Callable[..., Any])


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


class CoreScreen(Screen):
    """A screen whose workers read (or write) the store through the app's session."""

    app: HvuauditApp  # type: ignore[assignment]

    @property
    def session(self) -> StoreSession:
        return self.app.session

    def post_fresh(self, message: Message) -> None:
        """Post from a worker unless a newer worker of the same group replaced it."""
        if not get_current_worker().is_cancelled:
            self.post_message(message)
