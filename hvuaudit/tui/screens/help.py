"""The help screen (``?``): every key, from :mod:`hvuaudit.tui.bindings`, and what each screen is for."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from hvuaudit.tui import bindings
from hvuaudit.tui.session import READ_ONLY_REASON


class HelpScreen(ModalScreen[None]):
    DEFAULT_CLASSES = "dialog-screen"
    BINDINGS = [*bindings.MODAL, ("q", "dismiss", "Close"), ("question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog page-dialog", id="help"):
            yield Label("hvuaudit tui: keys and screens", classes="dialog-title")
            with VerticalScroll():
                yield Static(self._screens(), classes="help-block")
                yield Static(self._read_only(), classes="help-block")
                yield Static(self._keys(), classes="help-block")
            yield Label("esc / q / ?: close", classes="dialog-keys")

    def _screens(self) -> Table:
        table = Table(title="Screens", title_justify="left", show_header=False, box=None, padding=(0, 1))
        table.add_column(style="bold")
        table.add_column()
        table.add_column()
        for number, (_mode, label, about) in enumerate(bindings.SCREENS, start=1):
            table.add_row(str(number), label, about)
        return table

    def _keys(self) -> Table:
        table = Table(title="Keys", title_justify="left", show_header=True, box=None, padding=(0, 1))
        table.add_column("where", style="dim")
        table.add_column("key", style="bold")
        table.add_column("does")
        sections = [name for name, _ in bindings.HELP_SECTIONS]
        sections += [name for name, _, _ in bindings.EXTRA_HELP if name not in sections]
        keys = dict(bindings.HELP_SECTIONS)
        for section in dict.fromkeys(sections):
            shown: dict[str, str] = {}  # action -> keys, so that f1 and ? make one row
            for binding in keys.get(section, []):
                if binding.description:
                    key = self._key(binding)
                    shown[binding.action] = (
                        f"{shown[binding.action]} / {key}" if binding.action in shown else key
                    )
            described = {b.action: b.tooltip or b.description for b in keys.get(section, []) if b.description}
            rows = [(key, described[action]) for action, key in shown.items()]
            rows += [(key, does) for name, key, does in bindings.EXTRA_HELP if name == section]
            for index, (key, does) in enumerate(rows):
                table.add_row(section if index == 0 else "", key, does)
        return table

    def _key(self, binding) -> str:
        if binding.key_display:
            return binding.key_display
        return self.app.get_key_display(binding)

    def _read_only(self) -> Text:
        text = Text("Read-only mode\n", style="bold")
        text.append(
            "hvuaudit tui --read-only opens the store read-only, to browse a store someone else owns "
            "(or that another hvuaudit process is writing). Annotation and split export are then disabled: "
            f"{READ_ONLY_REASON}. Without --read-only the TUI holds DuckDB's write lock while it runs, "
            "so other hvuaudit commands cannot open the same store until you quit."
        )
        return text
