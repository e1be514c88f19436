"""A strip of frames from the highlighted clip, under the clips table and the Annotate screen's examples.

The frames come from :func:`hvuaudit.videos.frames.clip_strip` (the same as ``hvuaudit clips sheet``),
decoded in a thread worker so that moving through the table never waits: a clip is decoded once it has
been highlighted for :data:`DECODE_DELAY`, a newer clip stops the decode under way at its next frame,
and a stale strip is never shown. The picture is drawn with textual-image: sixel or
the kitty protocol when the terminal has one, coloured half blocks otherwise (and always in tests and
under ``--serve``). Without a file, without PyAV or without textual-image, the strip is one line saying
so. Never imports torch or the trainer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static
from textual.worker import get_current_worker

from hvuaudit.videos.frames import EXTRA_HINT, NoVideo, clip_strip, prepare_lookup

if TYPE_CHECKING:
    from PIL.Image import Image as Picture

    from hvuaudit.tui.session import StoreSession

try:  # textual-image asks the terminal its cell size when imported: before the app starts, so here
    from textual_image.renderable import Image as BestRenderable
    from textual_image.renderable.unicode import Image as UnicodeRenderable
    from textual_image.widget import HalfcellImage
    from textual_image.widget import Image as BestImage

    # the grey characters that are its fallback away from a terminal lose every colour: half blocks keep them
    ImageWidget: Any = HalfcellImage if BestRenderable is UnicodeRenderable else BestImage
except ImportError:  # the [frames] extra is not installed
    ImageWidget = None

FRAMES_SHOWN = 6
STRIP_ROWS = 6  # terminal rows the picture takes
# A clip must stay highlighted this long before its frames are decoded: holding a key down through the
# table starts no decode for the clips passed over (and a decode under way stops at its next frame).
DECODE_DELAY = 0.15


class FrameStrip(Vertical):
    """Call :meth:`show_clip` with a clip row (clip_id, youtube_id, time_start, time_end, tags)."""

    DEFAULT_CSS = """
    FrameStrip { height: auto; }
    FrameStrip > .strip-caption { height: 1; color: $text-muted; }
    FrameStrip > .strip-picture { height: 6; width: auto; }
    """  # 6 rows: STRIP_ROWS

    class Decoded(Message):
        def __init__(self, clip_id: str, strip: Picture | NoVideo) -> None:
            super().__init__()
            self.clip_id = clip_id
            self.strip = strip

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.clip_id: str | None = None
        self.shown: Picture | NoVideo | None = None  # what the strip shows now (for tests and the caption)
        self._pending: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static("", classes="strip-caption")
        if ImageWidget is not None:
            picture = ImageWidget(classes="strip-picture")
            picture.display = False
            yield picture

    def show_clip(self, clip: dict[str, Any] | None) -> None:
        """Decode the frames of ``clip`` (None: clear the strip); the clip already shown is kept."""
        if clip is not None and str(clip["clip_id"]) == self.clip_id:
            return
        self.clip_id = None if clip is None else str(clip["clip_id"])
        self._picture_shown(None)
        if clip is None:
            self._caption("")
            return
        if ImageWidget is None:
            self._show(NoVideo(f"no frames: textual-image is not installed; {EXTRA_HINT}"))
            return
        self._caption(f"decoding the frames of {self.clip_id} …")
        if self._pending is not None:
            self._pending.stop()
        row, session = dict(clip), self.app.session  # type: ignore[attr-defined]  # HvuauditApp.session
        self._pending = self.set_timer(DECODE_DELAY, lambda: self.decode(row, session))

    @work(thread=True, exclusive=True, group="frame-strip")
    def decode(self, clip: dict[str, Any], session: StoreSession) -> None:
        if str(clip["clip_id"]) != self.clip_id:
            return  # another clip was highlighted meanwhile
        source = session.videos
        worker = get_current_worker()  # a newer decode cancels this one: it stops at its next frame

        def cancelled() -> bool:
            return worker.is_cancelled

        try:
            if source.folder is not None:
                strip = clip_strip(None, clip, source, frames=FRAMES_SHOWN, cancelled=cancelled)
            else:
                with session.cursor() as cur:
                    reason = prepare_lookup(cur, source)
                    strip = (
                        NoVideo(reason)
                        if reason
                        else clip_strip(cur, clip, source, frames=FRAMES_SHOWN, cancelled=cancelled)
                    )
        except Exception as exc:  # noqa: BLE001 - a strip never breaks the screen: it says what went wrong
            strip = NoVideo(f"no video: {type(exc).__name__}: {exc}")
        if not worker.is_cancelled:
            self.post_message(self.Decoded(str(clip["clip_id"]), strip))

    def on_frame_strip_decoded(self, event: Decoded) -> None:
        event.stop()
        if event.clip_id == self.clip_id:  # a clip highlighted since then has its own worker
            self._show(event.strip)

    def _show(self, strip: Picture | NoVideo) -> None:
        self.shown = strip
        if isinstance(strip, NoVideo):
            self._caption(strip.reason)
            self._picture_shown(None)
            return
        self._caption(f"{FRAMES_SHOWN} frames of {self.clip_id}, spread over the clip")
        self._picture_shown(strip)

    def _caption(self, text: str) -> None:
        self.query_one(".strip-caption", Static).update(Text(text))  # a path may hold [brackets]

    def _picture_shown(self, strip: Picture | None) -> None:
        if ImageWidget is None:
            return
        picture = self.query_one(".strip-picture")
        if strip is None:
            picture.display = False
            return
        picture.image = strip  # type: ignore[attr-defined]
        picture.display = True
