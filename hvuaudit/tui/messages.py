"""Messages that cross screens: a core call failed."""

from __future__ import annotations

from textual.message import Message


class CoreFailed(Message):
    """A core function raised; the app turns this into a notification or a modal.

    Posted by workers on their screen, so the screen may show it in place
    (``Notice``) before it bubbles up to the app.
    """

    def __init__(self, doing: str, error: BaseException) -> None:
        super().__init__()
        self.doing = doing
        self.error = error
