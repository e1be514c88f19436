"""Small typed dialogs: an error that says what to do, a text prompt, a yes/no question, a text page."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from hvuaudit.tui import bindings


class ErrorModal(ModalScreen[None]):
    """An error the user has to act on (the store cannot be opened, ...): message, then what to do."""

    DEFAULT_CLASSES = "dialog-screen"

    BINDINGS = [*bindings.MODAL, ("enter", "dismiss", "Close")]

    def __init__(self, title: str, message: str, hint: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog error-dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(Text(self.message), classes="dialog-body")
            if self.hint:
                yield Static(Text(f"What to do: {self.hint}"), classes="dialog-hint")
            yield Label("enter / esc: close", classes="dialog-keys")

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)


class PromptModal(ModalScreen[str | None]):
    """Ask for one line of text; ``validate`` returns an error message or None."""

    DEFAULT_CLASSES = "dialog-screen"

    BINDINGS = [*bindings.MODAL]

    def __init__(
        self,
        title: str,
        *,
        value: str = "",
        placeholder: str = "",
        note: str = "",
        validate: Callable[[str], str | None] | None = None,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.placeholder = placeholder
        self.note = note
        self.validate = validate or (lambda text: None if text.strip() else "please type something")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            if self.note:
                yield Static(Text(self.note), classes="dialog-body")
            yield Input(value=self.value, placeholder=self.placeholder, id="prompt-input")
            yield Static("", id="prompt-error", classes="dialog-error")
            yield Label("enter: ok   esc: cancel", classes="dialog-keys")

    @on(Input.Submitted, "#prompt-input")
    def submitted(self, event: Input.Submitted) -> None:
        problem = self.validate(event.value)
        if problem:
            self.query_one("#prompt-error", Static).update(Text(problem))
            return
        self.dismiss(event.value.strip())

    def action_dismiss(self, result: str | None = None) -> None:  # type: ignore[override]
        self.dismiss(None)


class ConfirmModal(ModalScreen[bool]):
    """A yes/no question; ``y``/``n`` answer it too."""

    DEFAULT_CLASSES = "dialog-screen"

    BINDINGS = [*bindings.MODAL, ("y", "answer(True)", "Yes"), ("n", "answer(False)", "No")]

    def __init__(self, title: str, question: str, *, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.yes = yes
        self.no = no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(Text(self.question), classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="warning")
                yield Button(f"{self.no} (n)", id="no")

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

    def action_dismiss(self, result: bool | None = None) -> None:  # type: ignore[override]
        self.dismiss(False)


class TextModal(ModalScreen[None]):
    """A page of plain text (guidelines): scroll it, close it with esc, q or ?."""

    DEFAULT_CLASSES = "dialog-screen"

    BINDINGS = [*bindings.MODAL, ("q", "dismiss", "Close"), ("question_mark", "dismiss", "Close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog page-dialog"):
            yield Label(self.title_text, classes="dialog-title")
            with VerticalScroll():
                yield Static(Text(self.text), id="page-text")
            yield Label("esc / q: close", classes="dialog-keys")

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)
