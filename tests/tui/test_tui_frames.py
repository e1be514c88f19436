"""Frame strips in the TUI (issue #21): the clips screen and the Annotate screen show frames of the
highlighted clip from a --videos folder or the store's scan, decode them in a worker (moving through
the table never waits, a stale strip is never shown), and say "no video" when there is none."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

pytest.importorskip("textual")
av = pytest.importorskip("av")
pytest.importorskip("textual_image")

from click.testing import CliRunner  # noqa: E402

from hvuaudit.cli import cli  # noqa: E402
from hvuaudit.tui.app import make_app  # noqa: E402
from hvuaudit.tui.screens.clips import ClipsScreen  # noqa: E402
from hvuaudit.tui.widgets import FrameStrip, FrameTable  # noqa: E402
from hvuaudit.videos.frames import NoVideo, VideoSource  # noqa: E402
from tests.tui.test_tui import SIZE, build_store, open_annotate, pilot_test, press, screen_text  # noqa: E402
from tests.tui.test_tui import settle as settle_workers  # noqa: E402


async def settle(pilot) -> None:
    """The workers done, and the strip's decode (which starts DECODE_DELAY after a highlight) too."""
    from hvuaudit.tui.widgets import frame_strip

    await settle_workers(pilot)
    await pilot.pause(frame_strip.DECODE_DELAY + 0.05)  # the module's, which a test may lengthen
    await settle_workers(pilot)


# surfing + beach: yt_surf_001 (10-20 s), yt_surf_002 (0-10 s), yt_surf_003 (5.5-15.5 s); 002 is missing
DOWNLOADED = {"yt_surf_001": (10.0, 20.0), "yt_surf_003": (5.5, 15.5)}


def write_beach_video(path, seconds: float, *, fps: int = 4) -> None:
    """A 64×48 beach: sky over sand, and a surfer (a dark block) crossing the frame as the clip runs."""
    np = pytest.importorskip("numpy")
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = max(1, round(seconds * fps))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            picture = np.zeros((48, 64, 3), dtype=np.uint8)
            picture[:24] = (90, 160, 230)  # sky
            picture[24:34] = (30, 90, 170)  # sea
            picture[34:] = (225, 200, 140)  # sand
            x = 4 + (52 * i) // max(frames - 1, 1)
            picture[20:34, x : x + 8] = (40, 30, 30)
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture
def store(tmp_path):
    return build_store(tmp_path / "store")


@pytest.fixture
def videos(tmp_path):
    folder = tmp_path / "videos"
    for youtube_id, (start, end) in DOWNLOADED.items():
        write_beach_video(folder / f"{youtube_id}_{int(start * 10):06d}_{int(end * 10):06d}.mp4", end - start)
    return folder


def _strip(app, selector: str) -> FrameStrip:
    return app.screen.query_one(selector, FrameStrip)


async def _clips_screen(pilot):
    await settle(pilot)
    pilot.app.push_screen(ClipsScreen("surfing", "beach"))
    await settle(pilot)
    return pilot.app.screen.query_one("#clips", FrameTable)


async def _go_to(pilot, table: FrameTable, youtube_id: str) -> None:
    for _ in range(table.row_count):
        if (table.current_row() or {}).get("youtube_id") == youtube_id:
            return
        await press(pilot, "down")
    raise AssertionError(f"{youtube_id} is not in the table")


@pilot_test
async def test_the_clips_screen_shows_frames_of_the_highlighted_clip_or_no_video(store, videos, monkeypatch):
    artifacts = os.environ.get("HVUAUDIT_TEST_ARTIFACTS")  # docs/tui.md's capture (make docs-figures)
    artifacts_dir = Path(artifacts).resolve() if artifacts else None
    monkeypatch.chdir(store.parent)  # the header shows the store as given: a short name in the capture
    app = make_app(Path(store.name), read_only=True, videos=VideoSource(videos))
    async with app.run_test(size=SIZE) as pilot:
        table = await _clips_screen(pilot)
        strip = _strip(app, "#clip-frames")
        await _go_to(pilot, table, "yt_surf_001")
        await settle(pilot)
        assert strip.shown is not None and not isinstance(strip.shown, NoVideo)
        assert strip.shown.size[1] == 96 and "6 frames of" in screen_text(app)
        assert "▀" in screen_text(app) or "▄" in screen_text(app)  # drawn as half blocks here
        # the surfer crosses the beach: the first frame has it on the left, the last on the right
        first_frame, last_frame = (
            strip.shown.crop((0, 0, 128, 96)),
            strip.shown.crop((strip.shown.width - 128, 0, strip.shown.width, 96)),
        )
        assert first_frame.getpixel((26, 44))[0] < 65 < last_frame.getpixel((26, 44))[0]  # surfer, then sky
        if artifacts_dir is not None:
            artifacts_dir.mkdir(parents=True, exist_ok=True)
            app.save_screenshot(filename="tui_clip_frames.svg", path=str(artifacts_dir))
        await _go_to(pilot, table, "yt_surf_002")
        await settle(pilot)
        assert isinstance(strip.shown, NoVideo) and "no video" in screen_text(app)
        assert "yt_surf_002" in strip.shown.reason


@pilot_test
async def test_decoding_never_blocks_the_table_and_a_stale_strip_is_not_shown(store, videos, monkeypatch):
    from hvuaudit.tui.widgets import frame_strip

    release, started = threading.Event(), threading.Event()
    decoded: list[str] = []
    real = frame_strip.clip_strip
    # long enough that two key presses fall inside it on a loaded machine (the debounce is what is tested)
    monkeypatch.setattr(frame_strip, "DECODE_DELAY", 1.0)

    def slow_strip(con, clip, source, **kwargs):
        started.set()
        release.wait(10)
        decoded.append(clip["youtube_id"])
        return real(con, clip, source, **kwargs)

    monkeypatch.setattr(frame_strip, "clip_strip", slow_strip)
    app = make_app(store, read_only=True, videos=VideoSource(videos))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.push_screen(ClipsScreen("surfing", "beach"))
        for _ in range(20):  # the clips load
            await pilot.pause(0.05)
            table = app.screen.query_one("#clips", FrameTable)
            if table.row_count:
                break
        for _ in range(100):  # the first row's decode starts, and waits on `release`
            await pilot.pause(0.05)
            if started.is_set():
                break
        strip = _strip(app, "#clip-frames")
        first = table.current_row()
        await pilot.press("down", "down")  # straight past the second row, to the third
        for _ in range(100):  # a loaded machine may take a while to move the cursor
            await pilot.pause(0.02)
            if table.cursor_row == 2:
                break
        passed, last = table.get_row_at(1), table.current_row()
        assert first and last and first["clip_id"] != last["clip_id"]  # moved while the first decodes
        assert strip.shown is None and "decoding" in screen_text(app)
        release.set()
        await settle(pilot)
        # the first clip's strip arrived after the cursor moved on: only the last one's is shown
        assert strip.clip_id == last["clip_id"]
        assert isinstance(strip.shown, NoVideo) == (last["youtube_id"] not in DOWNLOADED)
        # the row passed over was never decoded: only the first (already under way) and the last
        # (in either order: on a loaded machine the last one's decode may be waiting on `release` as well)
        assert sorted(decoded) == sorted([first["youtube_id"], last["youtube_id"]]), (decoded, str(passed[0]))


@pilot_test
async def test_a_scanned_store_gives_the_annotate_screen_its_frames(store, videos):
    assert CliRunner().invoke(cli, ["videos", "scan", str(videos), "--db", str(store)]).exit_code == 0
    app = make_app(store, read_only=False)  # no --videos: the scan says where the files are
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_annotate(pilot, "ann")
        await settle(pilot)
        strip = screen.query_one("#example-frames", FrameStrip)
        examples = screen.query_one("#examples", FrameTable)
        assert strip.clip_id == (examples.current_row() or {}).get("clip_id")
        assert strip.shown is not None  # frames or the reason there are none, never stuck


@pilot_test
async def test_without_videos_the_strip_says_how_to_get_frames(store):
    app = make_app(store, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await _clips_screen(pilot)
        strip = _strip(app, "#clip-frames")
        assert isinstance(strip.shown, NoVideo) and "videos scan" in strip.shown.reason
        assert "youtube.com" in screen_text(app)  # the URL stays


def test_tui_name_template_needs_videos(store):
    result = CliRunner().invoke(cli, ["tui", "--name-template", "mmaction", "--db", str(store)])
    assert result.exit_code == 3 and "--name-template needs --videos" in result.stderr
    bad = CliRunner().invoke(
        cli, ["tui", "--videos", str(store.parent), "--name-template", "x", "--db", str(store)]
    )
    assert bad.exit_code == 3 and "neither a preset" in bad.stderr


def test_away_from_a_terminal_the_strip_is_drawn_in_half_blocks():
    from textual_image.widget import HalfcellImage

    from hvuaudit.tui.widgets import frame_strip

    assert frame_strip.ImageWidget is HalfcellImage  # pytest's stdout is no terminal


@pilot_test
async def test_without_textual_image_or_pyav_the_strip_gives_the_pip_command(store, videos, monkeypatch):
    from hvuaudit.errors import InputError
    from hvuaudit.tui.widgets import frame_strip
    from hvuaudit.videos import frames

    def no_pyav():
        raise InputError("frames need PyAV, which is not installed", hint=frames.EXTRA_HINT)

    monkeypatch.setattr(frames, "_av", no_pyav)
    app = make_app(store, read_only=True, videos=VideoSource(videos))
    async with app.run_test(size=SIZE) as pilot:
        table = await _clips_screen(pilot)
        await _go_to(pilot, table, "yt_surf_001")  # a clip whose file exists
        await settle(pilot)
        strip = _strip(app, "#clip-frames")
        assert isinstance(strip.shown, NoVideo) and "pip install 'hvuaudit[frames]'" in strip.shown.reason
    monkeypatch.setattr(frame_strip, "ImageWidget", None)
    app = make_app(store, read_only=True, videos=VideoSource(videos))
    async with app.run_test(size=SIZE) as pilot:
        await _clips_screen(pilot)
        await settle(pilot)
        strip = _strip(app, "#clip-frames")
        assert isinstance(strip.shown, NoVideo) and "textual-image is not installed" in strip.shown.reason
        assert "pip install 'hvuaudit[frames]'" in screen_text(app)
