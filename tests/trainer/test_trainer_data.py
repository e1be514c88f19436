"""The trainer's data side: the split-folder contract, file names, videos directory, pre-flight, decoding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hvucontracts.splitfolder import SplitFolderError as SplitError
from hvucontracts.splitfolder import (
    VideosError,
    check_template,
    clip_filename,
    load_split,
    resolve_name_template,
)
from tests.trainer_fixtures import LABELS, make_split, write_clip
from trainer.dataset import ClipDataset, ClipSettings, collate_clips, make_loader
from trainer.decoding import decode_clip
from trainer.videos import PreflightError, build_table, preflight, require_usable, resolve_videos_dir

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def split_folder(tmp_path_factory) -> tuple[Path, Path]:
    return make_split(tmp_path_factory.mktemp("data"), n_train=9, n_val=6, extra_sets={"uniform": 3})


# --------------------------------------------------------------------------- split folder
def test_load_split_reads_sets_labels_and_eval_sets(split_folder):
    split = load_split(split_folder[0])
    assert split.labels == LABELS
    assert split.eval_sets == ("val", "uniform")
    assert split.sets["train"].height == 9 and split.sets["uniform"].height == 3
    assert split.sets["train"]["time_start"].dtype.is_float()


def _copy_split(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda d: (d / "train.csv").unlink(), "train.csv: missing"),
        (lambda d: (d / "labels.json").unlink(), "labels.json: missing"),
        (
            lambda d: (d / "manifest.json").write_text('{"format": "hvuaudit-split/0"}'),
            "format is 'hvuaudit-split/0'",
        ),
        (lambda d: (d / "manifest.json").write_text("{oops"), "not valid JSON"),
        (lambda d: (d / "val.csv").write_text("clip_id,action\nx,jump\n"), "lacks column(s) youtube_id"),
        (
            lambda d: (d / "val.csv").write_text(
                (d / "val.csv").read_text().replace(",jump,", ",fly,", 1),
            ),
            "has action 'fly', which labels.json does not list",
        ),
        (
            lambda d: (d / "train.csv").write_text(
                (d / "train.csv").read_text().replace("0.0,1.0", "zero,1.0", 1),
            ),
            "row 2 has time_start 'zero'",
        ),
        (
            lambda d: (d / "labels.json").write_text(json.dumps({"action": ["a"], "scene": []})),
            "'object' must be",
        ),
        (
            lambda d: (d / "manifest.json").write_text(
                json.dumps({"format": "hvuaudit-split/1", "eval_sets": {"odd": "nope.csv"}})
            ),
            "nope.csv: missing",
        ),
    ],
)
def test_bad_split_folders_are_refused_with_the_file_named(split_folder, tmp_path, breakage, message):
    broken = _copy_split(split_folder[0], tmp_path / "broken")
    breakage(broken)
    with pytest.raises(SplitError) as err:
        load_split(broken)
    assert message in str(err.value)
    assert err.value.exit_code == 3


def test_missing_split_folder_says_how_to_make_one(tmp_path):
    with pytest.raises(SplitError, match="does not exist; write one with `hvuaudit split"):
        load_split(tmp_path / "nope")


# --------------------------------------------------------------------------- file names
ROW = {"youtube_id": "abc", "clip_id": "c1", "action": "jump", "time_start": 40.5, "time_end": 42.5}


def test_name_template_presets():
    assert clip_filename(ROW, "mmaction") == "abc_000405_000425.mp4"
    # HVU-Downloader: '%06d' % 40.5 truncates, and the trimmed clip carries a trailing underscore
    assert clip_filename(ROW, "downloader") == "abc_000040_000042_.mp4"
    assert (
        clip_filename({**ROW, "time_start": 41.5, "time_end": 43.5}, "downloader") == "abc_000041_000043_.mp4"
    )
    # mmaction2 truncates tenths too: int(2.35 * 10) is 23, where round() gives 24
    assert clip_filename({**ROW, "time_start": 2.35, "time_end": 4.35}, "mmaction") == "abc_000023_000043.mp4"
    assert clip_filename(ROW, "raw") == "abc_40.5_42.5.mp4"
    assert clip_filename({**ROW, "time_start": 1.0, "time_end": 3.0}, "raw") == "abc_1.0_3.0.mp4"


def test_custom_name_template_and_its_errors():
    assert clip_filename(ROW, "{action}/{youtube_id}_{start_s}.mkv") == "jump/abc_40.mkv"  # 40.5 truncated
    with pytest.raises(VideosError, match="does not work .*KeyError.*its fields are"):
        check_template("{video}.mp4")
    with pytest.raises(VideosError, match="neither a preset"):
        check_template("kinetics")


def test_videos_dir_resolution_order(tmp_path):
    a, b, c = (tmp_path / n for n in "abc")
    for d in (a, b, c):
        d.mkdir()
    manifest = {"videos": {"dir": str(c), "name_template": "raw"}}
    env = {"HVUAUDIT_VIDEOS": str(b)}
    assert resolve_videos_dir(str(a), manifest, env=env) == (a, "--videos")
    assert resolve_videos_dir(None, manifest, env=env) == (b, "$HVUAUDIT_VIDEOS")
    assert resolve_videos_dir(None, manifest, env={}) == (c, "the split manifest (videos.dir)")
    assert resolve_name_template(None, manifest) == "raw"
    assert resolve_name_template("downloader", manifest) == "downloader"
    assert resolve_name_template(None, {}) == "mmaction"


def test_videos_dir_errors_name_the_three_ways(tmp_path):
    with pytest.raises(VideosError) as err:
        resolve_videos_dir(None, {}, env={})
    assert "--videos DIR" in str(err.value) and "HVUAUDIT_VIDEOS" in str(err.value)
    assert "hvuaudit split --videos DIR" in str(err.value)
    with pytest.raises(VideosError, match=r"nowhere \(from \$HVUAUDIT_VIDEOS\) does not exist"):
        resolve_videos_dir(None, {}, env={"HVUAUDIT_VIDEOS": str(tmp_path / "nowhere")})


# --------------------------------------------------------------------------- pre-flight
def test_preflight_counts_missing_and_unreadable(split_folder, tmp_path):
    split_dir, videos = split_folder
    split = load_split(split_dir)
    table = build_table(split.sets["val"], split.labels, videos, "mmaction")
    broken = tmp_path / "videos"
    broken.mkdir()
    for i, p in enumerate(table.path):
        if i == 0:
            continue  # missing
        data = Path(p).read_bytes()
        (broken / Path(p).name).write_bytes(data[: len(data) // 3] if i == 1 else data)  # 1: truncated
    (broken / Path(table.path[2]).name).write_bytes(b"not a video at all")
    table = build_table(split.sets["val"], split.labels, broken, "mmaction")
    checks = preflight({"val": table})
    c = checks["val"]
    assert c.total == 6 and c.n_usable == 3
    assert [m[0] for m in c.missing] == [table.clip_id[0]]
    assert sorted(u[0] for u in c.unreadable) == sorted(table.clip_id[1:3])
    assert c.usable.tolist() == [False, False, False, True, True, True]
    with pytest.raises(PreflightError) as err:
        require_usable(
            checks, min_found=0.9, videos_dir=broken, template="mmaction", report=tmp_path / "r.csv"
        )
    msg = str(err.value)
    assert "only 3 of the 6 val clips (50%)" in msg and "1 missing, 2 unreadable" in msg
    assert str(tmp_path / "r.csv") in msg and "--min-found" in msg
    require_usable(checks, min_found=0.5, videos_dir=broken, template="mmaction", report=tmp_path / "r.csv")


# --------------------------------------------------------------------------- decoding
def test_decode_clip_takes_the_centre_or_a_random_start_after_seeking(tmp_path):
    path = tmp_path / "long.mp4"
    write_clip(path, n_frames=16, size=48)
    centre = decode_clip(str(path), clip_len=4, frame_stride=2, short_side=(32, 32), rng=None)
    assert centre.shape == (4, 32, 32, 3) and centre.dtype == np.uint8
    # n=16, span=7: the centre clip is frames 4, 6, 8, 10 (grey level 10 + 15 i)
    levels = np.median(centre[:, 20:, :, 0].reshape(4, -1), axis=1)
    np.testing.assert_allclose(levels, [70, 100, 130, 160], atol=6)
    starts = set()
    for seed in range(8):
        clip = decode_clip(
            str(path), clip_len=4, frame_stride=2, short_side=(32, 40), rng=np.random.default_rng(seed)
        )
        level = np.median(clip[:, 20:, :, 0].reshape(4, -1), axis=1)
        first = round((level[0] - 10) / 15)
        np.testing.assert_allclose(level, 10 + 15 * (first + 2 * np.arange(4)), atol=6)
        starts.add(first)
        assert clip.shape[1] == 40  # 48 px scaled down to the upper bound
    assert len(starts) > 2


def test_short_videos_repeat_their_last_frame(tmp_path):
    path = tmp_path / "short.mp4"
    write_clip(path, n_frames=3)
    clip = decode_clip(str(path), clip_len=6, frame_stride=1, short_side=(32, 32), rng=None)
    level = np.median(clip[:, 20:, :, 0].reshape(6, -1), axis=1)
    np.testing.assert_allclose(level, [10, 25, 40, 40, 40, 40], atol=6)


def test_dataset_augments_deterministically_and_skips_broken_clips(split_folder, tmp_path):
    split_dir, videos = split_folder
    split = load_split(split_dir)
    table = build_table(split.sets["train"], split.labels, videos, "mmaction")
    table.path[3] = str(tmp_path / "vanished.mp4")  # disappears after the pre-flight
    settings = ClipSettings(clip_len=8, frame_stride=1, size=32, min_crop_scale=0.5)
    ds = ClipDataset(table, n_scenes=4, n_objects=5, settings=settings, train=True, seed=7)
    a, b, c = ds[(1, 0)], ds[(1, 0)], ds[(2, 0)]
    assert a["video"].shape == (3, 8, 32, 32) and a["video"].dtype == torch.uint8
    assert torch.equal(a["video"], b["video"])
    assert not torch.equal(a["video"], c["video"])  # another epoch, another crop
    assert a["scene"].tolist() == [1.0, 0.0, 0.0, 1.0]  # beach|gym
    assert ds[(1, 3)] is None
    loader = make_loader(ds, batch_size=4, workers=0, seed=7, shuffle=True)
    loader.sampler.set_epoch(1)
    batches = list(loader)
    assert sum(b["skipped"] for b in batches) == 1
    assert sum(b["n"] for b in batches) == 8
    assert batches[0]["video"].shape[1:] == (3, 8, 32, 32)
    assert collate_clips([None, None]) == {"skipped": 2, "n": 0}


def test_loader_order_and_augmentation_do_not_depend_on_workers(split_folder):
    split_dir, videos = split_folder
    split = load_split(split_dir)
    table = build_table(split.sets["train"], split.labels, videos, "mmaction")
    ds = ClipDataset(table, n_scenes=4, n_objects=5, settings=ClipSettings(8, 1, 32), train=True, seed=3)
    runs = []
    for workers in (0, 2):
        loader = make_loader(ds, batch_size=3, workers=workers, seed=3, shuffle=True)
        loader.sampler.set_epoch(2)
        runs.append([(b["index"], b["video"]) for b in loader])
    for (i0, v0), (i1, v1) in zip(*runs, strict=True):
        assert torch.equal(i0, i1) and torch.equal(v0, v1)
