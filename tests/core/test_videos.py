"""Real video files on disk (issue #19): `videos scan` under every naming scheme of the download tools,
`--probe`, idempotent rescans, `split --require-videos`, and the trainer reading the recorded files,
whole YouTube videos cut at the clip's times included. The mp4s are written with PyAV."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from hvuaudit.cli import cli
from hvuaudit.ingest import ingest
from hvuaudit.store import open_store

av = pytest.importorskip("av")
np = pytest.importorskip("numpy")

CODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"
CATEGORIES = (
    "Tag,Category\nrun,action\nswim,action\npark,scene\nstreet,scene\nbeach,scene\npool,scene\nsea,scene\n"
)
SEEN = {"run": ("park", "street"), "swim": ("pool", "sea")}
RARE = {"run": "beach", "swim": "lake"}


def write_video(path: Path, seconds: float, *, fps: int = 4, size: int = 16) -> None:
    """An mp4 whose frame at time t is a flat grey of level 3·⌊t⌋ (so a test can tell which second it
    decoded; the clips below end before 81 s)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(CODEC, rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(max(1, round(seconds * fps))):
            level = min(250, 3 * int(i / fps))
            frame = av.VideoFrame.from_ndarray(
                np.full((size, size, 3), level, dtype=np.uint8), format="rgb24"
            )
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _clip_rows() -> list[tuple[str, str, float, float]]:
    """(tags, youtube_id, start, end): 2 actions × (two common scenes of 6 and 4 clips, a rare one of 3).
    Every start ends in .5, where truncating and rounding the seconds differ."""
    rows = []
    for a, action in enumerate(("run", "swim")):
        scenes = [SEEN[action][0]] * 6 + [SEEN[action][1]] * 4 + [RARE[action]] * 3
        for i, scene in enumerate(scenes):
            video = f"{action[:2]}{i:02d}xxxxxxx"[:11]  # 11 characters, as YouTube ids
            start = 40.5 + 3 * i + a  # 40.5, 43.5, ...
            rows.append((f"{action}|{scene}", video, start, start + 2.0))
    return rows


@pytest.fixture
def video_store(tmp_path):
    """A store of the 26 clips above, and where each clip's file is written (scheme per clip)."""
    return make_video_store(tmp_path)


def make_video_store(tmp_path: Path) -> Path:
    lines = ["Tags,youtube_id,time_start,time_end"] + [f"{t},{v},{s},{e}" for t, v, s, e in _clip_rows()]
    (tmp_path / "HVU_Val_videos.csv").write_text("\n".join(lines) + "\n")
    categories = CATEGORIES + "lake,scene\n"
    (tmp_path / "cats.csv").write_text(categories)
    db = tmp_path / "hvu.duckdb"
    ingest([tmp_path / "HVU_Val_videos.csv"], tmp_path / "cats.csv", db=db)
    return db


def _clip_id(video: str, start: float, end: float) -> str:
    return f"{video}_{start}_{end}"


def write_downloads(root: Path) -> dict[str, set[str]]:
    """A half-downloaded HVU folder: each clip under one of the tools' names, some missing or broken.
    Returns the clip ids by what the scan must make of them."""
    expect: dict[str, set[str]] = {
        "usable": set(), "broken": set(), "missing": set(), "too short": set(), "whole": set(), "empty": set()
    }  # fmt: skip
    for k, (_tags, video, start, end) in enumerate(_clip_rows()):
        clip = _clip_id(video, start, end)
        s10, e10, s, e = int(start * 10), int(end * 10), int(start), int(end)
        if k in (3, 16):  # never downloaded
            expect["missing"].add(clip)
            continue
        if k == 5:  # YouTube's leftover of a removed video
            (root / f"{video}_{s10:06d}_{e10:06d}.mp4").write_bytes(b"\0" * 252)
            expect["broken"].add(clip)
            continue
        if k == 18:  # a download that never started
            (root / "sub" / f"{video}_{s:06d}_{e:06d}_.mp4").parent.mkdir(exist_ok=True)
            (root / "sub" / f"{video}_{s:06d}_{e:06d}_.mp4").write_bytes(b"")
            expect["broken"].add(clip)
            expect["empty"].add(clip)
            continue
        if k == 7:  # cut short: half a second of a 2-second clip
            write_video(root / f"{video}_{s10:06d}_{e10:06d}.mp4", 0.5)
            expect["too short"].add(clip)
            continue
        scheme = k % 5
        if scheme == 0:
            write_video(root / f"{video}_{s10:06d}_{e10:06d}.mp4", end - start)  # mmaction
        elif scheme == 1:
            write_video(
                root / "sub" / f"{video}_{s:06d}_{e:06d}_.mp4", end - start
            )  # HVU-Downloader, trimmed
        elif scheme == 2:
            write_video(root / f"{video}_{start}_{end}.mp4", end - start)  # seconds as decimals
        elif scheme == 3:
            write_video(root / "whole" / f"{video}.mp4", end + 1.0)  # the whole video by its id
            expect["whole"].add(clip)
        else:
            write_video(root / f"{video}_{s:06d}_{e:06d}.mp4", end + 1.0)  # HVU-Downloader, before trimming
            expect["whole"].add(clip)
        expect["usable"].add(clip)
    # names that are no clip: another video, and the seconds rounded (41.5 -> 42) instead of truncated
    write_video(root / "zzzzzzzzzzz_000010_000030.mp4", 2.0)
    video, start, end = _clip_rows()[3][1:]
    write_video(root / f"{video}_{round(start):06d}_{round(end):06d}_.mp4", 2.0)
    (root / "notes.txt").write_text("not a video")
    return expect


def _scan(db: Path, *args: str):
    return CliRunner().invoke(cli, ["videos", "scan", *args, "--db", str(db)])


def _usable_clip_ids(db: Path) -> set[str]:
    from hvuaudit.videos.scan import refresh_usable

    with open_store(db, read_only=False) as con:
        refresh_usable(con)
        rows = con.execute("SELECT c.clip_id FROM usable_videos u JOIN clips c USING (clip_key)").fetchall()
    return {r[0] for r in rows}


def test_scan_finds_every_scheme_and_probe_finds_the_broken_files(video_store, tmp_path):
    root = tmp_path / "downloads"
    expect = write_downloads(root)
    result = _scan(video_store, str(root), "--probe", "--workers", "2", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    scan = doc["scan"]
    assert scan["other_files"] == 1 and scan["unmatched_files"] == 2
    assert set(scan["by_scheme"]) == {
        "mmaction",
        "downloader",
        "downloader-untrimmed",
        "seconds",
        "youtube-id",
    }
    assert _usable_clip_ids(video_store) == expect["usable"]
    problems = {(p["kind"], p["clip_id"]) for p in doc["problems"]}
    assert {("broken", c) for c in expect["broken"]} <= problems
    assert {("too short", c) for c in expect["too short"]} <= problems
    unmatched = {p["path"] for p in doc["problems"] if p["kind"] == "unmatched"}
    video, start, end = _clip_rows()[3][1:]
    assert unmatched == {"zzzzzzzzzzz_000010_000030.mp4", f"{video}_{round(start):06d}_{round(end):06d}_.mp4"}
    details = {p["clip_id"]: p["detail"] for p in doc["problems"] if p["kind"] in ("broken", "too short")}
    assert any("empty file" in details[c] for c in expect["broken"])
    assert any("cannot be opened" in details[c] for c in expect["broken"])
    assert all("shorter than the clip" in details[c] for c in expect["too short"])
    subset = doc["coverage"]["subset"][0]
    assert (subset["clips"], subset["usable"]) == (26, len(expect["usable"]))
    assert doc["scan"]["probe"]["files"] > 0


def test_a_rescan_changes_only_what_changed(video_store, tmp_path):
    root = tmp_path / "downloads"
    write_downloads(root)
    assert _scan(video_store, str(root), "--probe").exit_code == 0
    with open_store(video_store, read_only=True) as con:
        probed_before = dict(con.execute("SELECT path, probed_at FROM video_files").fetchall())
    again = _scan(video_store, str(root), "--format", "json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["scan"]["changes"] == {
        "new": 0,
        "changed": 0,
        "unchanged": 26,  # 24 clips (2 never downloaded) and 2 files that are no clip
        "removed": 0,
    }
    # one file rewritten (another size), one deleted, one added
    changed = next(p for p in root.glob("*.mp4") if "_0000" in p.name and p.stat().st_size > 300)
    write_video(changed, 3.0)
    os.utime(changed, (1, 1))
    gone = next(root.glob("sub/*_.mp4"))
    gone.unlink()
    write_video(root / "zzzzzzzzzzy.mp4", 1.0)
    third = _scan(video_store, str(root), "--format", "json")
    assert json.loads(third.stdout)["scan"]["changes"] == {
        "new": 1,
        "changed": 1,
        "unchanged": 24,
        "removed": 1,
    }
    with open_store(video_store, read_only=True) as con:
        probed = dict(con.execute("SELECT path, probed_at FROM video_files").fetchall())
    rel = changed.relative_to(root).as_posix()
    assert probed[rel] is None  # the changed file must be probed again
    assert all(probed[p] == probed_before[p] for p in probed if p != rel and p in probed_before)


def test_bad_scan_input_exits_3_and_names_the_schemes(video_store, tmp_path):
    missing = _scan(video_store, str(tmp_path / "nope"))
    assert missing.exit_code == 3 and "does not exist" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    result = _scan(video_store, str(empty))
    assert result.exit_code == 3 and "no video file under" in result.stderr
    assert "ID_000040_000042_.mp4" in result.stderr and "ID.mp4" in result.stderr
    with open_store(video_store, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM video_files").fetchone()[0] == 0
    blank = tmp_path / "blank.duckdb"
    with open_store(blank, read_only=False, create=True):
        pass
    assert _scan(blank, str(empty)).exit_code == 4  # a store without clips


def _split_rows(folder: Path) -> dict[str, list[dict[str, str]]]:
    rows = {}
    for side in ("train", "select", "val"):
        path = folder / f"{side}.csv"
        if path.is_file():
            with path.open(newline="", encoding="utf-8") as handle:
                rows[side] = list(csv.DictReader(handle))
    return rows


def test_split_require_videos_holds_exactly_the_covered_clips(video_store, tmp_path):
    root = tmp_path / "downloads"
    expect = write_downloads(root)
    args = [
        "split",
        "--variant",
        "2",
        "--min-videos",
        "5",
        "--select-fraction",
        "0.2",
        "--db",
        str(video_store),
    ]
    refused = CliRunner().invoke(cli, [*args, "--require-videos", "--out", str(tmp_path / "never")])
    assert refused.exit_code == 3 and "run `hvuaudit videos scan" in refused.stderr
    assert not (tmp_path / "never").exists()
    assert _scan(video_store, str(root), "--probe").exit_code == 0
    out = tmp_path / "si2"
    result = CliRunner().invoke(cli, [*args, "--require-videos", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = _split_rows(out)
    ids = {r["clip_id"] for side in rows.values() for r in side}
    assert ids == expect["usable"]  # the split's clips are exactly those with a usable file
    for side in rows.values():
        for r in side:
            path = Path(r["video"]) if os.path.isabs(r["video"]) else root / r["video"]
            assert path.is_file(), r
            assert r["video_whole"] == ("1" if r["clip_id"] in expect["whole"] else "0"), r
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["videos"] == {"dir": str(root.resolve()), "name_template": "scanned"}
    coverage = manifest["counts"]["videos"]
    assert coverage["required"] is True
    assert all(coverage[side]["with_video"] == coverage[side]["clips"] for side in ("train", "val"))
    before = coverage["without_require_videos"]
    assert before["train"]["clips"] + before["select"]["clips"] + before["val"]["clips"] == 26
    assert sum(before[side]["clips"] - before[side]["with_video"] for side in ("train", "select", "val")) == 5
    verify = CliRunner().invoke(cli, ["split", "verify", str(out), "--db", str(video_store)])
    assert verify.exit_code == 0, verify.output


def test_the_trainer_cuts_a_whole_video_at_the_clip_times(video_store, tmp_path):
    """A clip whose file is the whole video decodes from its own seconds, not from the start."""
    pytest.importorskip("torch")
    from hvucontracts.splitfolder import SCANNED, load_split
    from trainer.decoding import decode_clip
    from trainer.videos import build_table

    root = tmp_path / "downloads"
    write_downloads(root)
    assert _scan(video_store, str(root), "--probe").exit_code == 0
    out = tmp_path / "si2"
    args = ["split", "--variant", "2", "--min-videos", "5", "--select-fraction", "0", "--require-videos"]
    assert CliRunner().invoke(cli, [*args, "--out", str(out), "--db", str(video_store)]).exit_code == 0
    split = load_split(out)
    frame = next(f for f in split.sets.values() if (f["video_whole"] == "1").any())
    table = build_table(frame, split.labels, root, SCANNED)
    i = next(k for k, w in enumerate(table.window) if w is not None)
    start, end = table.window[i]
    frames = decode_clip(
        table.path[i], clip_len=4, frame_stride=1, short_side=(16, 16), rng=None, window=(start, end)
    )
    # the centre 4 frames of [start, end) at 4 fps lie in second ⌊start⌋ + 1 (start ends in .5)
    assert abs(float(frames.mean()) - 3 * (int(start) + 1)) < 5, (start, float(frames.mean()))
    whole = decode_clip(table.path[i], clip_len=4, frame_stride=1, short_side=(16, 16), rng=None)
    assert abs(float(whole.mean()) - float(frames.mean())) > 20  # without the window: the file's middle
    # a clip longer than the window never reads past its end: the window's last frame repeats
    long = decode_clip(
        table.path[i], clip_len=16, frame_stride=2, short_side=(16, 16), rng=None, window=(start, end)
    )
    levels = [float(f.mean()) for f in long]
    assert max(levels) < 3 * int(end) + 2 and levels[-1] == pytest.approx(levels[-2]), levels


def test_a_training_run_reads_the_scanned_files(video_store, tmp_path):
    pytest.importorskip("torch")
    from tests.trainer_fixtures import TINY_ARGS

    root = tmp_path / "downloads"
    write_downloads(root)
    assert _scan(video_store, str(root), "--probe").exit_code == 0
    out = tmp_path / "si2"
    args = ["split", "--variant", "2", "--min-videos", "5", "--select-fraction", "0.2", "--require-videos"]
    assert CliRunner().invoke(cli, [*args, "--out", str(out), "--db", str(video_store)]).exit_code == 0
    tiny = list(TINY_ARGS)
    tiny[tiny.index("--clip-len") + 1] = "4"
    tiny[tiny.index("--size") + 1] = "16"
    run = tmp_path / "run"
    result = CliRunner().invoke(
        cli, ["train", "--split", str(out), "--out", str(run), *tiny, "--method", "baseline", "--epochs", "1"]
    )
    assert result.exit_code == 0, result.output
    preflight = json.loads((run / "preflight.json").read_text())
    assert all(s["missing"] == 0 and s["unreadable"] == 0 for s in preflight["sets"].values()), preflight


# --------------------------------------------------------------------------- videos prepare
@pytest.fixture
def scanned_split(video_store, tmp_path):
    """A --require-videos SI-2 split of the half-downloaded folder (scanned and probed)."""
    root = tmp_path / "downloads"
    expect = write_downloads(root)
    assert _scan(video_store, str(root), "--probe").exit_code == 0
    out = tmp_path / "si2"
    args = ["split", "--variant", "2", "--min-videos", "5", "--select-fraction", "0.2", "--require-videos"]
    result = CliRunner().invoke(cli, [*args, "--out", str(out), "--db", str(video_store)])
    assert result.exit_code == 0, result.output
    return out, root, expect


def _prepare(split: Path, out: Path, *args: str):
    return CliRunner().invoke(
        cli, ["videos", "prepare", str(split), "--out", str(out), "--short-side", "16", "--gop", "4", *args]
    )


def _frames(path: Path) -> tuple[list[float], list[float], int]:
    """(frame times in s, mean grey of each frame, keyframes) of a file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        times = [float(f.pts * stream.time_base) for f in frames]
        levels = [float(f.to_ndarray(format="rgb24").mean()) for f in frames]
        return times, levels, sum(f.key_frame for f in frames)


def test_prepare_cuts_each_clip_to_its_times_with_frequent_keyframes(scanned_split, tmp_path):
    split, _root, expect = scanned_split
    out = tmp_path / "prepared"
    result = _prepare(split, out, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert f"{len(expect['usable'])} clip(s) prepared, 0 already there, 0 failed" in result.stderr
    manifest = json.loads((out / "videos.json").read_text())
    assert manifest["name_template"] == "{clip_id}.mp4" and manifest["prepared"] == len(expect["usable"])
    for clip in expect["usable"]:
        times, levels, keyframes = _frames(out / f"{clip}.mp4")
        start = float(clip.split("_")[1])
        # the 2-second clip at the source's 4 fps: 8 frames over the same span, a keyframe every 4
        assert len(times) == 8 and times[0] == 0.0 and times[-1] == pytest.approx(1.75), (clip, times)
        assert keyframes >= 2
        if clip in expect["whole"]:  # cut from the whole video: its first frame is second ⌊start⌋
            assert abs(levels[0] - 3 * int(start)) < 4, (clip, levels[0])
        else:
            assert levels[0] < 4  # the clip's own file starts at its first frame
    with av.open(str(out / f"{next(iter(expect['usable']))}.mp4")) as container:
        assert min(container.streams.video[0].width, container.streams.video[0].height) == 16


def test_prepare_resumes_and_refuses_what_it_did_not_write(scanned_split, tmp_path):
    split, _root, expect = scanned_split
    out = tmp_path / "prepared"
    assert _prepare(split, out, "--workers", "0").exit_code == 0
    kept = next(iter(sorted(expect["usable"])))
    before = (out / f"{kept}.mp4").stat().st_mtime_ns
    lost = sorted(expect["usable"])[-1]
    (out / f"{lost}.mp4").unlink()
    again = _prepare(split, out, "--workers", "0")
    assert again.exit_code == 0, again.output
    assert f"1 clip(s) prepared, {len(expect['usable']) - 1} already there" in again.stderr
    assert (out / f"{kept}.mp4").stat().st_mtime_ns == before and (out / f"{lost}.mp4").is_file()
    other = _prepare(split, out, "--workers", "0", "--gop", "8")
    assert other.exit_code == 5 and "other settings" in other.stderr
    (out / "mine.txt").write_text("a user's file")
    foreign = _prepare(split, out, "--workers", "0")
    assert foreign.exit_code == 5 and "mine.txt" in foreign.stderr
    assert (out / "mine.txt").read_text() == "a user's file"
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "x.mp4").write_bytes(b"x")
    refused = _prepare(split, stranger, "--workers", "0")
    assert refused.exit_code == 5 and (stranger / "x.mp4").read_bytes() == b"x"


def test_a_clip_that_fails_is_listed_and_skipped(scanned_split, tmp_path):
    split, root, expect = scanned_split
    rows = _split_rows(split)
    victim = next(r for side in rows.values() for r in side if r["video_whole"] == "0")
    (root / victim["video"]).write_bytes(b"\0" * 252)  # broken after the scan
    out = tmp_path / "prepared"
    result = _prepare(split, out, "--workers", "0")
    assert result.exit_code == 0, result.output
    assert f"{len(expect['usable']) - 1} clip(s) prepared, 0 already there, 1 failed" in result.stderr
    with (out / "prepare_problems.csv").open(newline="") as handle:
        problems = list(csv.DictReader(handle))
    assert [p["clip_id"] for p in problems] == [victim["clip_id"]]
    assert not (out / f"{victim['clip_id']}.mp4").exists()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != ".hvuaudit-owned.json"]


def test_a_full_disk_stops_prepare_and_keeps_the_finished_clips(scanned_split, tmp_path, monkeypatch):
    from hvuaudit.videos import prepare

    split, _root, expect = scanned_split
    real = prepare.encode_clip
    calls = []

    def fills_up(job, settings):
        calls.append(job.clip_id)
        return prepare.NO_SPACE if len(calls) == 3 else real(job, settings)

    monkeypatch.setattr(prepare, "encode_clip", fills_up)
    out = tmp_path / "prepared"
    result = _prepare(split, out, "--workers", "0")
    assert result.exit_code == 7, result.output
    assert "videos prepare stopped with 2 of" in result.stderr and "free some space" in result.stderr
    assert len(list(out.glob("*.mp4"))) == 2 and len(calls) == 3  # nothing after the full disk
    monkeypatch.setattr(prepare, "encode_clip", real)
    resumed = _prepare(split, out, "--workers", "0")
    assert (
        resumed.exit_code == 0
        and f"{len(expect['usable']) - 2} clip(s) prepared, 2 already there" in resumed.stderr
    )


def test_a_training_run_reads_prepared_clips(scanned_split, tmp_path):
    pytest.importorskip("torch")
    from tests.trainer_fixtures import TINY_ARGS

    split, _root, expect = scanned_split
    out = tmp_path / "prepared"
    assert _prepare(split, out, "--workers", "0").exit_code == 0
    tiny = list(TINY_ARGS)
    tiny[tiny.index("--clip-len") + 1] = "4"
    tiny[tiny.index("--size") + 1] = "16"
    run = tmp_path / "run"
    args = ["train", "--split", str(split), "--videos", str(out), "--out", str(run), *tiny, "--epochs", "1"]
    result = CliRunner().invoke(cli, [*args, "--method", "baseline"])
    assert result.exit_code == 0, result.output
    preflight = json.loads((run / "preflight.json").read_text())
    assert preflight["name_template"] == "{clip_id}.mp4"
    assert all(s["usable"] == s["total"] for s in preflight["sets"].values()), preflight


@pytest.mark.real_data
def test_rounding_the_seconds_would_misname_628_validation_clips(real_store):
    """docs/videos.md and the downloader preset: the tools truncate (41.5 s is 000041); Python's round()
    would give 000042 for 628 of the 31,171 validation clips."""
    from hvucontracts.splitfolder import clip_filename

    with open_store(real_store, read_only=True) as con:
        rows = con.execute("SELECT youtube_id, time_start, time_end FROM clips").fetchall()
    assert len(rows) == 31_171
    misnamed = 0
    for youtube_id, start, end in rows:
        row = {"youtube_id": youtube_id, "clip_id": "", "action": "", "time_start": start, "time_end": end}
        rounded = f"{youtube_id}_{round(start):06d}_{round(end):06d}_.mp4"
        misnamed += clip_filename(row, "downloader") != rounded
    assert misnamed == 628


# --------------------------------------------------------------------------- what a review found
def test_a_template_without_times_names_whole_videos_and_can_use_the_action(video_store, tmp_path):
    rows = _clip_rows()
    root = tmp_path / "by_class"
    # a folder per class (Kinetics style): {action}/{youtube_id}.mp4, whole videos
    tags, video, start, end = rows[0]
    write_video(root / tags.split("|")[0] / f"{video}.mp4", end + 1.0)
    result = _scan(video_store, str(root), "--name-template", "{action}/{youtube_id}.mp4", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    # the file is read both ways (its stem is the video's id): one whole video, no ambiguity
    assert doc["scan"]["by_scheme"] == {"template": 1, "youtube-id": 1}
    assert doc["scan"]["name_template"] == "{action}/{youtube_id}.mp4"
    assert not [p for p in doc["problems"] if p["kind"] == "two clips"]
    with open_store(video_store, read_only=True) as con:
        rows = con.execute("SELECT scheme, whole_video FROM clip_videos ORDER BY scheme").fetchall()
    assert rows == [("template", True), ("youtube-id", True)]
    # a rescan without --name-template keeps the folder's template
    again = json.loads(_scan(video_store, str(root), "--format", "json").stdout)
    assert again["scan"]["by_scheme"] == {"template": 1, "youtube-id": 1}
    scanned = _scan(video_store, str(root), "--name-template", "scanned")
    assert scanned.exit_code == 3 and "cannot be used to scan" in scanned.stderr


def test_overlapping_folders_are_refused_and_a_folder_can_be_forgotten(video_store, tmp_path):
    root = tmp_path / "downloads"
    write_downloads(root)
    assert _scan(video_store, str(root)).exit_code == 0
    inner = _scan(video_store, str(root / "sub"))
    assert inner.exit_code == 3 and "lies inside" in inner.stderr and "videos forget" in inner.stderr
    outer = _scan(video_store, str(tmp_path))
    assert outer.exit_code == 3 and "lies inside" in outer.stderr
    forget = CliRunner().invoke(cli, ["videos", "forget", str(root), "--db", str(video_store)])
    assert forget.exit_code == 0, forget.output
    with open_store(video_store, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM video_files").fetchone()[0] == 0
    assert any(root.rglob("*.mp4"))  # forgetting touches no file
    unknown = CliRunner().invoke(cli, ["videos", "forget", str(tmp_path / "never"), "--db", str(video_store)])
    assert unknown.exit_code == 3 and "never scanned" in unknown.stderr


def test_a_folder_emptied_since_its_scan_records_that_its_files_are_gone(video_store, tmp_path):
    root = tmp_path / "downloads"
    write_downloads(root)
    assert _scan(video_store, str(root)).exit_code == 0
    for path in [p for p in root.rglob("*") if p.is_file()]:
        path.unlink()
    result = _scan(video_store, str(root), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scan"]["changes"]["removed"] == 26
    assert _usable_clip_ids(video_store) == set()


def test_links_to_files_are_read_and_prepared_folders_are_skipped(video_store, tmp_path):
    real = tmp_path / "store_of_files"
    expect = write_downloads(real)
    links = tmp_path / "links"
    links.mkdir()
    for path in real.rglob("*.mp4"):
        (links / path.name).symlink_to(path)
    (links / "loop").symlink_to(links)  # a link to a folder is not followed
    prepared = links / "prepared"
    prepared.mkdir()
    (prepared / "videos.json").write_text(
        json.dumps({"format": "hvuaudit-videos/1", "name_template": "{clip_id}.mp4"})
    )
    write_video(prepared / f"{sorted(expect['usable'])[0]}.mp4", 2.0)
    result = _scan(video_store, str(links), "--format", "json")
    assert result.exit_code == 0, result.output
    scan = json.loads(result.stdout)["scan"]
    assert scan["linked_folders"] == 1 and scan["prepared_folders"] == [str(prepared.resolve())]
    assert (
        scan["video_files"] == 26
    )  # the 24 clips' files and the 2 names of no clip; the prepared one skipped
    # unprobed, only the empty file is known to be broken
    unprobed = (expect["usable"] | expect["too short"] | expect["broken"]) - expect["empty"]
    assert _usable_clip_ids(video_store) == unprobed


def test_a_six_digit_name_that_fits_two_clips_is_listed(tmp_path):
    # one video with a clip at 40.5-42.5 s and one at 405-425 s: ID_000405_000425.mp4 fits both readings
    lines = [
        "Tags,youtube_id,time_start,time_end",
        "run|park,abcdefghijk,40.5,42.5",
        "run|park,abcdefghijk,405.0,425.0",
    ]
    (tmp_path / "HVU_Val_two.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "cats.csv").write_text(CATEGORIES)
    db = tmp_path / "two.duckdb"
    ingest([tmp_path / "HVU_Val_two.csv"], tmp_path / "cats.csv", db=db)
    root = tmp_path / "dl"
    write_video(root / "abcdefghijk_000405_000425.mp4", 2.0)
    doc = json.loads(_scan(db, str(root), "--format", "json").stdout)
    two = [p for p in doc["problems"] if p["kind"] == "two clips"]
    assert len(two) == 1 and "mmaction" in two[0]["detail"] and "downloader-untrimmed" in two[0]["detail"]


def test_the_probe_summary_counts_what_the_probe_found(video_store, tmp_path):
    root = tmp_path / "downloads"
    expect = write_downloads(root)
    doc = json.loads(_scan(video_store, str(root), "--probe", "--format", "json").stdout)
    assert doc["scan"]["usable_clips"] == len(expect["usable"]) == doc["coverage"]["subset"][0]["usable"]
    kinds = {p["kind"] for p in doc["problems"]}
    assert doc["scan"]["problems"] == {k: sum(p["kind"] == k for p in doc["problems"]) for k in kinds}


def test_verify_says_when_the_scan_changed_under_a_split(scanned_split, video_store):
    split, root, _expect = scanned_split
    ok = CliRunner().invoke(cli, ["split", "verify", str(split), "--db", str(video_store)])
    assert ok.exit_code == 0, ok.output
    used = next(r for side in _split_rows(split).values() for r in side)
    (root / used["video"]).rename(root / "moved_away.bin")
    assert _scan(video_store, str(root)).exit_code == 0
    changed = CliRunner().invoke(cli, ["split", "verify", str(split), "--db", str(video_store)])
    assert changed.exit_code == 3
    assert (
        "video files are those the split recorded" in changed.output and "rebuild the split" in changed.output
    )


def test_prepare_refuses_to_write_inside_its_inputs_and_reencodes_a_changed_source(scanned_split, tmp_path):
    split, root, expect = scanned_split
    inside = _prepare(split, root / "prepared")
    assert inside.exit_code == 5 and "lies inside" in inside.stderr and not (root / "prepared").exists()
    assert _prepare(split, split / "prepared").exit_code == 5
    out = tmp_path / "prepared"
    assert _prepare(split, out, "--workers", "0").exit_code == 0
    row = next(r for side in _split_rows(split).values() for r in side if r["video_whole"] == "0")
    write_video(root / row["video"], 2.0, fps=8)  # the same name, another download
    again = _prepare(split, out, "--workers", "0")
    assert again.exit_code == 0, again.output
    assert f"1 clip(s) prepared, {len(expect['usable']) - 1} already there" in again.stderr
    assert len(_frames(out / f"{row['clip_id']}.mp4")[0]) == 16  # re-encoded from the 8-fps file


def test_prepare_exits_3_when_no_clip_could_be_prepared(scanned_split, tmp_path):
    split, root, _expect = scanned_split
    for path in list(root.rglob("*.mp4")):
        path.write_bytes(b"")
    result = _prepare(split, tmp_path / "prepared", "--workers", "0")
    assert result.exit_code == 3 and "no clip of" in result.stderr
    assert (tmp_path / "prepared" / "prepare_problems.csv").is_file()


def test_two_splits_of_the_same_clips_share_one_prepared_folder(scanned_split, video_store, tmp_path):
    split, _root, expect = scanned_split
    out = tmp_path / "prepared"
    assert _prepare(split, out, "--workers", "0").exit_code == 0
    other = tmp_path / "si1"
    args = ["split", "--variant", "1", "--min-videos", "5", "--select-fraction", "0.2", "--require-videos"]
    assert CliRunner().invoke(cli, [*args, "--out", str(other), "--db", str(video_store)]).exit_code == 0
    shared = _prepare(other, out, "--workers", "0")
    assert shared.exit_code == 0, shared.output
    assert f"0 clip(s) prepared, {len(expect['usable'])} already there" in shared.stderr


def test_extra_evaluation_sets_hold_only_clips_with_a_file_under_require_videos(tmp_path):
    rows = _clip_rows()
    lines = ["Tags,youtube_id,time_start,time_end"] + [f"{t},{v},{s},{e}" for t, v, s, e in rows]
    (tmp_path / "HVU_Train_videos.csv").write_text("\n".join(lines) + "\n")
    extra = [
        "Tags,youtube_id,time_start,time_end",
        "run|park,uuuuuuuuuu1,1.5,3.5",
        "swim|pool,uuuuuuuuuu2,1.5,3.5",
    ]
    (tmp_path / "uniform.csv").write_text("\n".join(extra) + "\n")
    (tmp_path / "cats.csv").write_text(CATEGORIES + "lake,scene\n")
    db = tmp_path / "hvu.duckdb"
    ingest([tmp_path / "HVU_Train_videos.csv"], tmp_path / "cats.csv", db=db)
    ingest([tmp_path / "uniform.csv"], None, db=db, subset="uniform")
    root = tmp_path / "downloads"
    write_downloads(root)
    write_video(root / "uuuuuuuuuu1_000015_000035.mp4", 2.0)  # one of the two uniform clips was downloaded
    assert _scan(db, str(root)).exit_code == 0
    out = tmp_path / "si2"
    args = ["split", "--variant", "2", "--min-videos", "5", "--select-fraction", "0.2", "--subset", "train"]
    result = CliRunner().invoke(
        cli, [*args, "--eval-subset", "uniform", "--require-videos", "--out", str(out), "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    with (out / "eval_uniform.csv").open(newline="") as handle:
        assert [r["clip_id"] for r in csv.DictReader(handle)] == ["uuuuuuuuuu1_1.5_3.5"]


def test_coverage_and_problems_of_a_store_never_scanned_exit_3_naming_the_command(video_store):
    for command in ("coverage", "problems"):
        result = CliRunner().invoke(cli, ["videos", command, "--db", str(video_store)])
        assert result.exit_code == 3 and f"videos {command}: this store knows no video files" in result.stderr
        assert "hvuaudit videos scan DIR --probe" in result.stderr
