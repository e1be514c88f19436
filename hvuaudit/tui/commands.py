"""The command palette's own commands (ctrl+p): jump to any tag, and run any key of the screen.

:class:`TagCommands` finds every tag of the store as you type: an action opens in the co-occurrence
browser, any other tag (a scene, an object, ...) opens its reverse view, the actions seen with it.
The tags are read once per palette, in a worker thread (:func:`hvuaudit.cooccurrence.list_tags`).
:class:`ScreenActionCommands` lists what the keys of the screen under the palette do, by their footer
names, and runs the one chosen as its key would (a key the screen disables, such as Annotate's in
read-only mode, is left out). Imports textual and the core; never torch or the trainer.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any

import polars as pl
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from hvuaudit.tui import bindings

if TYPE_CHECKING:
    from hvuaudit.tui.app import HvuauditApp

# The keys hvuaudit defines (hvuaudit/tui/bindings.py): Textual's own (cursor moves, scrolling) are left out.
OUR_ACTIONS = frozenset(
    binding.action
    for value in vars(bindings).values()
    if isinstance(value, list)
    for binding in value
    if isinstance(binding, Binding)
)
# The palette, screen switches and help have their own system commands already.
SKIPPED_ACTIONS = {
    "command_palette",
    "help",
    "quit",
    *(f"switch_mode('{mode}')" for mode, *_ in bindings.SCREENS),
}


class TagCommands(Provider):
    """Jump to a tag: ``surfing`` opens the action, ``beach`` the actions seen with that scene."""

    async def startup(self) -> None:
        app: HvuauditApp = self.app  # type: ignore[assignment]
        # tags are only searched, never listed before a letter is typed: there are thousands
        self.tags: pl.DataFrame = pl.DataFrame(schema={"tag": pl.String, "category": pl.String})
        try:
            self.tags = await asyncio.to_thread(self._read_tags, app)
        except Exception as exc:  # noqa: BLE001 - no store: the palette still runs every other command
            app.log.warning(f"the palette cannot list tags: {exc!r}")

    @staticmethod
    def _read_tags(app: HvuauditApp) -> pl.DataFrame:
        from hvuaudit.cooccurrence import list_tags

        with app.session.cursor() as cur:
            return list_tags(cur)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for tag, category in self.tags.select("tag", "category").iter_rows():
            text = f"{tag} ({category})"
            score = matcher.match(text)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(text),
                    functools.partial(self._open, tag, category),
                    text=text,
                    help="open the action in the browser"
                    if category == "action"
                    else f"the actions seen with this {category}",
                )

    async def _open(self, tag: str, category: str) -> None:
        app: HvuauditApp = self.app  # type: ignore[assignment]
        if category == "action":
            await app.show_action(tag)
            return
        from hvuaudit.tui.screens.clips import ReverseScreen

        await app.switch_mode("browser")

        async def chosen(action: str | None) -> None:
            if action:
                await app.show_action(action)

        app.push_screen(ReverseScreen(tag, category), chosen)


class ScreenActionCommands(Provider):
    """Every key of the screen under the palette, by name: ``Threshold``, ``tasks.json``, ``Export``..."""

    def _commands(self) -> list[tuple[str, str, Any]]:
        found = []
        seen: set[str] = set()
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if not binding.description or not active.enabled or binding.action in SKIPPED_ACTIONS:
                continue
            if binding.action not in OUR_ACTIONS:
                continue
            if binding.action in seen:
                continue
            seen.add(binding.action)
            text = f"{binding.description} ({binding.key_display or key})"
            run = functools.partial(self.app.run_action, binding.action, active.node)
            found.append((text, binding.tooltip or binding.description, run))
        return found

    async def discover(self) -> Hits:
        for text, about, run in self._commands():
            yield DiscoveryHit(text, run, help=about)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, about, run in self._commands():
            score = matcher.match(f"{text} {about}")
            if score > 0:
                yield Hit(score, matcher.highlight(text), run, text=text, help=about)
