"""A boxed message that says what is missing and which command fixes it."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class Notice(Static):
    """Hidden until :meth:`say` is called; ``clear`` hides it again."""

    DEFAULT_CLASSES = "hidden"

    def say(self, message: str, hint: str | None = None) -> None:
        text = Text(message, style="bold")
        if hint:
            text.append("\n\n")
            text.append(hint)
        self.update(text)
        self.remove_class("hidden")

    def clear(self) -> None:
        self.update("")
        self.add_class("hidden")
