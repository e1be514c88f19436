"""Synthetic HVU-format annotations, for scale tests and benchmarks (not a stand-in for real data).

Sits before ingest: it writes files in exactly the HVU v1.0 format
(``Tags,youtube_id,time_start,time_end`` and ``Tag,Category``) so the normal
pipeline reads them like the real thing. The structure mimics HVU where it
matters for the audit: Zipf-like tag popularity, 1–3 actions per clip, about
half the clips without a scene, each action tied to a few preferred scenes,
and most actions with an object that almost always appears with them (a
necessary condition) while scenes rarely are. Fully vectorised (numpy +
polars), deterministic for a seed; 500k clips take a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from hvuaudit.errors import InputError
from hvucontracts.files import check_replaceable, remove_owned, write_atomically, write_owner_marker

_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))


@dataclass(frozen=True)
class SynthConfig:
    """Sizes of the synthetic vocabulary and the strength of its structure."""

    clips: int = 10_000
    seed: int = 0
    val_fraction: float = 0.1
    actions: int = 300
    scenes: int = 120
    objects: int = 800
    events: int = 40
    attributes: int = 60
    concepts: int = 150
    p_scene: float = 0.5  # share of clips that have a scene at all
    p_preferred_scene: float = 0.8  # a clip's scene is one of its action's 3 preferred scenes
    p_necessary_object_action: float = 0.85  # share of actions that have a necessary object
    p_necessary_object: float = 0.97  # how often such an action's clips show that object
    zipf_exponent: float = 1.1


@dataclass(frozen=True)
class SynthFiles:
    annotations: list[Path]
    categories: Path
    clips: int


def _zipf_choice(rng: np.random.Generator, n_items: int, size: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n_items + 1) ** exponent
    return rng.choice(n_items, size=size, p=weights / weights.sum())


SYNTH_KIND = "synthetic annotations"  # the kind in the output folder's ownership marker
SYNTH_FILES = ("HVU_Train_Synth.csv", "HVU_Val_Synth.csv", "HVU_Tags_Categories_Synth.csv")


def generate_annotations(config: SynthConfig, out_dir: Path | str, *, force: bool = False) -> SynthFiles:
    """Write the categories CSV and train/val annotation CSVs into ``out_dir``.

    ``out_dir`` must be absent or empty, or (with ``force``) a folder of synthetic
    annotations that this function wrote and that holds nothing else.
    """
    if config.clips < 1:
        raise InputError(f"--clips must be at least 1 (got {config.clips})")
    if not 0.0 <= config.val_fraction < 1.0:
        raise InputError(f"--val-fraction must be in [0, 1) (got {config.val_fraction})")
    out = Path(out_dir)
    if check_replaceable(out, kind=SYNTH_KIND, force=force):
        remove_owned(out)
    write_owner_marker(out, SYNTH_KIND, SYNTH_FILES)
    rng = np.random.default_rng(config.seed)
    n = config.clips

    sizes = {
        "action": config.actions,
        "scene": config.scenes,
        "object": config.objects,
        "event": config.events,
        "attribute": config.attributes,
        "concept": config.concepts,
    }
    names: dict[str, np.ndarray] = {c: np.array([f"{c}_{i:04d}" for i in range(k)]) for c, k in sizes.items()}
    offsets = np.cumsum([0, *sizes.values()])[:-1]
    base = dict(zip(sizes, offsets, strict=True))
    vocabulary = np.concatenate(list(names.values()))
    categories = np.concatenate([[c] * k for c, k in sizes.items()])

    # Per-action structure: 3 preferred scenes, and (for most actions) one necessary object.
    preferred_scenes = _zipf_choice(rng, config.scenes, config.actions * 3, 0.8).reshape(config.actions, 3)
    necessary_object = _zipf_choice(rng, config.objects, config.actions, 0.8)
    has_necessary = rng.random(config.actions) < config.p_necessary_object_action

    clip_parts: list[np.ndarray] = []
    tag_parts: list[np.ndarray] = []

    def add(clip_index: np.ndarray, tag_id: np.ndarray) -> None:
        clip_parts.append(clip_index.astype(np.int64))
        tag_parts.append(tag_id.astype(np.int64))

    all_clips = np.arange(n)
    primary = _zipf_choice(rng, config.actions, n, config.zipf_exponent)
    add(all_clips, base["action"] + primary)
    n_extra_actions = rng.choice(3, size=n, p=[0.55, 0.3, 0.15])  # 1–3 actions in all
    for k in (1, 2):
        extra = all_clips[n_extra_actions >= k]
        add(extra, base["action"] + _zipf_choice(rng, config.actions, extra.size, config.zipf_exponent))

    with_scene = all_clips[rng.random(n) < config.p_scene]
    preferred = rng.random(with_scene.size) < config.p_preferred_scene
    scene = np.where(
        preferred,
        preferred_scenes[primary[with_scene], rng.integers(0, 3, with_scene.size)],
        _zipf_choice(rng, config.scenes, with_scene.size, config.zipf_exponent),
    )
    add(with_scene, base["scene"] + scene)
    second_scene = with_scene[rng.random(with_scene.size) < 0.3]
    add(
        second_scene,
        base["scene"] + _zipf_choice(rng, config.scenes, second_scene.size, config.zipf_exponent),
    )

    shows_object = has_necessary[primary] & (rng.random(n) < config.p_necessary_object)
    add(all_clips[shows_object], base["object"] + necessary_object[primary[shows_object]])
    for category, mean in (("object", 8.0), ("event", 1.0), ("attribute", 1.5), ("concept", 4.5)):
        counts = rng.poisson(mean, n)
        owners = np.repeat(all_clips, counts)
        add(owners, base[category] + _zipf_choice(rng, sizes[category], owners.size, config.zipf_exponent))

    clip_index = np.concatenate(clip_parts)
    tag_id = np.concatenate(tag_parts)
    order = rng.random(clip_index.size)  # random tag order within each clip, as in HVU
    pairs = pl.DataFrame({"clip": clip_index, "tag": vocabulary[tag_id], "order": order})
    tags_per_clip = (
        pairs.unique(["clip", "tag"], keep="first", maintain_order=True)
        .sort(["clip", "order"])
        .group_by("clip", maintain_order=True)
        .agg(pl.col("tag").str.join("|").alias("Tags"))
    )

    # About 5% of clips reuse another clip's video at a different time, as in HVU.
    video = rng.integers(0, len(_ALPHABET), size=(n, 11))
    youtube_id = np.array(["".join(row) for row in _ALPHABET[video]])
    reuse = np.flatnonzero(rng.random(n) < 0.05)
    youtube_id[reuse] = youtube_id[rng.integers(0, n, reuse.size)]
    start = rng.integers(0, 600, n) + np.where(rng.random(n) < 0.1, 0.5, 0.0)
    clips = pl.DataFrame(
        {
            "clip": all_clips,
            "youtube_id": youtube_id,
            "time_start": start,
            "time_end": start + 2.0,
            "val": rng.random(n) < config.val_fraction,
        }
    )
    # Reused videos could land on the same start: keep each (video, start) once.
    clips = clips.unique(["youtube_id", "time_start"], keep="first", maintain_order=True)
    table = clips.join(tags_per_clip, on="clip", how="inner").sort("clip")

    def write(frame: pl.DataFrame, path: Path) -> Path:
        rows = frame.select(
            "Tags",
            "youtube_id",
            pl.col("time_start").map_elements(_hvu_time, return_dtype=pl.String),
            pl.col("time_end").map_elements(_hvu_time, return_dtype=pl.String),
        )
        write_atomically(path, rows.write_csv)
        return path

    files = [write(table.filter(~pl.col("val")), out / "HVU_Train_Synth.csv")]
    if config.val_fraction > 0:
        files.append(write(table.filter(pl.col("val")), out / "HVU_Val_Synth.csv"))
    categories_path = out / "HVU_Tags_Categories_Synth.csv"
    write_atomically(categories_path, pl.DataFrame({"Tag": vocabulary, "Category": categories}).write_csv)
    return SynthFiles(annotations=files, categories=categories_path, clips=table.height)


def _hvu_time(value: float) -> str:
    """HVU writes whole seconds without a decimal point (``136``) and halves as ``101.5``."""
    return str(int(value)) if float(value).is_integer() else str(value)
