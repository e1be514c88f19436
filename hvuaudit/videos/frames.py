"""Frames of a clip: the TUI's frame strip and ``hvuaudit clips sheet``.

Where it sits: after ``videos scan``, which records each clip's file. :func:`locate_clip` finds the
file of one clip, either the scan's usable file (``queries/internal/usable_videos.sql``, the same
choice splits make) or a folder given with ``--videos`` and its naming scheme; :func:`read_strip`
decodes a few frames spread evenly over the clip's seconds with PyAV and lays them side by side;
:func:`contact_sheet` stacks the strips of several clips into one picture. A clip without a usable file
gives a :class:`NoVideo` that says why. Nothing here blocks on a missing file or breaks on a broken one.

Imports PyAV (the ``[frames]`` or ``[train]`` extra) and Pillow only inside the functions that decode
or draw; never imports textual, torch or the trainer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from hvuaudit.errors import InputError
from hvuaudit.store import run_query
from hvuaudit.videos.scan import DURATION_TOLERANCE, VIDEO_SUFFIXES, has_scans, refresh_usable
from hvucontracts.splitfolder import (
    CLIP_FIELDS,
    NAME_TEMPLATES,
    check_template,
    clip_filename,
    template_field_names,
)

if TYPE_CHECKING:
    from PIL.Image import Image

FRAMES = 6  # frames per strip
FRAME_HEIGHT = 96  # pixels: enough to tell a beach from a gym, small enough to decode in a blink
GAP = 4  # pixels between two frames of a strip, and between two strips of a sheet
BACKGROUND = (24, 24, 24)
TEXT_COLOUR = (230, 230, 230)
NO_VIDEO_COLOUR = (160, 160, 160)
EXTRA_HINT = "install PyAV for frames: pip install 'hvuaudit[frames]'"


@dataclass(frozen=True)
class VideoSource:
    """Where clip files are looked for: the store's scan, or ``folder`` under ``template``.

    ``template`` None with a folder: every preset (mmaction, downloader, raw) and the whole video named
    by its YouTube id, with any video suffix.
    """

    folder: Path | None = None
    template: str | None = None

    def __post_init__(self) -> None:
        if self.template is not None:
            check_template(self.template)

    def describe(self) -> str:
        if self.folder is None:
            return "the store's scanned videos"
        return f"{self.folder} ({'name template ' + self.template if self.template else 'any known name'})"


@dataclass(frozen=True)
class ClipFile:
    """A clip's video file; ``window`` = (start, end) seconds when the file is the whole YouTube video."""

    path: Path
    window: tuple[float, float] | None


@dataclass(frozen=True)
class NoVideo:
    """Why a clip has no frames to show (shown in place of the strip)."""

    reason: str


class FrameError(Exception):
    """A file that PyAV cannot decode a frame from (broken, empty, not a video)."""


# The names a --videos folder is searched for when no template is given, and whether each names the whole
# YouTube video (cut at the clip's times) or the clip itself: the schemes of `videos scan` (docs/videos.md).
FOLDER_SCHEMES = (
    (NAME_TEMPLATES["mmaction"], False),
    (NAME_TEMPLATES["downloader"], False),
    ("{youtube_id}_{start_s:06d}_{end_s:06d}.mp4", True),  # HVU-Downloader's download before trimming
    (NAME_TEMPLATES["raw"], False),
    ("{youtube_id}.mp4", True),
)


def _folder_names(clip: dict[str, Any], template: str | None) -> Iterable[tuple[str, bool]]:
    """(file name, is it the whole video) candidates of a clip under ``template`` or every known name."""
    schemes = [(template, not (template_field_names(template) & CLIP_FIELDS))] if template else FOLDER_SCHEMES
    actions = [t for t in str(clip.get("tags") or "").split("|") if t] or [""]
    for name_template, whole in schemes:
        for action in actions if "action" in template_field_names(name_template) else [""]:
            name = clip_filename({**clip, "action": action}, name_template)
            stem, suffix = Path(name).stem, Path(name).suffix
            # download tools keep the container yt-dlp chose: try every video suffix for a preset's .mp4
            suffixes = [suffix] if template else [suffix, *sorted(VIDEO_SUFFIXES - {suffix})]
            for other in suffixes:
                yield str(Path(name).with_name(stem + other)), whole


def locate_clip(
    con: duckdb.DuckDBPyConnection | None, clip: dict[str, Any], source: VideoSource
) -> ClipFile | NoVideo:
    """The file of ``clip`` (a row with clip_id, youtube_id, time_start, time_end, and tags for
    ``{action}``), or why there is none. ``con`` is needed for the scan only; it must have run
    :func:`prepare_lookup`."""
    window = (float(clip["time_start"]), float(clip["time_end"]))
    if source.folder is not None:
        try:
            for name, whole in _folder_names(clip, source.template):
                path = source.folder / name
                if path.is_file():
                    return ClipFile(path, window if whole else None)
        except OSError as exc:  # a folder this user may not list or enter
            return NoVideo(f"no video: cannot read {source.folder} ({exc.strerror or exc})")
        return NoVideo(f"no video: no file for {clip['clip_id']} in {source.describe()}")
    if con is None:
        return NoVideo("no video: no store")
    found = run_query(con, "internal/clip_video_file", clip_id=clip["clip_id"])
    if not found.height:
        return NoVideo(f"no video: {clip['clip_id']} has no usable file among the scanned videos")
    row = found.row(0, named=True)
    return ClipFile(Path(row["root"]) / row["path"], window if row["whole_video"] else None)


def prepare_lookup(con: duckdb.DuckDBPyConnection, source: VideoSource) -> str | None:
    """Make ``con`` ready for :func:`locate_clip` with ``source``; why there can be no video, or None."""
    if source.folder is not None:
        return None if source.folder.is_dir() else f"no video: --videos {source.folder} is not a folder"
    if not has_scans(con):
        return "no video: the store has no scanned videos (hvuaudit videos scan DIR, or tui --videos DIR)"
    refresh_usable(con)  # temp tables: per cursor, so every worker's cursor builds its own
    return None


def _av() -> Any:
    try:
        import av
    except ModuleNotFoundError as exc:
        raise InputError("frames need PyAV, which is not installed", hint=EXTRA_HINT) from exc
    return av


def read_strip(
    clip_file: ClipFile,
    *,
    frames: int = FRAMES,
    height: int = FRAME_HEIGHT,
    cancelled: Callable[[], bool] = lambda: False,
) -> Image:
    """``frames`` frames spread evenly over the clip, ``height`` pixels high, side by side.

    Each frame is the first decoded at or after the middle of its share of the clip's seconds. A whole
    video is cut at the clip's window; a trimmed clip is read from its start to its end.

    Raises FrameError (naming the file) when not a single frame decodes, when a whole video ends before
    the clip does (its frames would all be its last one), or when ``cancelled()`` turns true between two
    frames (the TUI moved on to another clip).
    """
    av = _av()
    pictures: list[Image] = []
    try:
        with av.open(str(clip_file.path)) as container:
            if not container.streams.video:
                raise FrameError(f"{clip_file.path}: no video stream (an audio-only or truncated file?)")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            duration = float(container.duration) / 1e6 if container.duration else None
            if clip_file.window is not None:
                start, end = clip_file.window
                if duration is not None and duration < end - DURATION_TOLERANCE:
                    raise FrameError(
                        f"{clip_file.path}: the video ends at {duration:.1f} s, before the clip ends "
                        f"({end:.1f} s)"
                    )
            else:
                start, end = 0.0, duration or 0.0
            span = max(end - start, 0.0)
            times = [start + (k + 0.5) * span / frames for k in range(frames)]
            for at in times:
                if cancelled():
                    raise FrameError(f"{clip_file.path}: decoding stopped")
                frame = _frame_at(container, stream, at)
                if frame is None:
                    continue
                picture = frame.to_image()
                width = max(1, round(picture.width * height / max(picture.height, 1)))
                pictures.append(picture.resize((width, height)))
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise FrameError(f"{clip_file.path}: cannot be decoded ({exc})") from exc
    if not pictures:
        raise FrameError(f"{clip_file.path}: no frame could be decoded")
    return _side_by_side(pictures, height)


def _frame_at(container: Any, stream: Any, at: float) -> Any:
    """The first frame at or after ``at`` seconds (the last one before it when the file ends first)."""
    if stream.time_base is not None:
        container.seek(max(0, int(at / stream.time_base)), stream=stream, backward=True)
    last = None
    for frame in container.decode(stream):
        last = frame
        if frame.time is None or frame.time >= at - 1e-3:
            return frame
    return last


def _side_by_side(pictures: Sequence[Image], height: int) -> Image:
    from PIL import Image

    width = sum(p.width for p in pictures) + GAP * (len(pictures) - 1)
    strip = Image.new("RGB", (width, height), BACKGROUND)
    x = 0
    for picture in pictures:
        strip.paste(picture, (x, 0))
        x += picture.width + GAP
    return strip


def clip_strip(
    con: duckdb.DuckDBPyConnection | None,
    clip: dict[str, Any],
    source: VideoSource,
    *,
    frames: int = FRAMES,
    height: int = FRAME_HEIGHT,
    cancelled: Callable[[], bool] = lambda: False,
) -> Image | NoVideo:
    """The frame strip of one clip, or why there is none (no file, a broken file, no PyAV)."""
    found = locate_clip(con, clip, source)
    if isinstance(found, NoVideo):
        return found
    try:
        return read_strip(found, frames=frames, height=height, cancelled=cancelled)
    except FrameError as exc:
        return NoVideo(f"no video: {exc}")
    except InputError as exc:  # PyAV missing
        return NoVideo(f"no video: {exc.args[0]}; {exc.hint}")


def clip_label(clip: dict[str, Any]) -> str:
    times = f"{float(clip['time_start']):.1f}-{float(clip['time_end']):.1f} s"
    return f"{clip['clip_id']}  {times}  {clip.get('subset', '')}".rstrip()


# The largest picture each format can hold (Pillow refuses more), and a cap on what a sheet may take in
# memory: 64 megapixels (about 200 MB as RGB).
FORMAT_LIMITS = {"PNG": 2**31 - 1, "JPEG": 65_500, "WEBP": 16_383}
MAX_SHEET_PIXELS = 64_000_000
WIDEST_ASPECT = 2.4  # a cinema frame: what the size check assumes before any frame is decoded
LINE = 14  # pixels per line of text, with Pillow's default bitmap font


def sheet_size_problem(rows: int, frames: int, height: int, image_format: str) -> str | None:
    """Why a sheet of ``rows`` clips, each ``frames`` frames ``height`` pixels high, could be too large
    for the format or for memory, judged before any frame is decoded; None when it fits."""
    width = round(frames * (height * WIDEST_ASPECT + GAP)) + 2 * GAP
    tall = LINE + 2 * GAP + rows * (LINE + height + GAP) + GAP
    limit = FORMAT_LIMITS[image_format]
    if max(width, tall) > limit:
        return (
            f"{image_format} holds at most {limit:,} pixels a side; this sheet may need {max(width, tall):,}"
        )
    if width * tall > MAX_SHEET_PIXELS:
        return (
            f"this sheet may need {width * tall / 1e6:,.0f} megapixels (at most {MAX_SHEET_PIXELS / 1e6:.0f})"
        )
    return None


def contact_sheet(
    title: str, rows: Sequence[tuple[str, Image | NoVideo]], *, height: int = FRAME_HEIGHT
) -> Image:
    """One picture: ``title``, then per clip its label above its strip (or the reason it has none)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    line = LINE
    strips = [s for _, s in rows if not isinstance(s, NoVideo)]
    width = max([s.width for s in strips] + [height * 8]) + 2 * GAP
    total = line + GAP + sum(line + (height if not isinstance(s, NoVideo) else line) + GAP for _, s in rows)
    sheet = Image.new("RGB", (width, total + GAP), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((GAP, GAP), title, fill=TEXT_COLOUR, font=font)
    y = GAP + line + GAP
    for label, strip in rows:
        draw.text((GAP, y), label, fill=TEXT_COLOUR, font=font)
        y += line
        if isinstance(strip, NoVideo):
            draw.text((GAP, y), strip.reason, fill=NO_VIDEO_COLOUR, font=font)
            y += line + GAP
        else:
            sheet.paste(strip, (GAP, y))
            y += height + GAP
    return sheet
