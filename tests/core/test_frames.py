"""Clip frames (issue #21): the frame strip of a clip from the scan or from a --videos folder under every
naming scheme, "no video" for a missing or broken file, and `hvuaudit clips sheet`. The mp4s come from
tests/core/test_videos.py: the frame at second t of a file is a flat grey of level 3·⌊t⌋, so a test can
tell which seconds a strip shows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from hvuaudit.cli import cli
from hvuaudit.store import open_store
from tests.core.test_videos import _clip_id, _clip_rows, _scan, make_video_store, write_downloads, write_video

av = pytest.importorskip("av")
Image = pytest.importorskip("PIL.Image")

from hvuaudit.videos.frames import (  # noqa: E402
    GAP,
    ClipFile,
    NoVideo,
    VideoSource,
    clip_strip,
    locate_clip,
    prepare_lookup,
    read_strip,
)


@pytest.fixture
def video_store(tmp_path):
    return make_video_store(tmp_path)


def _clip(k: int) -> dict:
    tags, video, start, end = _clip_rows()[k]
    return {
        "clip_id": _clip_id(video, start, end),
        "youtube_id": video,
        "time_start": start,
        "time_end": end,
        "tags": tags,
    }


def _levels(strip, frames: int, height: int = 16) -> list[int]:
    """The grey level at the middle of each frame of a strip of square frames ``height`` high."""
    return [strip.getpixel((k * (height + GAP) + height // 2, height // 2))[0] for k in range(frames)]


def test_a_whole_video_is_cut_at_the_clips_seconds(tmp_path):
    video = tmp_path / "abcdefghijk.mp4"
    write_video(video, 60.0)
    strip = read_strip(ClipFile(video, (40.5, 48.5)), frames=4, height=16)
    assert strip.size == (4 * 16 + 3 * GAP, 16)
    # frames at the middle of each quarter: 41.5, 43.5, 45.5, 47.5 s -> levels 3·41, 3·43, 3·45, 3·47
    assert _levels(strip, 4) == pytest.approx([123, 129, 135, 141], abs=4)
    # a trimmed clip (no window) is read from its start to its end
    clip = tmp_path / "clip.mp4"
    write_video(clip, 8.0)
    assert _levels(read_strip(ClipFile(clip, None), frames=4, height=16), 4) == pytest.approx(
        [3, 9, 15, 21], abs=4
    )


def test_scanned_store_strips_and_the_reasons_for_no_video(video_store, tmp_path):
    root = tmp_path / "downloads"
    write_downloads(root)
    assert _scan(video_store, str(root), "--probe").exit_code == 0
    with open_store(video_store, read_only=True) as con:  # the TUI's --read-only store can show frames
        source = VideoSource()
        assert prepare_lookup(con, source) is None
        whole = locate_clip(con, _clip(8), source)  # k % 5 == 3: the whole video by its id
        assert isinstance(whole, ClipFile) and whole.path == root / "whole" / f"{_clip(8)['youtube_id']}.mp4"
        assert whole.window == (_clip(8)["time_start"], _clip(8)["time_end"])
        strip = clip_strip(con, _clip(8), source, frames=2, height=16)
        start = _clip(8)["time_start"]  # frames at start + 0.5 and start + 1.5
        assert _levels(strip, 2) == pytest.approx([3 * int(start + 0.5), 3 * int(start + 1.5)], abs=4)
        missing = clip_strip(con, _clip(3), source)  # never downloaded
        assert isinstance(missing, NoVideo) and "no usable file" in missing.reason
        broken = clip_strip(con, _clip(5), source)  # 252 zero bytes: the probe marked it unusable
        assert isinstance(broken, NoVideo)
    # the file broke after the scan: the strip says why, naming the file, and nothing raises
    assert isinstance(whole, ClipFile)
    whole.path.write_bytes(b"\0" * 500)
    with open_store(video_store, read_only=True) as con:
        prepare_lookup(con, source)
        broken_now = clip_strip(con, _clip(8), source)
    assert isinstance(broken_now, NoVideo) and str(whole.path) in broken_now.reason


def test_an_unscanned_store_says_how_to_get_frames(video_store):
    with open_store(video_store, read_only=True) as con:
        reason = prepare_lookup(con, VideoSource())
    assert reason is not None and "videos scan" in reason


@pytest.mark.parametrize(
    ("name", "whole"),
    [
        ("{v}_{s10:06d}_{e10:06d}.mp4", False),  # mmaction2
        ("{v}_{s:06d}_{e:06d}_.mp4", False),  # HVU-Downloader, trimmed
        ("{v}_{s:06d}_{e:06d}.mp4", True),  # HVU-Downloader, before trimming
        ("{v}_{start}_{end}.mp4", False),  # seconds as decimals
        ("{v}.mp4", True),  # the whole video by its YouTube id
        ("{v}.webm", True),  # what yt-dlp keeps when it downloads a webm
        ("{v}_{s10:06d}_{e10:06d}.mkv", False),
    ],
)
def test_a_videos_folder_is_searched_under_every_name_the_download_tools_write(tmp_path, name, whole):
    clip = _clip(0)
    start, end = clip["time_start"], clip["time_end"]
    fields = {"v": clip["youtube_id"], "s10": int(start * 10), "e10": int(end * 10), "s": int(start)}
    fields |= {"e": int(end), "start": start, "end": end}
    (tmp_path / name.format(**fields)).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name.format(**fields)).write_bytes(b"x")
    found = locate_clip(None, clip, VideoSource(tmp_path))
    assert isinstance(found, ClipFile) and found.path == tmp_path / name.format(**fields)
    assert found.window == ((start, end) if whole else None)


def test_a_template_with_the_action_finds_the_class_folder(tmp_path):
    clip = _clip(0)  # tags run|park
    path = tmp_path / "run" / f"{clip['youtube_id']}.mp4"
    path.parent.mkdir()
    path.write_bytes(b"x")
    found = locate_clip(None, clip, VideoSource(tmp_path, "{action}/{youtube_id}.mp4"))
    assert isinstance(found, ClipFile) and found.path == path and found.window is not None
    # with a template, only its names count
    other = locate_clip(None, clip, VideoSource(tmp_path, "mmaction"))
    assert isinstance(other, NoVideo) and "no file for" in other.reason


# ------------------------------------------------------------------ hvuaudit clips sheet


def _sheet(db: Path, *args: str):
    return CliRunner().invoke(
        cli, ["clips", "sheet", "--action", "run", "--tag", "park", *args, "--db", str(db)]
    )


def test_clips_sheet_draws_a_row_per_clip_and_says_which_have_no_video(video_store, tmp_path):
    root = tmp_path / "downloads"
    write_downloads(root)
    assert _scan(video_store, str(root), "--probe").exit_code == 0
    out = tmp_path / "sheet.png"
    result = _sheet(video_store, "-o", str(out), "--frames", "3", "--height", "32")
    assert result.exit_code == 0, result.output
    # run + park: clips 0-5; clip 3 was never downloaded and clip 5 is broken
    assert "4 of 6 clip(s) with frames" in result.stderr
    assert result.stderr.count("warning:") == 2 and _clip(3)["clip_id"] in result.stderr
    sheet = Image.open(out)
    assert sheet.format == "PNG" and sheet.width >= 3 * 32 and sheet.height > 4 * 32
    # an existing sheet is kept without --force; a store or a text file is never written over
    assert _sheet(video_store, "-o", str(out)).exit_code == 5
    assert _sheet(video_store, "-o", str(out), "--force").exit_code == 0
    store_copy = tmp_path / "copy.png"
    shutil.copy(video_store, store_copy)
    before = store_copy.read_bytes()
    assert _sheet(store_copy, "-o", str(store_copy), "--force").exit_code == 5
    assert store_copy.read_bytes() == before


def test_clips_sheet_refuses_what_it_cannot_draw(video_store, tmp_path):
    out = tmp_path / "sheet.png"
    no_scan = _sheet(video_store, "-o", str(out))
    assert no_scan.exit_code == 3 and "videos scan" in no_scan.stderr and not out.exists()
    unknown = CliRunner().invoke(
        cli, ["clips", "sheet", "--action", "runn", "--tag", "park", "-o", str(out), "--db", str(video_store)]
    )
    assert unknown.exit_code == 3 and "'runn'" in unknown.stderr and "run" in unknown.stderr
    never = CliRunner().invoke(
        cli, ["clips", "sheet", "--action", "run", "--tag", "pool", "-o", str(out), "--db", str(video_store)]
    )
    assert never.exit_code == 3 and "no clip carries both" in never.stderr
    assert _sheet(video_store, "-o", str(tmp_path / "sheet.txt")).exit_code == 3
    assert _sheet(video_store, "-o", str(tmp_path)).exit_code == 3
    assert _sheet(video_store, "-o", str(tmp_path / "nowhere" / "s.png")).exit_code == 3
    templated = _sheet(video_store, "-o", str(out), "--name-template", "mmaction")
    assert templated.exit_code == 3 and "--name-template needs --videos" in templated.stderr
    assert not out.exists()


def test_clips_sheet_from_a_videos_folder_without_a_scan(video_store, tmp_path):
    folder = tmp_path / "clips"
    for k in range(6):  # run + park, mmaction names
        clip = _clip(k)
        s10, e10 = int(clip["time_start"] * 10), int(clip["time_end"] * 10)
        write_video(folder / f"{clip['youtube_id']}_{s10:06d}_{e10:06d}.mp4", 2.0)
    out = tmp_path / "sheet.jpg"
    result = _sheet(video_store, "-o", str(out), "--videos", str(folder), "--name-template", "mmaction")
    assert result.exit_code == 0, result.output
    assert "6 of 6" in result.stderr and Image.open(out).format == "JPEG"


def test_a_whole_video_that_ends_before_the_clip_is_no_video_not_its_last_frame(tmp_path):
    video = tmp_path / "short.mp4"
    write_video(video, 3.0)
    strip = clip_strip(
        None, {**_clip(0), "clip_id": "c", "tags": ""}, VideoSource(tmp_path, "{youtube_id}.mp4")
    )
    assert isinstance(strip, NoVideo) and "no file" in strip.reason  # named by another id: not found
    found = read_strip_or_reason(ClipFile(video, (6.0, 16.0)))
    assert "ends at 3.0 s, before the clip ends (16.0 s)" in found


def read_strip_or_reason(clip_file) -> str:
    from hvuaudit.videos.frames import FrameError

    try:
        read_strip(clip_file, frames=2, height=16)
    except FrameError as exc:
        return str(exc)
    return "decoded"


def test_a_folder_that_cannot_be_read_and_a_nested_file_are_no_video(tmp_path, monkeypatch):
    clip = _clip(0)
    nested = tmp_path / "sub" / f"{clip['youtube_id']}.mp4"  # --videos looks in the folder itself
    nested.parent.mkdir()
    nested.write_bytes(b"x")
    missing = locate_clip(None, clip, VideoSource(tmp_path))
    assert isinstance(missing, NoVideo) and "no file for" in missing.reason

    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "is_file", refuse)  # root reads every folder: the refusal is simulated
    refused = locate_clip(None, clip, VideoSource(tmp_path))
    assert (
        isinstance(refused, NoVideo)
        and "cannot read" in refused.reason
        and "Permission denied" in refused.reason
    )


def test_clip_labels_name_the_clip_its_seconds_and_subset():
    from hvuaudit.videos.frames import clip_label

    assert clip_label({"clip_id": "abc_1.0_3.5", "time_start": 1.0, "time_end": 3.5, "subset": "val"}) == (
        "abc_1.0_3.5  1.0-3.5 s  val"
    )


def test_clips_sheet_limits_its_size_takes_webp_and_names_what_it_refuses(video_store, tmp_path):
    folder = tmp_path / "clips"
    for k in range(6):
        clip = _clip(k)
        write_video(
            folder
            / f"{clip['youtube_id']}_{int(clip['time_start'] * 10):06d}_{int(clip['time_end'] * 10):06d}.mp4",
            2.0,
        )
    webp = tmp_path / "s.webp"
    two = _sheet(video_store, "-o", str(webp), "--videos", str(folder), "--limit", "2", "--frames", "2")
    assert two.exit_code == 0 and "2 of 2 clip(s)" in two.stderr and Image.open(webp).format == "WEBP"
    big = _sheet(
        video_store,
        "-o",
        str(tmp_path / "big.webp"),
        "--videos",
        str(folder),
        "--frames",
        "32",
        "--height",
        "720",
    )
    assert big.exit_code == 3 and "WEBP holds at most 16,383 pixels" in big.stderr and ".png" in big.stderr
    huge = _sheet(
        video_store,
        "-o",
        str(tmp_path / "huge.png"),
        "--videos",
        str(folder),
        "--frames",
        "32",
        "--height",
        "720",
        "--limit",
        "200",
    )
    assert huge.exit_code == 3 and "megapixels" in huge.stderr
    assert not (tmp_path / "big.webp").exists() and not (tmp_path / "huge.png").exists()
    scene = CliRunner().invoke(
        cli,
        [
            "clips",
            "sheet",
            "--action",
            "park",
            "--tag",
            "run",
            "-o",
            str(tmp_path / "x.png"),
            "--db",
            str(video_store),
        ],
    )
    assert scene.exit_code == 3 and "'park' is a scene tag, not an action" in scene.stderr
    never = CliRunner().invoke(
        cli,
        [
            "clips",
            "sheet",
            "--action",
            "run",
            "--tag",
            "pool",
            "-o",
            str(tmp_path / "x.png"),
            "--db",
            str(video_store),
        ],
    )
    assert "--param action=run" in never.stderr  # a hint that runs as written
    wrong_names = _sheet(
        video_store, "-o", str(tmp_path / "x.png"), "--videos", str(folder), "--name-template", "downloader"
    )
    assert (
        wrong_names.exit_code == 3
        and "--name-template" in wrong_names.stderr
        and "give --videos" not in wrong_names.stderr
    )


def test_tui_serve_passes_the_videos_folder_and_template_to_each_tab(tmp_path):
    from hvuaudit.tui.serve import tui_command

    command = tui_command(tmp_path / "s.duckdb", read_only=True, videos=VideoSource(tmp_path, "mmaction"))
    assert command.endswith(f"--read-only --videos {tmp_path.resolve()} --name-template mmaction")
    assert "--videos" not in tui_command(tmp_path / "s.duckdb", read_only=False, videos=VideoSource())
