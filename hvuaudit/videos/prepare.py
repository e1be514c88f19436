"""``hvuaudit videos prepare``: re-encode a split's clips for training: cut, scaled, frequent keyframes.

HVU downloads are 640×360 or larger, trimmed by ffmpeg with x264's default of a keyframe every 250
frames, so decoding a 16-frame clip means decoding from the keyframe before it; whole YouTube
videos are worse. Each
clip of the split (every set, each clip once) is cut to its own times, scaled so its short side
is ``short_side``, optionally resampled to ``fps``, and encoded with a keyframe every ``gop``
frames, as ``OUT/<clip_id>.mp4``. ``OUT/videos.json`` names the files
(:mod:`hvucontracts.videofolder`), so ``train --videos OUT`` finds them for any split of these
clips.

Parallel (one process per ``workers``, each encoder single-threaded), resumable (a clip whose file
exists is done: files are written to a temporary name and renamed), and it never touches a file
it did not write: ``OUT`` must be empty, or a folder this command made from the same settings.
A clip that fails is listed in ``prepare_problems.csv`` and skipped; a full disk stops the run
with the finished files kept. PyAV is imported in the worker processes only.
"""

from __future__ import annotations

import csv
import errno
import io
import itertools
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from hvuaudit import __version__
from hvuaudit.errors import InputError
from hvucontracts.errors import ConflictError, system_refusal
from hvucontracts.files import (
    TMP_TAG,
    foreign_entries,
    read_owner_marker,
    refuse_protected,
    write_bytes_atomically,
    write_json_atomically,
    write_owner_marker,
)
from hvucontracts.splitfolder import (
    VideosError,
    clip_filename,
    clip_window,
    load_split,
    recorded_videos,
    resolve_name_template,
)
from hvucontracts.videofolder import (
    PREPARED_LOG,
    PREPARED_TEMPLATE,
    PROBLEMS,
    VIDEOS_FORMAT,
    VIDEOS_KIND,
    VIDEOS_MANIFEST,
    read_video_folder,
)

NO_SPACE = "no space left on the device"  # what a worker reports for a full disk: the run stops


@dataclass(frozen=True)
class PrepareSettings:
    """How each clip is re-encoded (recorded in videos.json; a resumed run must use the same)."""

    short_side: int = 128
    fps: float | None = None  # None: the source's frame rate
    gop: int = 16  # frames between keyframes

    def check(self) -> None:
        if self.short_side < 16 or self.short_side % 2:
            raise InputError(f"--short-side must be an even number of at least 16 (got {self.short_side})")
        if self.fps is not None and not 1 <= self.fps <= 120:
            raise InputError(f"--fps must be between 1 and 120 (got {self.fps})")
        if not 1 <= self.gop <= 300:
            raise InputError(f"--gop must be between 1 and 300 frames (got {self.gop})")


@dataclass(frozen=True)
class PrepareReport:
    out: Path
    clips: int
    prepared: int  # encoded by this run
    reused: int  # already there from an earlier run
    failed: list[tuple[str, str, str]]  # (clip_id, source, problem)


@dataclass(frozen=True)
class _Job:
    clip_id: str
    source: str
    window: tuple[float, float] | None
    target: str


def _jobs(
    split_dir: Path, out: Path, videos: str | None, name_template: str | None
) -> tuple[list[_Job], Path]:
    split = load_split(split_dir)
    given = videos or recorded_videos(split.manifest).get("dir")
    if not given:
        raise VideosError(
            f"{split.dir} records no videos folder",
            hint="pass --videos DIR (the downloads), or build the split from a scanned store "
            "(`hvuaudit videos scan`)",
        )
    videos_dir = Path(given).expanduser()
    if not videos_dir.is_dir():
        raise VideosError(f"videos folder {videos_dir} does not exist", hint="pass --videos DIR")
    template = resolve_name_template(name_template, split.manifest, videos_dir)
    seen: set[str] = set()
    jobs = []
    for frame in split.sets.values():
        for row in frame.iter_rows(named=True):
            if row["clip_id"] in seen:
                continue
            seen.add(row["clip_id"])
            name = clip_filename(row, template)
            jobs.append(
                _Job(
                    clip_id=row["clip_id"],
                    source=str(videos_dir / name) if name else "",
                    window=clip_window(row, template),
                    target=str(out / PREPARED_TEMPLATE.format(clip_id=row["clip_id"])),
                )
            )
    return jobs, videos_dir


def _check_out(out: Path, planned: set[str], settings: PrepareSettings, inputs: list[Path]) -> set[str]:
    """``out`` must be absent, empty, or a prepared folder of the same settings holding only files that
    `videos prepare` wrote there or would write now; it may not lie inside the split or the downloads.
    Returns the files an earlier run wrote there (its marker)."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ConflictError(f"{out} is not a folder", hint="choose another --out")
    target = out.resolve()
    for folder in inputs:
        if target == folder.resolve() or target.is_relative_to(folder.resolve()):
            raise ConflictError(
                f"--out {out} lies inside {folder}, which this command reads",
                hint="prepared clips inside the downloads would be scanned as downloads, and inside the "
                "split folder they would block its replacement; choose a folder elsewhere",
            )
    if out.is_dir():
        refuse_protected(out, inputs)
    if not out.is_dir() or not any(out.iterdir()):
        return set()
    marker = read_owner_marker(out)
    if marker is None or marker.get("kind") != VIDEOS_KIND:
        listing = ", ".join(sorted(p.name for p in out.iterdir())[:10])
        raise ConflictError(
            f"{out} is not empty and was not made by `hvuaudit videos prepare`; it holds: {listing}",
            hint="choose an empty or new --out",
        )
    earlier = set(marker["files"])
    foreign = [
        f for f in foreign_entries(out, {**marker, "files": sorted(earlier | planned)}) if TMP_TAG not in f
    ]
    if foreign:
        raise ConflictError(
            f"{out} holds {len(foreign)} file(s) that `videos prepare` did not write: "
            f"{', '.join(foreign[:10])}",
            hint="move them elsewhere, or choose another --out",
        )
    manifest = read_video_folder(out)
    if manifest is not None and manifest.get("settings") != asdict(settings):
        raise ConflictError(
            f"{out} was prepared with other settings ({manifest.get('settings')}); resuming would mix two "
            "encodings",
            hint="pass the same --short-side, --fps and --gop, or choose another --out",
        )
    return earlier


def _source_stamp(path: str) -> tuple[int, float] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime


def _read_done(out: Path) -> dict[str, tuple[str, int, float]]:
    """clip_id -> (source, size, mtime) of the clips an earlier run finished (prepared.csv; a line torn by
    a kill is ignored, and its clip is prepared again)."""
    done: dict[str, tuple[str, int, float]] = {}
    path = out / PREPARED_LOG
    if not path.is_file():
        return done
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        for row in csv.reader(handle):
            try:
                clip_id, source, size, mtime = row
                done[clip_id] = (source, int(size), float(mtime))
            except ValueError:
                continue
    return done


def prepare_split(
    split_dir: Path | str,
    out: Path | str,
    *,
    settings: PrepareSettings = PrepareSettings(),
    videos: str | None = None,
    name_template: str | None = None,
    workers: int = 2,
    on_clip: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> PrepareReport:
    """Re-encode every clip of the split folder into ``out`` (see the module docstring); ``workers`` 0
    encodes in this process. A clip is done when its file exists and ``prepared.csv`` says it was made
    from the same source file (path, size and mtime); any other clip is (re-)encoded."""
    settings.check()
    out = Path(out)
    jobs, videos_dir = _jobs(Path(split_dir), out, videos, name_template)
    planned = {Path(job.target).name for job in jobs} | {VIDEOS_MANIFEST, PROBLEMS, PREPARED_LOG}
    earlier = _check_out(out, planned, settings, inputs=[Path(split_dir), videos_dir])
    out.mkdir(parents=True, exist_ok=True)
    for leftover in out.glob(f".*{TMP_TAG}*"):  # a killed run's half-written files
        leftover.unlink(missing_ok=True)
    # the marker lists every file this and earlier runs may put here, so a run cut short leaves nothing
    # foreign, and the clips of several splits can share the folder
    write_owner_marker(out, VIDEOS_KIND, sorted(earlier | planned))
    done = _read_done(out)
    todo = [
        job
        for job in jobs
        if not (
            Path(job.target).is_file()
            and job.clip_id in done
            and done[job.clip_id] == (job.source, *(_source_stamp(job.source) or (-1, -1.0)))
        )
    ]
    reused = len(jobs) - len(todo)
    if on_total is not None:
        on_total(len(jobs))
    if on_clip is not None and reused:
        on_clip(reused)
    failed: list[tuple[str, str, str]] = []
    full_disk: OSError | None = None
    with (out / PREPARED_LOG).open("a", newline="", encoding="utf-8") as log:
        record = csv.writer(log)
        for job, problem in _encode_all(todo, settings, workers):
            if problem == NO_SPACE:
                full_disk = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), job.target)
                break
            if problem is not None:
                failed.append((job.clip_id, job.source, problem))
            else:
                stamp = _source_stamp(job.source) or (-1, -1.0)
                record.writerow([job.clip_id, job.source, stamp[0], stamp[1]])
                log.flush()
            if on_clip is not None:
                on_clip(1)
    failed.sort()
    _write_records(out, Path(split_dir), videos_dir, settings, jobs, failed)
    ready = sum(Path(job.target).is_file() for job in jobs)
    if full_disk is not None:  # exit 7; every finished file is kept, and a rerun goes on from there
        raise (
            system_refusal(
                full_disk, f"videos prepare stopped with {ready:,} of {len(jobs):,} clips in {out}"
            )
            or full_disk
        )
    if jobs and ready == 0:
        raise InputError(
            f"no clip of {split_dir} could be prepared ({len(failed):,} failed; see {out / PROBLEMS})",
            hint="check the videos folder (--videos) and the names (--name-template), or scan it with "
            "`hvuaudit videos scan --probe`",
        )
    return PrepareReport(
        out=out, clips=len(jobs), prepared=len(todo) - len(failed), reused=reused, failed=failed
    )


def _encode_all(
    jobs: list[_Job], settings: PrepareSettings, workers: int
) -> Iterator[tuple[_Job, str | None]]:
    """(job, problem) as each clip is done: in ``workers`` spawned processes, or here when it is 0. Closing
    the generator early (a full disk) starts no more clips and waits for the ones already running."""
    if workers == 0:
        for job in jobs:
            yield job, encode_clip(job, settings)
        return
    context = multiprocessing.get_context("spawn")  # no fork of a parent holding DuckDB or rich threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        queue = iter(jobs)
        pending = {
            pool.submit(encode_clip, job, settings): job for job in itertools.islice(queue, 4 * workers)
        }
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job = pending.pop(future)
                    yield job, future.result()
                    following = next(queue, None)
                    if following is not None:
                        pending[pool.submit(encode_clip, following, settings)] = following
        finally:  # stopped early: clips not started yet are not started
            for future in pending:
                future.cancel()


def _write_records(
    out: Path,
    split_dir: Path,
    videos_dir: Path,
    settings: PrepareSettings,
    jobs: list[_Job],
    failed: list[tuple[str, str, str]],
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["clip_id", "source", "problem"])
    writer.writerows(failed)
    write_bytes_atomically(out / PROBLEMS, buffer.getvalue().encode("utf-8"))
    write_json_atomically(
        out / VIDEOS_MANIFEST,
        {
            "format": VIDEOS_FORMAT,
            "name_template": PREPARED_TEMPLATE,
            "settings": asdict(settings),
            "split": str(split_dir.resolve()),
            "videos": str(videos_dir.resolve()),
            "clips": len(jobs),
            "prepared": sum(Path(job.target).is_file() for job in jobs),
            "failed": len(failed),
            "tool": f"hvuaudit {__version__}",
        },
    )


# --------------------------------------------------------------------------- one clip (a worker process)
def encode_clip(job: _Job, settings: PrepareSettings) -> str | None:
    """Cut, scale and re-encode one clip to ``job.target`` (atomically); None, or the problem."""
    import av

    if not job.source or not os.path.isfile(job.source):
        return f"no file {job.source or '(none recorded for this clip)'}"
    target = Path(job.target)
    tmp = target.with_name(f".{target.name}{TMP_TAG}{os.getpid()}.mp4")
    try:
        frames = _write(av, job, settings, tmp)
        if frames == 0:
            tmp.unlink(missing_ok=True)
            return "no frame in the clip's times"
        os.replace(tmp, target)
        return None
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            return NO_SPACE
        return f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # FFmpeg and codec errors: this clip is listed and skipped
        tmp.unlink(missing_ok=True)
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _write(av: Any, job: _Job, settings: PrepareSettings, tmp: Path) -> int:
    """Encode the clip's frames into ``tmp``; the number of frames written."""
    with av.open(job.source) as source:
        stream = source.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        fps = Fraction(settings.fps).limit_denominator(1001) if settings.fps else Fraction(rate)
        start, end = job.window if job.window else (0.0, float("inf"))
        if job.window and start > 0:
            source.seek(int(start / stream.time_base), stream=stream, backward=True)
        width, height = stream.codec_context.width, stream.codec_context.height
        scale = settings.short_side / min(width, height)
        out_w, out_h = (max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2))
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        written = 0
        with av.open(str(tmp), "w", format="mp4") as target:
            encoder = target.add_stream(codec, rate=fps)
            encoder.width, encoder.height, encoder.pix_fmt = out_w, out_h, "yuv420p"
            encoder.codec_context.gop_size = settings.gop
            encoder.thread_count = 1  # one process per clip already fills the cores
            if codec == "libx264":
                encoder.options = {"preset": "veryfast", "crf": "20", "g": str(settings.gop)}
            first: float | None = None
            for frame in source.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base)
                if t < start - 1e-6:
                    continue
                if t >= end - 1e-6:
                    break
                first = t if first is None else first
                # resampling: every output slot up to this frame's time shows this frame
                while written <= (t - first) * fps + 1e-6:
                    image = frame.reformat(width=out_w, height=out_h, format="yuv420p")
                    image.pts, image.time_base = written, 1 / fps
                    for packet in encoder.encode(image):
                        target.mux(packet)
                    written += 1
            if job.window and first is not None:
                # hold the last frame to the end of the clip's times, so the clip keeps its duration
                while written < round((end - first) * fps):
                    image.pts = written
                    for packet in encoder.encode(image):
                        target.mux(packet)
                    written += 1
            for packet in encoder.encode():
                target.mux(packet)
    return written
